"""Writing NIR for a particular importer (``--nir-for``): what each tool's reader needs from a file.

spikeport's files follow NIR's forward-Euler reading with the step recorded in the metadata. Other tools'
importers read NIR their own way (a fixed dt, ignored fields, missing node types); a :class:`Consumer`
states that reading and adapts or refuses each exported NIR node so the file is never misread:
a node the consumer would read differently raises :class:`~spikeport.ops.Refusal` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from spikeport.ops import Refusal, _nir

__all__ = ["Consumer", "CONSUMERS", "consumer"]

_NEURONS = ("IF", "LIF", "CubaLIF")


def _arr(node: Any, key: str) -> np.ndarray:
    return np.asarray(getattr(node, key), dtype=np.float64)


def _uniform(name: str, node: Any, keys: tuple[str, ...], who: str) -> None:
    for k in keys:
        a = _arr(node, k)
        if a.size and not np.all(a == a.ravel()[0]):
            raise Refusal(f"per-neuron {k}: {who}'s importer takes one value per layer")


def _zero(name: str, node: Any, key: str, who: str, why: str) -> None:
    if getattr(node, key, None) is not None and np.any(_arr(node, key) != 0):
        raise Refusal(f"{key} != 0: {who}'s importer {why}")


def _spikingjelly(name: str, node: Any, dt: float) -> Any:
    t = type(node).__name__
    who = "SpikingJelly"
    if t in _NEURONS:
        _uniform(name, node, tuple(k for k in ("r", "tau", "tau_syn", "tau_mem", "v_threshold", "v_reset", "w_in",
                                              "v_leak") if hasattr(node, k)), who)
    if t == "LIF":
        tau, r = _arr(node, "tau").ravel()[0], _arr(node, "r").ravel()[0]
        if not np.allclose(_arr(node, "v_leak"), _arr(node, "v_reset")):
            raise Refusal("leaks towards v_leak != v_reset: SpikingJelly's LIFNode leaks to v_reset")
        if tau / dt <= 1:
            raise Refusal(f"tau/dt = {tau / dt:g} <= 1; SpikingJelly's LIFNode needs tau > 1 step")
        if not (np.isclose(r, 1.0) or np.isclose(r, tau / dt)):
            raise Refusal(f"r = {r:g} is neither 1 nor tau/dt (SpikingJelly's decay_input)")
    return node


def _snntorch(name: str, node: Any, dt: float) -> Any:
    t = type(node).__name__
    who = "snnTorch"
    if t in _NEURONS:
        _zero(name, node, "v_reset", who, "always resets to 0")
        _uniform(name, node, ("v_threshold",), who)
    if t in ("LIF", "CubaLIF"):
        _zero(name, node, "v_leak", who, "asserts v_leak == 0")
    if t == "IF":
        # snnTorch's importer turns an IF into a leaky neuron (beta 0.9) and asserts r == 1; an LIF whose
        # beta = 1 - dt/tau rounds to 1.0 in float32 and whose gain r*dt/tau is 1 is the same integrator.
        shape = _arr(node, "r").shape
        tau = np.full(shape, 1e20 * dt)  # beta = 1 - 1e-20 == 1.0 in float64
        gain = _arr(node, "r") * dt
        return _nir.nir().LIF(tau=tau, r=gain * tau / dt, v_leak=np.zeros(shape), v_threshold=_arr(node, "v_threshold"),
                              v_reset=np.zeros(shape))
    if t not in (*_NEURONS, "Input", "Output", "Affine", "Linear", "Conv2d", "AvgPool2d", "Flatten"):
        raise Refusal(f"snnTorch's import_from_nir has no {t}")
    return node


def _norse(name: str, node: Any, dt: float) -> Any:
    t = type(node).__name__
    who = "Norse"
    if t in _NEURONS:
        _zero(name, node, "v_reset", who, "ignores v_reset (resets to 0)")
    if t == "IF" and not np.allclose(_arr(node, "r") * dt, 1.0):
        raise Refusal("an input gain r*dt != 1; Norse's IAFCell ignores r")
    if t == "LIF" and not np.allclose(_arr(node, "r"), 1.0):
        raise Refusal("r != 1 (an input gain, e.g. decay_input=False); Norse's LIFBoxCell "
                      "ignores r")
    if t == "SumPool2d" and np.any(np.asarray(node.padding) != 0):
        raise Refusal("padding; Norse's importer ignores it")
    if t not in (*_NEURONS, "Input", "Output", "Affine", "Linear", "Conv2d", "SumPool2d", "Flatten"):
        raise Refusal(f"Norse's from_nir has no {t} (an AvgPool2d can be a SumPool2d with the "
                      "1/k^2 folded into the next layer's weights)")
    return node


def _sinabs(name: str, node: Any, dt: float) -> Any:
    t = type(node).__name__
    meta = getattr(node, "metadata", None) or {}
    if t in ("IF", "LIF") and "sinabs" in str(meta.get("readable_by", "")).split(","):
        return node  # a sinabs neuron in the form sinabs' importer reads exactly
    if t in _NEURONS:
        raise Refusal("sinabs' from_nir builds multi-spike neurons with a subtractive reset "
                      "(IF also clipped at -threshold, LIF without input normalisation); a binary hard-reset neuron "
                      "cannot be written so that sinabs reads it")
    if t not in ("Input", "Output", "Affine", "Conv1d", "Conv2d", "SumPool2d", "Flatten"):
        raise Refusal(f"sinabs' from_nir has no {t} (it would silently drop the node)")
    return node


@dataclass(frozen=True)
class Consumer:
    """How one tool's NIR importer reads files.

    Attributes:
        name: the ``--nir-for`` name.
        dt: the step its importer uses (``None``: any; spikeport records it, others take it as an argument).
        dt_fixed: its importer cannot take another step (the export refuses a different ``dt``).
        reads: how to read the file there.
        batch: the batch sizes its importer runs, and why.
        adapt: ``adapt(name, nir_node, dt) -> nir_node`` (may rewrite it; raises Refusal), or ``None``.
    """

    name: str
    dt: float | None
    dt_fixed: bool
    reads: str
    batch: str
    adapt: Callable[[str, Any, float], Any] | None = None


_BATCH1 = ("any batch size for MLPs; CNNs with batch size 1 only: its importer maps NIR's per-sample "
           "Flatten(start_dim=0) to torch's Flatten(0), which also flattens the batch axis")

CONSUMERS: dict[str, Consumer] = {c.name: c for c in (
    Consumer("spikeport", None, False, "spikeport.converter.nir_io.read_nir(path) (dt from the metadata)",
             "any batch size"),
    Consumer("spikingjelly", None, False,
             "spikingjelly.activation_based.nir_exchange.import_from_nir(nir.read(path), dt=<the file's dt>)",
             "any batch size (one step per call, or step_mode='m' on [T, B, ...])", _spikingjelly),
    Consumer("nirtorch", None, False,
             "nirtorch.nir_to_torch(nir.read(path), node_map) with your own neuron maps (see docs/nir.md)",
             "any batch size (with a Flatten map that keeps the batch axis)"),
    Consumer("snntorch", 1e-4, True, "snntorch.import_nir.import_from_nir(nir.read(path))", _BATCH1, _snntorch),
    Consumer("norse", 1e-3, False, "norse.torch.from_nir(nir.read(path), dt=<the file's dt>)", _BATCH1, _norse),
    Consumer("sinabs", 1.0, True, "sinabs.from_nir(nir.read(path), num_timesteps=T)",
             "any batch size (input [B*T, ...])", _sinabs),
)}


def consumer(name: str) -> Consumer:
    """The consumer ``name`` (ConfigError listing the known ones)."""
    from spikeport.errors import ConfigError

    if name not in CONSUMERS:
        raise ConfigError(f"--nir-for {name!r}: unknown importer (known: {', '.join(CONSUMERS)})")
    return CONSUMERS[name]
