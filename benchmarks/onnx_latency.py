"""Inference latency on CPU: onnxruntime vs torch eager, for the digits demo model and CIFAR-shaped models.

For each model (BatchNorm statistics calibrated on random inputs, so neurons fire
at realistic rates) and batch size, with T timesteps:

* ``torch``: the model's own forward under ``torch.inference_mode`` (neurons use
  spikeport's fused multi-step path where available: the fastest torch eager path);
* ``ort``: the sequence ONNX export (time loop unrolled, logits only) in onnxruntime;
* ``ort+spikes``: the same graph with every layer's spikes as extra outputs (what verify uses);
* ``ort-stream``: the streaming export, called T times with explicit state.

Both runtimes get the same number of threads (``--threads``, default 1: steadiest on a
shared machine). Outputs are checked to agree before timing. Prints the median latency
and ``speedup = torch / ort`` (the goal is > 1).

    python benchmarks/onnx_latency.py [--threads 1] [--repeat 20] [--models spiking_cnn_digits,resnet19,vgg11]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from _common import Column, add_common_args, format_info, format_table, machine_info, time_it


def _model(name: str, seed: int = 0) -> torch.nn.Module:
    from spikeport.models import create_model

    torch.manual_seed(seed)
    m = create_model(name)
    for mod in m.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.momentum = None
            mod.reset_running_stats()
    m.train()
    with torch.no_grad():
        m(torch.rand(2, 8, *m.default_input_shape))
    return m.eval()


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def bench(name: str, batches: list[int], t: int, threads: int, repeat: int, warmup: int, clock: str,
          workdir: Path) -> list[dict]:
    from spikeport.targets.onnx import export_onnx, export_onnx_stream, read_onnx_meta

    m = _model(name)
    shape = tuple(m.default_input_shape)
    seq = export_onnx(m, workdir / f"{name}.onnx", timesteps=t, spikes=False, check=False).path
    spk = export_onnx(m, workdir / f"{name}.spikes.onnx", timesteps=t, check=False).path
    stream = export_onnx_stream(m, workdir / f"{name}.stream.onnx", spikes=False, check=False).path
    s_seq, s_spk, s_stream = _session(seq, threads), _session(spk, threads), _session(stream, threads)
    states = read_onnx_meta(stream)["states"]
    rows = []
    for b in batches:
        x = torch.rand(t, b, *shape, generator=torch.Generator().manual_seed(b))
        xa = x.numpy()
        zeros = {s["input"]: np.zeros([b if i == s["batch_axis"] else d for i, d in enumerate(s["shape"])],
                                      np.float32) for s in states}

        def run_torch(x=x):
            with torch.inference_mode():
                return m(x)

        def run_stream(xa=xa, zeros=zeros):
            feed = dict(zeros)
            outs = []
            for k in range(t):
                feed["x"] = xa[k]
                res = s_stream.run(None, feed)
                outs.append(res[0])
                for j, s in enumerate(states):
                    feed[s["input"]] = res[1 + j]
            return np.stack(outs)

        ref = run_torch().numpy()
        err = max(float(np.abs(s_seq.run(None, {"x": xa})[0] - ref).max()), float(np.abs(run_stream() - ref).max()))
        kw = {"warmup": warmup, "repeat": repeat, "clock": clock}
        tt = time_it(run_torch, **kw)
        to = time_it(lambda xa=xa: s_seq.run(None, {"x": xa}), **kw)
        ts = time_it(lambda xa=xa: s_spk.run(None, {"x": xa}), **kw)
        tst = time_it(run_stream, **kw)
        rows.append({"model": name, "input": "x".join(map(str, shape)), "B": b, "T": t, "torch": tt.median_ms,
                     "ort": to.median_ms, "ort_spikes": ts.median_ms, "ort_stream": tst.median_ms,
                     "speedup": tt.median_ms / to.median_ms, "err": err})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    p.add_argument("--models", default="spiking_cnn_digits,resnet19,vgg11", help="comma-separated zoo names")
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes (default 1,8)")
    p.add_argument("--digits-batches", default="1,8,64", help="batch sizes for digits models (default 1,8,64)")
    p.add_argument("--timesteps", "-T", type=int, default=4)
    p.set_defaults(threads=1, repeat=20)
    args = p.parse_args(argv)
    if args.device != "cpu":
        p.error("this benchmark compares CPU runtimes; use --device cpu")
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.models.split(","):
            spec = args.digits_batches if "digits" in name else args.batches
            rows += bench(name, [int(b) for b in spec.split(",")], args.timesteps, args.threads, args.repeat,
                          args.warmup, args.clock, Path(d))
    print(format_info(machine_info("cpu")))
    import onnxruntime

    print(f"onnxruntime : {onnxruntime.__version__} (CPUExecutionProvider, intra-op threads={args.threads})")
    print(f"clock       : {args.clock}, median of {args.repeat} runs after {args.warmup} warm-up runs\n")
    print(format_table(rows, [Column("model", "model"), Column("input", "input"), Column("B", "B"), Column("T", "T"),
                              Column("torch", "torch ms", "{:.2f}"), Column("ort", "ort ms", "{:.2f}"),
                              Column("ort_spikes", "ort+spikes ms", "{:.2f}"),
                              Column("ort_stream", "ort-stream ms", "{:.2f}"),
                              Column("speedup", "torch/ort", "{:.2f}x"), Column("err", "max |dlogit|", "{:.1e}")]))
    slower = [r for r in rows if r["speedup"] < 1.0]
    print(f"\nonnxruntime faster than torch eager in {len(rows) - len(slower)}/{len(rows)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
