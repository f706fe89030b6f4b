"""Run a netx file in Lava's bit-accurate CPU simulation and record every layer.

:func:`run_lava` builds ``netx.hdf5.Network(net_config=path)``, feeds the
input from a ``lava.proc.io.source.RingBuffer`` into the network's InPort,
connects a ``lava.proc.io.sink.RingBuffer`` to the OutPort of every netx block,
runs ``RunSteps`` under ``Loihi2SimCfg(select_tag='fixed_pt')`` and stops the
runtime; after a failed run it tears the runtime down without ``stop()``
(which would wait forever for Lava's already-exited worker processes).

**Input.** The network's InPort is the first Dense/Conv *synapse*'s ``s_in``
(the file's input layer has no neurons, so netx builds no process for it): the
source's value at step ``t`` (``data[..., t - 1]``, 1-based Lava time) reaches
that synapse at step ``t`` with no delay. With ``input_message_bits=0`` (binary
spikes, the default) the synapse casts input to bool, so any nonzero value is
one spike; with ``input_message_bits > 0`` integers are multiplied with the
weights as graded spikes. Real-valued first layers (e.g. a conv on pixel
intensities) cannot run from this InPort; keep such an encoder layer on the
host and feed its spikes. A ``(C, H, W)`` input is passed to Lava in its
``(W, H, C)`` order and conv outputs are transposed back.

**Timing.** Lava sends synaptic input one step late per layer, so layer ``i``
fires ``net.latency(i)`` steps after its input. ``run_lava(..., batched=False)``
returns that raw timeline (equal to ``run_reference(net, x)``); the default
batched mode removes the latency exactly (equal to
``run_reference(net, x, lava_delay=False)``), see :func:`run_lava`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from pathlib import Path

import numpy as np

from spikeport.errors import DataError, ExportError
from spikeport.targets.lava._compat import enable_lava
from spikeport.targets.lava.network import LoihiNetwork
from spikeport.targets.lava.netx import read_netx

__all__ = ["run_lava"]

_LOG = logging.getLogger(__name__)


def _to_lava(arr: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` torch order -> ``(W, H, C)`` Lava order (1-D unchanged)."""
    return arr.transpose(tuple(range(arr.ndim))[::-1]) if arr.ndim == 3 else arr


def _lava_data(sample: np.ndarray, port_shape: tuple[int, ...], path: Path) -> np.ndarray:
    """``[T, *input_shape]`` -> the source's ``(*port_shape, T)`` int32 buffer."""
    steps = sample.shape[0]
    data = np.stack([_to_lava(sample[t]) for t in range(steps)], axis=-1)
    if tuple(port_shape) != data.shape[:-1]:
        # a dense first layer after a (C, H, W) input takes the flattened input
        flat = sample.reshape(steps, -1)
        if tuple(port_shape) != (flat.shape[1],):
            raise ExportError(f"{path}: netx input port has shape {tuple(port_shape)}, input step has "
                              f"{sample.shape[1:]}")
        data = flat.T
    return np.ascontiguousarray(data).astype(np.int32)


def _abort(net: object) -> str:
    """Tear down a Lava runtime whose run raised, without ``stop()``; return the first process error.

    After a failed run Lava has already joined its worker processes, and
    ``Runtime.stop()`` (also called from ``Runtime.__del__``) would wait forever
    for their replies. So: read the workers' tracebacks, shut down the shared
    memory manager and mark the runtime as not started.
    """
    runtime = getattr(net, "_runtime", None)
    if runtime is None:
        return ""
    infra = getattr(runtime, "_messaging_infrastructure", None)
    detail = ""
    for actor in list(getattr(infra, "actors", []) or []):
        with contextlib.suppress(Exception):
            exc = actor.exception
            if exc and not detail:
                lines = [ln for ln in str(exc[1]).strip().splitlines() if ln.strip()]
                detail = lines[-1].strip() if lines else repr(exc[0])
        with contextlib.suppress(Exception):
            if actor.is_alive():
                actor.terminate()
    if infra is not None:
        with contextlib.suppress(Exception):
            infra.smm.shutdown()
    with contextlib.suppress(Exception):
        runtime._watchdog_manager.stop()
    runtime._is_started = False
    runtime._is_running = False
    return detail


def _run(path: Path, desc: LoihiNetwork, sample: np.ndarray, input_message_bits: int,
         reset_interval: int | None) -> dict[int, np.ndarray]:
    """One Lava run of ``sample`` ``[steps, *input_shape]``; returns ``{layer: [steps, *shape]}``."""
    netx = enable_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    steps = sample.shape[0]
    try:
        # reset_offset=1: netx gives neuron layer k the phase 1 + k, i.e. it resets at 1-based step
        # j * interval + k + 1, exactly when sample j's first input reaches it through k synapses.
        # netx prints warnings and divides by a zero max weight for mixed-sign matrices without positives
        with np.errstate(divide="ignore"), contextlib.redirect_stdout(io.StringIO()) as printed:
            net = netx.hdf5.Network(net_config=str(path), input_message_bits=input_message_bits,
                                    reset_interval=reset_interval, reset_offset=1)
        if printed.getvalue().strip():
            _LOG.warning("netx: %s", " ".join(printed.getvalue().split()))
    except Exception as e:  # netx raises bare RuntimeError/ValueError/KeyError
        raise ExportError(f"{path}: netx could not build the network ({type(e).__name__}: {e})") from e
    neuron_idx = desc.neuron_layers
    if len(net.layers) != len(neuron_idx):
        raise ExportError(f"{path}: netx built {len(net.layers)} blocks but the file has {len(neuron_idx)} "
                          f"dense/conv layers")
    source = Source(data=_lava_data(sample, tuple(net.inp.shape), path))
    source.s_out.connect(net.inp)
    sinks = []
    for block in net.layers:
        sink = Sink(shape=tuple(block.out.shape), buffer=steps)
        block.out.connect(sink.a_in)
        sinks.append(sink)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        recorded = [np.asarray(sink.data.get()) for sink in sinks]
    except Exception as e:  # Lava raises plain Exceptions from its runtime
        detail = _abort(net) or f"{type(e).__name__}: {e}"
        raise ExportError(f"{path}: Lava run failed: {detail}") from e
    try:
        net.stop()
    except Exception as e:  # any failure while stopping leaves the runtime to abort
        _abort(net)
        raise ExportError(f"{path}: stopping the Lava runtime failed ({type(e).__name__}: {e})") from e
    out: dict[int, np.ndarray] = {}
    for i, rec in zip(neuron_idx, recorded, strict=True):
        rec = np.moveaxis(rec, -1, 0)                       # (steps, *lava_shape)
        if rec.ndim == 4:                                   # (steps, W, H, C) -> (steps, C, H, W)
            rec = rec.transpose(0, 3, 2, 1)
        out[i] = rec.astype(np.int8)
    return out


def run_lava(path: str | os.PathLike, inputs: np.ndarray, *, batched: bool = True, input_message_bits: int = 0,
             net: LoihiNetwork | None = None) -> dict[int, np.ndarray]:
    """Run a netx file in Lava (``fixed_pt``) and return every layer's spikes.

    Two modes, both exact (see the module docstring for the timing):

    * ``batched=True`` (default): one Lava run for the whole batch. Samples are
      played back to back, ``T`` steps each, followed by ``k`` zero steps (``k``
      = number of dense/conv layers); netx's ``reset_interval=T`` (with Lava's
      LIFReset) zeroes every layer's ``u``/``v`` exactly when the next sample's
      first input reaches it. The result is on the *input-aligned* timeline:
      step ``t`` of every layer is caused by input step ``t``, for all ``T``
      steps; it equals ``run_reference(net, x, lava_delay=False)``.
    * ``batched=False``: a fresh Lava network per sample, ``T`` steps, plain LIF,
      raw Lava timing (layer ``i`` lags the input by ``net.latency(i)`` steps;
      the last steps of deep layers are not reached); equals
      ``run_reference(net, x)``. Slower: process start-up per sample.

    Args:
        path: netx HDF5 file (e.g. written by :func:`~spikeport.targets.lava.netx.write_netx`).
        inputs: ``[T, B, *input_shape]`` (torch order); binary spikes, or graded
            integers with ``input_message_bits > 0``.
        batched: choose the mode above.
        input_message_bits: 0 for unary spikes, else bits of graded input spikes.
        net: the file's :class:`LoihiNetwork` if already known (else read from ``path``).

    Returns:
        ``{layer index: [T, B, *shape] int8 spikes}`` for every dense/conv layer,
        keyed like :func:`~spikeport.targets.lava.loihi_reference.run_reference`.

    Raises:
        DataError: bad input shape or non-integer input.
        ExportError: Lava missing, or the Lava build/run failed.
    """
    p = Path(path)
    desc = net if net is not None else read_netx(p)
    x = np.asarray(inputs.detach().cpu().numpy() if hasattr(inputs, "detach") else inputs)
    want = tuple(desc.input_shape)
    if x.ndim != len(want) + 2 or tuple(x.shape[2:]) != want or x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{p}: inputs must have shape [T, B, {', '.join(map(str, want))}] with T, B > 0, "
                        f"got {list(x.shape)}")
    if x.dtype.kind not in "biuf":
        raise DataError(f"{p}: inputs must be numeric, got dtype {x.dtype}")
    if x.dtype.kind == "f" and not np.array_equal(x, np.round(x)):
        raise DataError(f"{p}: inputs must be integer-valued spikes (quantize or encode real values on the host)")
    x = x.astype(np.int64)
    steps, batch = x.shape[:2]
    t0 = time.perf_counter()
    if not batched:
        per_sample = [_run(p, desc, x[:, b], int(input_message_bits), None) for b in range(batch)]
        out = {i: np.stack([s[i] for s in per_sample], axis=1) for i in desc.neuron_layers}
    else:
        depth = len(desc.neuron_layers)
        stream = np.concatenate([x.transpose(1, 0, *range(2, x.ndim)).reshape(batch * steps, *want),
                                 np.zeros((depth, *want), dtype=x.dtype)])
        rec = _run(p, desc, stream, int(input_message_bits), steps)
        out = {}
        for i in desc.neuron_layers:
            k = desc.latency(i)
            r = rec[i][k:k + batch * steps]
            out[i] = r.reshape(batch, steps, *r.shape[1:]).swapaxes(0, 1).copy()
    _LOG.debug("lava run of %d sample(s) x %d steps: %.2fs", batch, steps, time.perf_counter() - t0)
    return out
