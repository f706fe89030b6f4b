"""LIF speed: spikeport fused vs spikeport eager vs SpikingJelly vs snnTorch vs a tensor copy.

All implementations compute the same LIF: tau=2, threshold 1, hard reset to 0,
``decay_input`` (H = V + (X - V)/tau), sigmoid surrogate with sharpness 4, zero
initial state, input ``[T, B, C, H, W]`` (time first):

* spikeport: ``LIF(tau=2.0, backend='fused' | 'eager')``.
* SpikingJelly 2.0: ``LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
  surrogate_function=Sigmoid(alpha=4.0), step_mode='m')``, state reset before every call.
  SJ 2.0 has no ``backend=`` argument: it picks its implementation by device (CPU: its
  torch custom op; CUDA: cuda > triton > torch, forced with ``SJ_LIF_CUDA_IMPLEMENTATION``).
* snnTorch: ``Leaky(beta=0.5, threshold=1.0, reset_mechanism='zero', spike_grad=sigmoid(slope=4))``
  stepped over T with explicit state, fed ``X/tau`` (then ``mem = V/2 + X/2`` is the same H;
  its reset gradient is always detached and it fires on ``>`` rather than ``>=``).

Before timing, spikes of spikeport and SJ are compared (``outputs equal: yes/no``), as are
the input gradients. Bandwidth: "GB/s" counts the state bytes a fused implementation must
move (forward: read X, write S; forward+backward: also write+read one saved state tensor,
read dL/dS, write dL/dX) divided by the time; the copy row is ``2 * bytes / time``.

Usage::

    python benchmarks/neuron_speed.py [--device cuda] [--T 4 --B 32 --C 128 --H 16 --W 16]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import Column, add_common_args, format_info, format_table, machine_info, ratio_str, time_it
from spikeport.models.neurons import LIF

TAU, VTH = 2.0, 1.0


def _spikingjelly(device: str):
    try:
        from spikingjelly.activation_based import functional as sjf
        from spikingjelly.activation_based import neuron, surrogate
    except ImportError:
        return None, "not installed"
    node = neuron.LIFNode(tau=TAU, decay_input=True, v_threshold=VTH, v_reset=0.0,
                          surrogate_function=surrogate.Sigmoid(alpha=4.0), detach_reset=False,
                          step_mode="m").to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        sjf.reset_net(node)
        return node(x)

    impl = "cpu: torch custom op" if device == "cpu" else \
        f"SJ_LIF_CUDA_IMPLEMENTATION={os.environ.get('SJ_LIF_CUDA_IMPLEMENTATION', 'auto')}"
    return run, impl


def _snntorch(device: str):
    try:
        import snntorch
        from snntorch import surrogate
    except ImportError:
        return None, "not installed"
    leaky = snntorch.Leaky(beta=1.0 - 1.0 / TAU, threshold=VTH, reset_mechanism="zero",
                           spike_grad=surrogate.sigmoid(slope=4)).to(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        xs = x * (1.0 / TAU)
        mem = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            spk, mem = leaky(xs[t], mem)
            out.append(spk)
        return torch.stack(out)

    return run, "Leaky, loop over T"


def _fwd_bwd(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, gout: torch.Tensor):
    def call():
        run(x).backward(gout)
    return call


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p)
    for dim, default in (("T", 4), ("B", 32), ("C", 128), ("H", 16), ("W", 16)):
        p.add_argument(f"--{dim}", type=int, default=default)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    if dev.startswith("cuda") and not torch.cuda.is_available():
        print("cuda requested but not available", file=sys.stderr)
        return 2

    torch.manual_seed(0)
    shape = (args.T, args.B, args.C, args.H, args.W)
    x = (torch.randn(shape, device=dev) + 0.5)
    xg = x.clone().requires_grad_(True)
    gout = torch.randn(shape, device=dev)
    numel = x.numel()
    nbytes = numel * x.element_size()

    impls: dict[str, tuple[Callable | None, str]] = {
        "spikeport fused": (LIF(tau=TAU, backend="fused").to(dev), "LIF(backend='fused')"),
        "spikeport eager": (LIF(tau=TAU, backend="eager").to(dev), "LIF(backend='eager'), loop of step()"),
    }
    impls["SpikingJelly 2.0"] = _spikingjelly(dev)
    impls["snnTorch"] = _snntorch(dev)

    print("== LIF neuron speed ==")
    print(format_info(machine_info(dev)))
    print(f"shape [T,B,C,H,W] = {list(shape)} ({numel / 1e6:.2f} M elements, {nbytes / 2**20:.1f} MiB per tensor), "
          f"device={dev}, median of {args.repeat} after {args.warmup} warmup, {args.clock} clock")

    # -- equality checks (not timed)
    ref = impls["spikeport fused"][0]
    s_fused = ref(x)
    s_eager = impls["spikeport eager"][0](x)
    print(f"spikeport fused vs eager, outputs equal: {'yes' if torch.equal(s_fused, s_eager) else 'no'}")
    sj = impls["SpikingJelly 2.0"][0]
    if sj is not None:
        s_sj = sj(x)
        equal = torch.equal(s_fused, s_sj.to(s_fused.dtype))
        g1 = torch.autograd.grad(ref(xg), xg, gout)[0]
        g2 = torch.autograd.grad(sj(xg), xg, gout)[0]
        print(f"spikeport vs SpikingJelly, outputs equal: {'yes' if equal else 'no'} "
              f"(firing rate {s_fused.mean().item():.3f}); "
              f"input grads max |diff| = {(g1 - g2).abs().max().item():.2e}")
    snn = impls["snnTorch"][0]
    if snn is not None:
        agree = (snn(x) == s_fused).float().mean().item()
        print(f"spikeport vs snnTorch, spikes agreeing: {100 * agree:.5f}% (rounding of V/2 + X/2 vs V + (X-V)/2)")

    # -- timing
    rows = []
    dst = torch.empty_like(x)
    tkw = {"warmup": args.warmup, "repeat": args.repeat, "device": dev, "clock": args.clock}
    t_copy = time_it(lambda: dst.copy_(x), **tkw)
    copy_gbs = 2 * nbytes / (t_copy.median_ms * 1e-3) / 1e9
    rows.append({"name": "tensor copy (same size)", "impl": "dst.copy_(x)", "fwd": t_copy.median_ms,
                 "fwd_gbs": copy_gbs, "fwd_min": t_copy.min_ms})

    def clear():
        xg.grad = None

    for name, (run, impl) in impls.items():
        if run is None:
            rows.append({"name": name, "impl": impl})
            continue
        with torch.no_grad():
            tf = time_it(lambda run=run: run(x), **tkw)
        tb = time_it(_fwd_bwd(run, xg, gout), setup=clear, **tkw)
        rows.append({"name": name, "impl": impl, "fwd": tf.median_ms, "fwd_min": tf.min_ms,
                     "fwdbwd": tb.median_ms, "fwdbwd_min": tb.min_ms,
                     "fwd_gbs": 2 * nbytes / (tf.median_ms * 1e-3) / 1e9,
                     "fwdbwd_gbs": 6 * nbytes / (tb.median_ms * 1e-3) / 1e9})
    base = rows[1]
    for r in rows:
        r["fwd_x"] = ratio_str(r.get("fwd"), base.get("fwd"))
        r["fwdbwd_x"] = ratio_str(r.get("fwdbwd"), base.get("fwdbwd"))
    cols = [Column("name", "implementation"), Column("fwd", "fwd ms", "{:.2f}"), Column("fwd_min", "(min)", "{:.2f}"),
            Column("fwd_x", "vs fused"), Column("fwd_gbs", "GB/s", "{:.1f}"),
            Column("fwdbwd", "fwd+bwd ms", "{:.2f}"), Column("fwdbwd_min", "(min)", "{:.2f}"),
            Column("fwdbwd_x", "vs fused"), Column("fwdbwd_gbs", "GB/s", "{:.1f}"), Column("impl", "how")]
    print()
    print(format_table(rows, cols))
    print(f"\ncopy bandwidth: {copy_gbs:.1f} GB/s (read + write). 'vs fused' = time / spikeport fused time "
          "(>1: slower than fused).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
