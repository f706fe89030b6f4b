r"""Neurons and helper ops with the exact discrete-time semantics of other SNN frameworks.

A model trained in snnTorch, Norse, sinabs or lava-dl SLAYER runs *exactly*
(bit for bit, spikes and membranes) as these nodes: each docstring gives the
equations in the framework's own floating-point operation order, and the
source file and function it follows. SpikingJelly's IF/LIF/PLIF are the
built-in :class:`~spikeport.converter.ir.neuron.IF` / ``LIF`` / ``PLIF``
(``LIF(tau_arithmetic="divide", start_at_reset=True)``).

Notation as in :mod:`spikeport.converter.ir.neuron`: :math:`x[t]` input current,
:math:`H` the charged membrane, :math:`V` the membrane carried to the next step,
:math:`\Theta` the threshold, :math:`1[\cdot]` the indicator.

Parameters of the framework neurons are stored as float32 (as the frameworks hold
them): a python number becomes a 0-d ``float32`` array, an array is cast to
``float32``; a size-1 array becomes 0-d. A multi-valued parameter broadcasts like
a torch tensor against one step's ``[B, *shape]``: it has the per-step rank with
every dimension equal to the layer's or 1 (a ``(C, 1, 1)`` array is per channel of a
``(C, H, W)`` layer).

Helper ops: :class:`Delay` (output shifted by whole steps, e.g. SLAYER's block
``delay_shift`` and NIR's ``Delay``), :class:`Quantize` (SLAYER's input
quantisation), and two shape-guarded synapses: :class:`SlayerDense` (a
:class:`~spikeport.converter.ir.synapse.Linear` that only takes vectors) and
:class:`SlayerPool` (a :class:`~spikeport.converter.ir.pool.SumPool` that refuses
sizes SLAYER pads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from spikeport.converter.ir.neuron import NeuronNode
from spikeport.converter.ir.node import InputShapeError, IRNode, Param, Shape, param_field
from spikeport.converter.ir.pool import SumPool
from spikeport.converter.ir.synapse import Linear

__all__ = ["SnnTorchLeaky", "SnnTorchSynaptic", "NorseLIF", "NorseLIFBox", "SinabsLIF", "SlayerCUBA", "Delay",
           "Quantize", "SlayerDense", "SlayerPool", "FRAMEWORK_NEURON_TYPES", "SNNTORCH_RESETS", "SINABS_SPIKES",
           "SINABS_RESETS", "torch_broadcastable"]

SNNTORCH_RESETS = ("subtract", "zero", "none")
SINABS_SPIKES = ("multi", "single", "max")
SINABS_RESETS = ("subtract", "reset")


def torch_broadcastable(value: Any, shape: Shape) -> bool:
    """Whether a parameter broadcasts like a torch tensor against one step's ``[B, *shape]`` without changing it."""
    if not isinstance(value, np.ndarray) or value.ndim == 0:
        return True
    return value.ndim == len(shape) and all(p in (1, s) for p, s in zip(value.shape, shape, strict=True))


def _f32(node: IRNode, name: str) -> None:
    v = getattr(node, name)
    if v is None:
        return
    arr = np.asarray(v, dtype=np.float32)
    if arr.size == 1:
        arr = arr.reshape(())
    if not np.all(np.isfinite(arr)):
        raise node._fail(name, "must be finite")
    arr = np.array(arr, copy=True)
    arr.setflags(write=False)
    object.__setattr__(node, name, arr)


def _choice(node: IRNode, name: str, options: tuple[str, ...]) -> None:
    if getattr(node, name) not in options:
        raise node._fail(name, f"must be one of {', '.join(options)}, got {getattr(node, name)!r}")


def _flag(node: IRNode, name: str) -> None:
    v = getattr(node, name)
    if not isinstance(v, (bool, np.bool_)):
        raise node._fail(name, f"must be a bool, got {v!r}")
    object.__setattr__(node, name, bool(v))


@dataclass(frozen=True, eq=False, repr=False)
class _FrameworkNeuron(NeuronNode):
    """Base of the framework neurons: float32 parameters, torch broadcasting (not instantiable)."""

    float32_fields: ClassVar[tuple[str, ...]] = ()

    def _check(self) -> None:
        for name in self.float32_fields:
            _f32(self, name)
        self._check_fields()

    def _check_fields(self) -> None:
        """Node-specific validation (override)."""

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        for name, v in self.arrays().items():
            if not torch_broadcastable(v, s):
                raise InputShapeError(self, 0, f"a layer {list(v.shape)} broadcasts onto", s,
                                      f"field '{name}' has shape {list(v.shape)}: a multi-valued parameter needs the "
                                      "per-step rank, each dimension equal to the layer's or 1")
        return s

    @property
    def soft_reset(self) -> bool:
        return False


@dataclass(frozen=True, eq=False, repr=False)
class SnnTorchLeaky(_FrameworkNeuron):
    r"""snnTorch 1.0 ``Leaky`` (``snntorch/_neurons/leaky.py``: ``forward`` and the ``_base_*`` charge functions).

    With :math:`b = \mathrm{clamp}(\beta, 0, 1)`, the reset flag :math:`R[t] = 1[V[t-1] > \Theta]`
    taken from the *stored* membrane, and ``g`` the graded-spike factor:

    * subtract: :math:`H = (b V[t-1] + x[t]) - R[t]\,\Theta` (the delayed reset is not decayed)
    * zero:     :math:`H = b\,((1 - R[t])\,V[t-1]) + x[t]`
    * none:     :math:`H = b V[t-1] + x[t]`
    * fire (strict): :math:`S[t] = g\,1[H - \Theta > 0]`

    ``reset_delay=True`` (snnTorch's default) stores :math:`V[t] = H`; ``reset_delay=False``
    also applies :math:`D = S/g - R` at once: subtract :math:`V = H - D\,\Theta`, zero
    :math:`V = H - D\,H`. The membrane starts at 0. The output is binary when ``g == 1``.
    """

    beta: Param = param_field(0.9)
    threshold: Param = param_field(1.0)
    reset_mechanism: str = "subtract"
    reset_delay: bool = True
    graded_spikes_factor: Param = param_field(1.0)

    float32_fields = ("beta", "threshold", "graded_spikes_factor")
    param_fields = ("beta", "threshold")

    def _check_fields(self) -> None:
        _choice(self, "reset_mechanism", SNNTORCH_RESETS)
        _flag(self, "reset_delay")
        if np.any(np.asarray(self.graded_spikes_factor) == 0):
            raise self._fail("graded_spikes_factor", "must be non-zero (snnTorch divides by it)")


@dataclass(frozen=True, eq=False, repr=False)
class SnnTorchSynaptic(_FrameworkNeuron):
    r"""snnTorch 1.0 ``Synaptic`` (``snntorch/_neurons/synaptic.py``: ``forward``, ``_base_sub``/``_base_zero``).

    With :math:`a = \mathrm{clamp}(\alpha, 0, 1)`, :math:`b = \mathrm{clamp}(\beta, 0, 1)` and
    :math:`R[t] = 1[V[t-1] > \Theta]`:

    .. math::
        I[t] = a I[t-1] + x[t], \qquad H = b V[t-1] + I[t]

    * subtract: :math:`H \leftarrow H - R[t]\,\Theta`
    * zero:     :math:`H \leftarrow H - H\,R[t]` (the whole step after a spike is zeroed, input included;
      :math:`I` is never reset)
    * none:     unchanged
    * fire (strict): :math:`S[t] = g\,1[H - \Theta > 0]`

    ``reset_delay`` as in :class:`SnnTorchLeaky`. State ``(I, V)`` starts at 0.
    """

    alpha: Param = param_field(0.9)
    beta: Param = param_field(0.9)
    threshold: Param = param_field(1.0)
    reset_mechanism: str = "subtract"
    reset_delay: bool = True
    graded_spikes_factor: Param = param_field(1.0)

    float32_fields = ("alpha", "beta", "threshold", "graded_spikes_factor")
    param_fields = ("alpha", "beta", "threshold")

    def _check_fields(self) -> None:
        _choice(self, "reset_mechanism", SNNTORCH_RESETS)
        _flag(self, "reset_delay")
        if np.any(np.asarray(self.graded_spikes_factor) == 0):
            raise self._fail("graded_spikes_factor", "must be non-zero (snnTorch divides by it)")


def _dt(node: NorseLIF | NorseLIFBox) -> None:
    if not isinstance(node.dt, (int, float)) or isinstance(node.dt, bool) or not math.isfinite(node.dt) \
            or node.dt <= 0:
        raise node._fail("dt", f"must be a number > 0, got {node.dt!r}")
    object.__setattr__(node, "dt", float(node.dt))


@dataclass(frozen=True, eq=False, repr=False)
class NorseLIF(_FrameworkNeuron):
    r"""Norse 1.1 ``LIFCell`` / ``LIF`` (``norse/torch/functional/lif.py``: ``lif_feed_forward_step``).

    The input jumps the current first and the *new* current drives the membrane in the same step:

    .. math::
        J &= I[t-1] + x[t] \\
        H &= V[t-1] + (dt\,\tau_{mem}^{-1})\,((v_{leak} - V[t-1]) + J) \\
        I[t] &= J + (-dt\,\tau_{syn}^{-1})\,J \\
        S[t] &= 1[H - v_{th} > 0] \quad\text{(strict)}, \qquad V[t] = (1 - S)\,H + S\,v_{reset}

    State ``(V, I)`` starts at :math:`V = v_{leak}`, :math:`I = 0`. ``dt`` is a python float, the
    other parameters float32 (Norse's ``LIFParameters`` tensors).
    """

    tau_syn_inv: Param = param_field(200.0)
    tau_mem_inv: Param = param_field(100.0)
    v_leak: Param = param_field(0.0)
    v_th: Param = param_field(1.0)
    v_reset: Param = param_field(0.0)
    dt: float = 0.001

    float32_fields = ("tau_syn_inv", "tau_mem_inv", "v_leak", "v_th", "v_reset")

    def _check_fields(self) -> None:
        _dt(self)


@dataclass(frozen=True, eq=False, repr=False)
class NorseLIFBox(_FrameworkNeuron):
    r"""Norse 1.1 ``LIFBoxCell`` (``norse/torch/functional/lif_box.py``: ``lif_box_feed_forward_step``).

    .. math::
        H = V[t-1] + (dt\,\tau_{mem}^{-1})\,((x[t] + v_{leak}) - V[t-1]), \qquad S[t] = 1[H - v_{th} > 0]

    Reset (``reset``): ``value`` :math:`V = (1 - S) H + S\,v_{reset}` (Norse's ``reset_value``) or
    ``subtract`` :math:`V = (1 - S) H + S (H - v_{th})` (``reset_subtract``). :math:`V` starts at
    :math:`v_{leak}`. (Norse 1.1 has no sequence ``LIFBox`` module, only this cell.)
    """

    tau_mem_inv: Param = param_field(100.0)
    v_leak: Param = param_field(0.0)
    v_th: Param = param_field(1.0)
    v_reset: Param = param_field(0.0)
    dt: float = 0.001
    reset: str = "value"

    float32_fields = ("tau_mem_inv", "v_leak", "v_th", "v_reset")

    def _check_fields(self) -> None:
        _dt(self)
        _choice(self, "reset", ("value", "subtract"))


@dataclass(frozen=True, eq=False, repr=False)
class SinabsLIF(_FrameworkNeuron):
    r"""sinabs 2.0 ``LIF``/``IAF`` and their ``Squeeze`` forms (``sinabs/layers/functional/lif.py``:
    ``lif_forward_single``; ``sinabs/activation``).

    .. math::
        I[t] &= \alpha_{syn}(I[t-1] + x[t]) \ \text{(with } \tau_{syn}\text{)}, \text{ else } x[t] \\
        H &= \alpha V[t-1] + (1 - \alpha) I[t] \ \text{(norm\_input)}, \text{ else } \alpha V[t-1] + I[t]

    with :math:`\alpha = \exp(-1/\tau_{mem})` computed in float32 (1 for IAF). Spikes
    (``spike``): ``multi`` :math:`n = 1[H > 0]\,\mathrm{trunc}(H / \Theta)` (integer counts,
    sinabs' default), ``max`` the same clamped to ``max_spikes``, ``single``
    :math:`n = 1[H - \Theta \ge 0]`. Reset (``reset``): ``subtract`` :math:`V = H - n\,\Theta` (or
    :math:`n \cdot` ``subtract_value``), ``reset`` :math:`V = H\,1[n = 0] + v_{r}` (sinabs adds
    ``reset_value`` to *every* neuron). Then with ``min_v_mem``: :math:`V = \mathrm{relu}(V - m) + m`.
    State ``(V, I)`` starts at 0.
    """

    alpha_mem: Param = param_field(1.0)
    spike_threshold: Param = param_field(1.0)
    alpha_syn: Param | None = param_field(None, optional=True)
    spike: str = "multi"
    max_spikes: int | None = None
    reset: str = "subtract"
    subtract_value: float | None = None
    reset_value: float = 0.0
    min_v_mem: Param | None = param_field(None, optional=True)
    norm_input: bool = False

    float32_fields = ("alpha_mem", "spike_threshold", "alpha_syn", "min_v_mem")
    param_fields = ("alpha_mem", "spike_threshold")

    def _check_fields(self) -> None:
        _choice(self, "spike", SINABS_SPIKES)
        _choice(self, "reset", SINABS_RESETS)
        _flag(self, "norm_input")
        if self.spike == "max":
            if not isinstance(self.max_spikes, int) or isinstance(self.max_spikes, bool) or self.max_spikes < 1:
                raise self._fail("max_spikes", f"must be an int >= 1 with spike='max', got {self.max_spikes!r}")
        elif self.max_spikes is not None:
            raise self._fail("max_spikes", "is only used with spike='max'")
        if self.reset_value is None:
            raise self._fail("reset_value", "must be a number (0.0 by default)")
        for name in ("subtract_value", "reset_value"):
            v = getattr(self, name)
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise self._fail(name, f"must be a finite number, got {v!r}")
                object.__setattr__(self, name, float(v))
        if np.any(np.asarray(self.spike_threshold) <= 0) and self.spike != "single":
            raise self._fail("spike_threshold", "must be > 0 for multi-spike outputs (they divide by it)")


@dataclass(frozen=True, eq=False, repr=False)
class SlayerCUBA(_FrameworkNeuron):
    r"""lava-dl 0.6 SLAYER ``neuron.cuba.Neuron`` on the CPU path: Loihi's integer CUBA dynamics
    (``slayer/neuron/cuba.py``: ``dynamics``/``spike``; ``neuron/dynamics/leaky_integrator.py``:
    ``_li_dynamics_fwd``; ``spike/spike.py``).

    States are int64 in units of :math:`1/s` (``state_scale`` :math:`s = 64\cdot` w_scale, 4096 by
    default); :math:`\mathrm{rs}(a) = \mathrm{trunc}(a / 4096)` (a right shift by 12 rounding toward zero):

    .. math::
        i[t] &= \mathrm{rs}(i[t-1]\,(4096 - d_c)) + \mathrm{trunc}(s\,x[t]) \\
        v'   &= \mathrm{rs}(v[t-1]\,(4096 - d_v)) + \mathrm{trunc}(s\,(i[t] / s)) \\
        S[t] &= 1[v' / s \ge \Theta + 0.01/s] \quad\text{(graded: } S = (v'/s)\,1[\ldots]\text{)} \\
        v[t] &= v'\,1[v' < (\Theta + 0.01/s)\,s]

    ``current_decay`` :math:`d_c` and ``voltage_decay`` :math:`d_v` are the rounded integers in
    [0, 4096] (``round(4096 * decay)``); ``threshold`` :math:`\Theta` is SLAYER's quantized
    threshold (``int(threshold * w_scale) / w_scale``). Both states start at 0 (``persistent_state``
    off) and the current is never reset.
    """

    current_decay: int = 1024
    voltage_decay: int = 128
    threshold: float = 1.0
    state_scale: int = 4096
    graded: bool = False

    def _check_fields(self) -> None:
        for name in ("current_decay", "voltage_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) <= 4096:
                raise self._fail(name, f"must be an int in [0, 4096] (decay x 4096), got {v!r}")
            object.__setattr__(self, name, int(v))
        s = self.state_scale
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0:
            raise self._fail("state_scale", f"must be an int > 0, got {s!r}")
        object.__setattr__(self, "state_scale", int(s))
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise self._fail("threshold", f"must be a number > 0, got {t!r}")
        object.__setattr__(self, "threshold", float(t))
        _flag(self, "graded")


FRAMEWORK_NEURON_TYPES: tuple[type[IRNode], ...] = (SnnTorchLeaky, SnnTorchSynaptic, NorseLIF, NorseLIFBox, SinabsLIF,
                                                    SlayerCUBA)
"""The framework neuron node types (they emit spikes, or spike counts/graded values where stated)."""


# ---------------------------------------------------------------- helper ops
@dataclass(frozen=True, eq=False, repr=False)
class Delay(IRNode):
    r"""Whole-step delay: :math:`y[t] = x[t - k]` for :math:`t \ge k`, zeros before.

    Stateful: streamed step by step it keeps the last ``k`` inputs. SLAYER blocks
    (``delay_shift=True``) delay their output by one step (``slayer/block/base.py:step_delay``);
    NIR's ``Delay`` node with a uniform integer delay is the same op.

    Args:
        steps: :math:`k \ge 1`.
    """

    steps: int = 1

    family = "delay"
    stateful = True

    def _check(self) -> None:
        k = self.steps
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise self._fail("steps", f"must be an int >= 1, got {k!r}")
        object.__setattr__(self, "steps", int(k))


@dataclass(frozen=True, eq=False, repr=False)
class Quantize(IRNode):
    r"""Element-wise rounding to a grid: :math:`y = \mathrm{clamp}(\mathrm{round}(x / q)\,q,\ lo,\ hi)`
    (round half to even, as ``torch.round``).

    SLAYER's ``Input`` block quantizes the data itself this way (``neuron.quantize_8bit``:
    :math:`q = 2/w`, :math:`lo = -256/w`, :math:`hi = 254/w` for ``w_scale`` :math:`w`).

    Args:
        step: the grid step :math:`q` (> 0).
        minimum, maximum: the clamp range (``None``: unbounded).
    """

    step: float = 1.0
    minimum: float | None = None
    maximum: float | None = None

    family = "arith"

    def _check(self) -> None:
        for name in ("step", "minimum", "maximum"):
            v = getattr(self, name)
            if v is None and name != "step":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise self._fail(name, f"must be a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.step <= 0:
            raise self._fail("step", f"must be > 0, got {self.step}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise self._fail("minimum", f"{self.minimum} exceeds maximum {self.maximum}")


@dataclass(frozen=True, eq=False, repr=False)
class SlayerDense(Linear):
    """A :class:`~spikeport.converter.ir.synapse.Linear` that only takes vector inputs.

    SLAYER's ``synapse.Dense`` is a 1x1x1 ``Conv3d``: on ``[B, N, T]`` (after a ``Flatten`` block) it is
    this Linear; on a ``[B, C, H, W, T]`` input it would be a pointwise convolution, which this node
    refuses instead of applying the weights to the last axis.
    """

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        if len(s) != 1:
            raise InputShapeError(self, 0, f"[{self.in_features}]", s, "SLAYER Dense on a non-flat input is a "
                                  "pointwise convolution; insert a slayer.block.cuba.Flatten before it")
        return super()._out_shape(in_shapes)


@dataclass(frozen=True, eq=False, repr=False)
class SlayerPool(SumPool):
    """A :class:`~spikeport.converter.ir.pool.SumPool` (no padding) that refuses the sizes SLAYER pads.

    SLAYER's ``synapse.Pool`` appends ``H mod k`` zero rows (columns) when ``H`` (``W``) is not a
    multiple of the kernel, which no fixed pooling window reproduces; those inputs are refused.
    """

    def _out_shape(self, in_shapes: list[Shape]) -> Shape:
        s = in_shapes[0]
        if len(s) == 3 and any(s[i + 1] % self.kernel_size[i] for i in range(2)):
            raise InputShapeError(self, 0, f"[C, H, W] with H, W multiples of {list(self.kernel_size)}", s,
                                  "SLAYER Pool pads H mod k zero rows, which spikeport does not reproduce")
        return super()._out_shape(in_shapes)

