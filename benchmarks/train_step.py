"""One training step of spiking ResNet-19 (CIFAR shape) in spikeport vs SpikingJelly 2.0.

A step is: forward of ``[T, B, 3, 32, 32]`` -> cross-entropy on the mean-over-time logits
-> backward -> optimizer step (SGD with momentum, or AdamW); for SpikingJelly also
``functional.reset_net`` (its neurons keep state between calls, so training needs it).

Rows:

* ``spikeport eager``: ``create_model('resnet19', neuron_kw={'backend': 'eager'})``
  (autograd over the per-step LIF ops);
* ``spikeport fused``: the same with ``backend='fused'`` (whole-sequence LIF with a
  hand-written BPTT; Triton kernels on CUDA when Triton is installed);
* ``spikingjelly <impl>``: :class:`sj_models.SJResNet19`, the same network in
  SpikingJelly layers. On CPU SpikingJelly 2.0 has one LIF implementation (``torch``:
  a registered op with a hand-written backward). On CUDA one row per implementation
  in ``--sj-cuda-impl`` (``cuda`` = its native kernels, ``triton``, ``torch``), chosen
  through its ``SJ_LIF_CUDA_IMPLEMENTATION`` variable; unavailable ones are reported.

Before timing, spikeport's weights are copied into the SpikingJelly model and the
train-mode forward logits of every row are compared (max abs diff printed; exit 1
on a mismatch). Each row is then timed in a fresh subprocess: median step time over
``--repeat`` steps after ``--warmup``; peak memory is the rise above the memory held
after set-up (model, optimizer, batch): CPU ``getrusage`` max RSS minus the RSS before
the first step, CUDA ``torch.cuda.max_memory_allocated`` minus ``memory_allocated``.
On CPU the median process CPU time per step is printed too (all threads; it is far
less sensitive than wall time to other jobs sharing the machine). Ratios are against
the fastest SpikingJelly row (``> 1`` = slower / more memory).

    python benchmarks/train_step.py                       # CPU, batch 8
    python benchmarks/train_step.py --device cuda         # batch 32
    python benchmarks/train_step.py --repeat 3 --warmup 1 --batch-size 4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from _common import Column, add_common_args, format_info, format_table, machine_info, ratio_str, time_it

HERE = Path(__file__).resolve().parent
SJ_ENV = "SJ_LIF_CUDA_IMPLEMENTATION"
SP_ROWS = ("spikeport-eager", "spikeport-fused")
SJ_CUDA_IMPLS = ("cuda", "triton", "torch")
RESULT_TAG = "RESULT "


# ----------------------------------------------------------------------------- building blocks
def build_model(row: str, device: str, seed: int = 0) -> torch.nn.Module:
    """The model of one row (``spikeport-eager``, ``spikeport-fused`` or ``spikingjelly*``).

    Every row gets the same weights (spikeport's init with ``seed``, copied into SpikingJelly's model).
    """
    from spikeport.models import create_model

    torch.manual_seed(seed)
    if not row.startswith("spikingjelly"):
        return create_model("resnet19", neuron_kw={"backend": row.split("-", 1)[1]}).to(device)
    from sj_models import SJResNet19, load_spikeport_weights

    sj = SJResNet19()
    load_spikeport_weights(sj, create_model("resnet19", neuron_kw={"backend": "eager"}))  # same weights as ours
    return sj.to(device)


def make_batch(timesteps: int, batch: int, device: str, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic ``[T, B, 3, 32, 32]`` input in [0, 1) (direct encoding) and labels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(timesteps, batch, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    return x.to(device), y.to(device)


def make_optimizer(name: str, model: torch.nn.Module) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)


def _rss_now_mib() -> float:
    """Current resident set size (Linux ``/proc/self/statm``; max RSS elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return _max_rss_mib()


def _max_rss_mib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _sj_impl_name(device: str) -> str:
    if not device.startswith("cuda"):
        return "torch"
    try:  # private SpikingJelly API: report which LIF implementation it actually selected
        from spikingjelly._ops.lif import _selection

        return str(_selection.diagnostics(torch.device(device))["implementation"])
    except Exception:  # noqa: BLE001 - informational only
        return os.environ.get(SJ_ENV, "auto")


# ----------------------------------------------------------------------------- worker (one row)
def run_worker(args: argparse.Namespace) -> dict:
    """Time one row in this (fresh) process; returns the result record."""
    if args.threads:
        torch.set_num_threads(args.threads)
    row, device = args.worker, args.device
    model = build_model(row, device).train()
    x, y = make_batch(args.timesteps, args.batch_size, device)
    opt = make_optimizer(args.optimizer, model)
    is_sj = row.startswith("spikingjelly")
    reset = None
    if is_sj:
        from spikingjelly.activation_based import functional as sj_functional

        reset = sj_functional.reset_net
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x).mean(0), y)
        loss.backward()
        opt.step()
        if reset is not None:
            reset(model)

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    else:
        base = _rss_now_mib()
    cpu_s: list[float] = []

    def timed_step() -> None:  # process CPU time too: far less sensitive than wall time to other jobs' load
        c0 = time.process_time()
        step()
        cpu_s.append(time.process_time() - c0)

    timing = time_it(timed_step, warmup=args.warmup, repeat=args.repeat, device=device)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _max_rss_mib()
    impl = _sj_impl_name(device) if is_sj else row.split("-", 1)[1]
    if not is_sj and impl == "fused" and cuda:
        from spikeport.models.neurons import fused

        impl += " (triton)" if fused.triton_available() else " (torch ops)"
    return {"row": row, "impl": impl, "median_ms": timing.median_ms, "min_ms": timing.min_ms,
            "max_ms": timing.max_ms, "repeat": timing.repeat, "spread": timing.spread,
            "cpu_s": None if cuda else statistics.median(cpu_s[args.warmup:]),
            "mem_mib": peak - base, "base_mib": base, "threads": torch.get_num_threads()}


def _worker_cmd(args: argparse.Namespace, row: str) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", row, "--device", args.device,
           "--batch-size", str(args.batch_size), "--timesteps", str(args.timesteps), "--optimizer", args.optimizer,
           "--repeat", str(args.repeat), "--warmup", str(args.warmup)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd


def spawn(args: argparse.Namespace, row: str, sj_impl: str | None) -> dict:
    """Run one row in a subprocess; a failure becomes a row with an ``error``."""
    env = dict(os.environ)
    if sj_impl is not None:
        env[SJ_ENV] = sj_impl
    label = row if sj_impl is None else f"{row} ({sj_impl})"
    proc = subprocess.run(_worker_cmd(args, row), env=env, capture_output=True, text=True, cwd=str(HERE))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            res = json.loads(line[len(RESULT_TAG):])
            res["label"] = label
            return res
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    return {"row": row, "label": label, "error": tail[0][:160]}


# ----------------------------------------------------------------------------- verification
def verify(args: argparse.Namespace, rows: list[str]) -> bool:
    """Copy spikeport's weights into SpikingJelly's model; compare train-mode forward logits."""
    from spikingjelly.activation_based import functional as sj_functional

    from sj_models import load_spikeport_weights

    x, _ = make_batch(args.timesteps, args.batch_size, args.device)
    sj = build_model("spikingjelly", args.device).train()
    ok = True
    for row in rows:
        sp = build_model(row, args.device).train()
        load_spikeport_weights(sj, sp)
        with torch.no_grad():
            a = sp(x)
            b = sj(x)
            sj_functional.reset_net(sj)
        diff = (a - b).abs().max().item()
        good = diff <= args.verify_tol
        ok &= good
        print(f"verify {row:>16} vs spikingjelly: logits {tuple(a.shape)}, max |diff| = {diff:.3g}"
              f" (max |logit| {a.abs().max().item():.3g}) {'OK' if good else 'MISMATCH'}")
    return ok


# ----------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Time one training step (forward + CE + backward + optimizer step) of spiking ResNet-19 "
                    "[T, B, 3, 32, 32] in spikeport (eager / fused LIF) vs SpikingJelly 2.0; peak memory per row "
                    "from a fresh subprocess. Defaults here: --repeat 5 --warmup 2.")
    add_common_args(p)
    p.set_defaults(repeat=5, warmup=2)
    p.add_argument("--batch-size", type=int, default=None, help="B (default: 8 on CPU, 32 on CUDA)")
    p.add_argument("--timesteps", type=int, default=4, help="timesteps T (default: 4)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                   help="SGD (momentum 0.9, lr 0.1; default) or AdamW (lr 1e-3)")
    p.add_argument("--rows", default=",".join(SP_ROWS + ("spikingjelly",)),
                   help="comma-separated rows out of spikeport-eager, spikeport-fused, spikingjelly (default: all)")
    p.add_argument("--sj-cuda-impl", default=",".join(SJ_CUDA_IMPLS[:2]),
                   help=f"CUDA only: SpikingJelly LIF implementations to time, from {', '.join(SJ_CUDA_IMPLS)} "
                        "(one row each; default: cuda,triton)")
    p.add_argument("--no-verify", action="store_true", help="skip the logits equivalence check")
    p.add_argument("--verify-tol", type=float, default=1e-4, help="max abs logit difference accepted (default: 1e-4)")
    p.add_argument("--json", default=None, help="also write the result records to this JSON file")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            p.exit(2, f"error: --device {args.device} requested but CUDA is not available "
                      f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use --device cpu\n")
    elif args.device != "cpu":
        p.error(f"--device must be cpu or cuda[:i], got {args.device!r}")
    if args.batch_size is None:
        args.batch_size = 32 if args.device.startswith("cuda") else 8
    for name in ("batch_size", "timesteps", "repeat"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    bad = [r for r in rows if r not in SP_ROWS + ("spikingjelly",)]
    if bad or not rows:
        p.error(f"--rows: unknown {bad}; choose from {', '.join(SP_ROWS + ('spikingjelly',))}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    rows = _check_args(parser, args)
    if args.worker is not None:
        print(RESULT_TAG + json.dumps(run_worker(args)), flush=True)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info(args.device)
    print(format_info(info))
    print(f"config      : resnet19, input [T={args.timesteps}, B={args.batch_size}, 3, 32, 32], {args.optimizer}, "
          f"device {args.device}, warmup {args.warmup}, repeat {args.repeat}\n")
    sp_rows = [r for r in rows if r in SP_ROWS]
    if not args.no_verify and "spikingjelly" in rows and sp_rows and not verify(args, sp_rows):
        print("error: spikeport and SpikingJelly logits differ; timings would not compare the same network")
        return 1

    jobs: list[tuple[str, str | None]] = [(r, None) for r in sp_rows]
    if "spikingjelly" in rows:
        impls = [s.strip() for s in args.sj_cuda_impl.split(",") if s.strip()] if args.device != "cpu" else [None]
        jobs += [("spikingjelly", i) for i in impls]
    t0 = time.perf_counter()
    results = []
    for row, impl in jobs:
        res = spawn(args, row, impl)
        results.append(res)
        msg = res.get("error") or f"median {res['median_ms']:.0f} ms, peak +{res['mem_mib']:.0f} MiB"
        print(f"  {res['label']}: {msg}", flush=True)

    sj_ok = [r for r in results if r["row"] == "spikingjelly" and "error" not in r]
    ref = min(sj_ok, key=lambda r: r["median_ms"]) if sj_ok else None
    for r in results:
        if "error" in r:
            continue
        r["ips"] = args.batch_size / (r["median_ms"] / 1e3)
        if ref is not None:
            r["t_ratio"] = ratio_str(r["median_ms"], ref["median_ms"])
            r["m_ratio"] = ratio_str(r["mem_mib"], ref["mem_mib"])
            r["c_ratio"] = ratio_str(r.get("cpu_s"), ref.get("cpu_s"))
    mem = "peak RSS rise" if args.device == "cpu" else "peak alloc rise"
    cols = [Column("row", "row"), Column("impl", "LIF impl"), Column("median_ms", "median ms", "{:.1f}"),
            Column("min_ms", "min ms", "{:.1f}"), Column("spread", "max/min", "{:.2f}"),
            Column("ips", "img/s", "{:.1f}"), Column("t_ratio", "time vs SJ")]
    if args.device == "cpu":
        cols += [Column("cpu_s", "CPU s/step", "{:.1f}"), Column("c_ratio", "CPU vs SJ")]
    cols += [Column("mem_mib", f"{mem} MiB", "{:.0f}"), Column("m_ratio", "mem vs SJ")]
    print()
    print(format_table([r for r in results if "error" not in r], cols))
    for r in results:
        if "error" in r:
            print(f"{r['label']}: not run ({r['error']})")
    try:
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        load = "?"
    print(f"\nwall {time.perf_counter() - t0:.0f} s; load average at end: {load} "
          f"(at start: {info.get('load average', '?')})")
    if args.json:
        from spikeport._io import atomic_write_text

        atomic_write_text(args.json, json.dumps({"machine": info, "config": vars(args), "results": results},
                                                indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
