"""Run a spikeport Loihi export in plain Lava, following only its sidecar's runtime contract.

Usage::

    python examples/lava_plain_run.py MODEL.net --input x.npy [--spikes spikes.npz]

``x.npy`` holds frames ``[B, *shape]`` (or one frame ``[*shape]``, or an encoded sequence
``[T, B, *shape]``), real-valued as the float model takes them. The script reads ``MODEL.net.loihi.json``
and does exactly what its ``runtime`` section says:

1. encode: ``round(x * scale)`` graded spikes (or 0/1 spikes), the same frame at each of the T steps,
   each frame transposed from torch (C, H, W) to Lava (W, H, C);
2. stream: samples back to back, T steps each, then ``trailing_zero_steps`` zero frames;
3. build ``lava.lib.dl.netx.hdf5.Network(net_config=MODEL.net, **runtime.network.kwargs)`` (the reset
   schedule: ``reset_interval=T, reset_offset=1``), feed it from a ``RingBuffer``, record every block,
   run under ``Loihi2SimCfg(select_tag='fixed_pt')``;
4. decode: layer spikes of sample j, step t are at stream step ``j*T + t + latency`` (transposed back);
5. host readout: the sidecar's ``readout`` graph (pooling / flatten / linear, per step) on the output
   layer's spikes, prediction = argmax of the mean over T of the logits.

It imports numpy, torch (for the readout's pooling and linear layers), json and Lava; no
spikeport code. lava-nc 0.10 needs small import patches on Python >= 3.11 with numpy 2 (see
``spikeport/targets/lava/_compat.py``); where Lava imports as is, run this script directly, otherwise
start it after installing those patches (the test suite does:
``from spikeport.targets.lava import enable_lava; enable_lava()`` then ``runpy.run_path``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def decode_array(v):
    """A readout field: ``{"__ndarray__": {dtype, shape, values | b64}}`` -> numpy array; lists/scalars as is."""
    if isinstance(v, dict) and "__ndarray__" in v:
        spec = v["__ndarray__"]
        dtype = np.dtype("<" + spec["dtype"]) if spec["dtype"][0] in "fiuc" else np.dtype(spec["dtype"])
        if "b64" in spec:
            return np.frombuffer(base64.b64decode(spec["b64"]), dtype=dtype).reshape(spec["shape"]).copy()
        return np.asarray(spec["values"], dtype=dtype).reshape(spec["shape"])
    return v


def pair(v):
    return (int(v), int(v)) if isinstance(v, (int, float)) else (int(v[0]), int(v[1]))


def readout(graph: dict, spikes: np.ndarray) -> np.ndarray:
    """Apply the readout graph per step to ``spikes`` [T, B, *shape]; returns logits [T, B, K]."""
    t, b = spikes.shape[:2]
    values: dict[str, torch.Tensor] = {}
    srcs: dict[str, list[str]] = {}
    for e in sorted(graph["edges"], key=lambda e: e["port"]):
        srcs.setdefault(e["dst"], []).append(e["src"])
    out = None
    for entry in graph["nodes"]:
        n = {k: decode_array(v) for k, v in entry["node"].items()}
        kind, name = n["type"], n["name"]
        if kind == "Input":
            values[name] = torch.as_tensor(spikes, dtype=torch.float32).reshape(t * b, *spikes.shape[2:])
            continue
        x = values[srcs[name][0]]
        if kind == "Output":
            out = x
        elif kind == "MaxPool":
            y = F.max_pool2d(x, pair(n["kernel_size"]), pair(n["stride"]), pair(n["padding"]), pair(n["dilation"]),
                             ceil_mode=bool(n["ceil_mode"]))
        elif kind == "AvgPool":
            y = F.avg_pool2d(x, pair(n["kernel_size"]), pair(n["stride"]), pair(n["padding"]),
                             ceil_mode=bool(n["ceil_mode"]), count_include_pad=bool(n["count_include_pad"]),
                             divisor_override=n.get("divisor_override"))
        elif kind == "AdaptiveAvgPool":
            y = F.adaptive_avg_pool2d(x, pair(n["output_size"]))
        elif kind == "Flatten":
            start = n["start_dim"] + 1 if n["start_dim"] >= 0 else x.dim() + n["start_dim"]
            end = n["end_dim"] + 1 if n["end_dim"] >= 0 else x.dim() + n["end_dim"]
            y = x.flatten(start, end)
        elif kind == "Linear":
            w = torch.as_tensor(np.asarray(n["weight"], dtype=np.float32))
            bias = None if n.get("bias") is None else torch.as_tensor(np.asarray(n["bias"], dtype=np.float32))
            y = F.linear(x, w, bias)
        else:
            raise SystemExit(f"readout op {kind} is not handled by this example")
        if kind != "Output":
            values[name] = y
    return out.reshape(t, b, *out.shape[1:]).numpy()


def encode(x: np.ndarray, contract: dict) -> np.ndarray:
    """Real-valued input -> integer [T, B, *shape] per the contract's input section."""
    enc, t = contract["input"], contract["timesteps"]
    shape = tuple(enc["shape"])
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == len(shape):
        x = x[None]
    if x.ndim == len(shape) + 1:
        x = np.broadcast_to(x[None], (t, *x.shape))  # direct encoding: the same frame at every step
    if x.shape[0] != t or tuple(x.shape[2:]) != shape:
        raise SystemExit(f"input {list(x.shape)} does not fit [T={t}, B, {shape}]")
    if enc["encoding"] == "graded":
        k = np.rint(x * enc["scale"]).astype(np.int64)
        if k.min() < 0 or k.max() > 2 ** enc["message_bits"] - 1:
            raise SystemExit(f"graded input out of range [0, {2 ** enc['message_bits'] - 1}]")
        return k
    return (x != 0).astype(np.int64)


def to_lava(frame: np.ndarray) -> np.ndarray:
    return frame.transpose(2, 1, 0) if frame.ndim == 3 else frame


def run(net_path: Path, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    side = json.loads(Path(str(net_path) + ".loihi.json").read_text())
    c = side["runtime"]
    if c["network"]["format"] != "netx":
        raise SystemExit(f"{net_path} is a {c['network']['format']} file (not a netx chain): load it with "
                         f"{c['network']['build']}; its layout is in spikeport/targets/lava/graph_io.py")
    t, depth = c["timesteps"], c["stream"]["trailing_zero_steps"]
    k = encode(x, c)
    batch = k.shape[1]
    frames = [to_lava(k[s, j]) for j in range(batch) for s in range(t)]
    frames += [np.zeros(c["input"]["lava_shape"], dtype=np.int64)] * depth
    data = np.stack(frames, axis=-1).astype(np.int32)
    steps = data.shape[-1]
    with contextlib.redirect_stdout(io.StringIO()), np.errstate(divide="ignore"):
        net = netx.hdf5.Network(net_config=str(net_path), **c["network"]["kwargs"])
    src = Source(data=data)
    src.s_out.connect(net.inp)
    sinks = []
    for block in net.layers:
        sink = Sink(shape=tuple(block.out.shape), buffer=steps)
        block.out.connect(sink.a_in)
        sinks.append(sink)
    net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    recorded = [np.asarray(s.data.get()) for s in sinks]
    net.stop()
    spikes = {}
    for unit in c["layers"]:
        rec = np.moveaxis(recorded[unit["block"]], -1, 0)         # (steps, *lava_shape)
        rec = rec[unit["latency"]:unit["latency"] + batch * t]  # drop the latency
        rec = rec.reshape(batch, t, *rec.shape[1:]).swapaxes(0, 1)
        if rec.ndim == 5:                                          # (W, H, C) -> (C, H, W)
            rec = rec.transpose(0, 1, 4, 3, 2)
        spikes[unit["name"]] = (rec != 0).astype(np.int8)
    logits = readout(side["readout"], spikes[c["readout"]["reads"]].astype(np.float32))
    return spikes, logits.mean(0).argmax(-1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("net", type=Path)
    ap.add_argument("--input", required=True, type=Path)
    ap.add_argument("--spikes", type=Path, help="write every layer's [T, B, ...] spikes to this .npz")
    args = ap.parse_args(argv)
    spikes, preds = run(args.net, np.load(args.input, allow_pickle=False))
    if args.spikes:
        np.savez(args.spikes, **spikes)
    print(json.dumps({"predictions": preds.tolist()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
