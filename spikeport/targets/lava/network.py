"""Fixed-point network description for the Lava / Loihi 2 target.

A :class:`LoihiNetwork` is the small intermediate that the spikeport IR is
lowered onto before it is written as a lava-dl netx HDF5 file. It holds exactly
what netx reads, already as integers, and nothing else: a chain of
:class:`LoihiLayer` (``dense``, ``conv`` or ``flatten``) fed by a spike input of
``input_shape``. Every layer with synapses owns a layer of CUBA neurons, run by
Lava's bit-accurate LIF model::

    u[t] = u[t-1] * (4096 - i_decay) / 4096 + (W . s[t-1]) << 6      (24-bit wrap)
    v[t] = v[t-1] * (4096 - v_decay) / 4096 + u[t] + bias << 6       (24-bit saturate)
    spike = v[t] > v_th_mant << 6;  v[t] = 0 where spiked

(products are truncated towards zero; see :mod:`spikeport.targets.lava.loihi_reference`).
Shapes are in torch order, ``(C, H, W)`` or ``(N,)``; netx reverses them.

Dense weights go through netx's ``optimize_weight_bits`` and Lava's Dense model
(sign mode, shift to fill 8 bits, exponent); :func:`netx_dense_weights`
reproduces that pipeline. Inside the ranges :class:`LoihiLayer` accepts, the
result is lossless, i.e. the effective synaptic weight equals the stored
integer. netx stores no weight exponent of its own: conv weights are used as
stored and dense exponents are derived from the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeport.errors import GraphError

__all__ = [
    "LoihiLayer",
    "LoihiNetwork",
    "LAYER_KINDS",
    "DECAY_UNITY",
    "VTH_MAX",
    "BIAS_MIN",
    "BIAS_MAX",
    "conv_output_hw",
    "netx_dense_weights",
]

LAYER_KINDS = ("dense", "conv", "flatten")
DECAY_UNITY = 4096          # decays are fractions of 4096 (12 bits + Lava's offset)
VTH_MAX = (1 << 17) - 1     # vth is an unsigned 17-bit mantissa (Lava's LIF docstring)
BIAS_MIN, BIAS_MAX = -(1 << 12), (1 << 12) - 1   # bias_mant is a signed 13-bit mantissa
_SIGN_MIXED, _SIGN_EXC, _SIGN_INH = 1, 2, 3       # netx SYNAPSE_SIGN_MODE values


def _pair(owner: str, name: str, value: Any) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError) as e:
        raise GraphError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}") from e
    return a, b


def _int_array(owner: str, name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        raise GraphError(f"{owner}: {name} must be a non-empty numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise GraphError(f"{owner}: {name} must hold integers (quantize it first, "
                         f"see spikeport.targets.lava.quantize)")
    out = np.array(arr, dtype=np.int64)
    out.setflags(write=False)
    return out


def conv_output_hw(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """Spatial output size of a 2-D convolution (torch / Lava formula)."""
    h, w = ((hw[i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(2))
    return h, w


def _sign_mode(weight: np.ndarray) -> int:
    if weight.max() < 0:
        return _SIGN_INH
    if weight.min() >= 0:
        return _SIGN_EXC
    return _SIGN_MIXED


def _dense_range_problem(weight: np.ndarray) -> str | None:
    lo, hi = int(weight.min()), int(weight.max())
    if lo == 0 and hi == 0:
        return "dense weights are all zero, which netx's optimize_weight_bits cannot handle (log2 of inf)"
    mode = _sign_mode(weight)
    if mode == _SIGN_MIXED and not (lo >= -256 and hi <= 254):
        return f"mixed-sign dense weights must lie in [-256, 254], got [{lo}, {hi}]"
    if mode == _SIGN_EXC and hi > 255:
        return f"excitatory dense weights must lie in [0, 255], got [{lo}, {hi}]"
    if mode == _SIGN_INH and lo < -256:
        return f"inhibitory dense weights must lie in [-256, -1], got [{lo}, {hi}]"
    return None


def _netx_pipeline(w: np.ndarray) -> tuple[np.ndarray, int, int, int, int]:
    """netx optimize_weight_bits + Lava clip/truncate; also returns netx's left shift."""
    mode = _sign_mode(w)
    hi, lo = int(w.max()), int(w.min())
    signed = 1 if mode == _SIGN_MIXED else 0
    if mode == _SIGN_MIXED:
        scale = min(127 / hi if hi > 0 else math.inf, -128 / lo)
    elif mode == _SIGN_INH:
        scale = -256 / lo
    else:
        scale = 255 / hi
    shift = int(math.floor(math.log2(scale))) + signed
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= signed
    num_weight_bits = 8 - shift - n
    # Lava Dense fixed_pt: clip to 8 bits for the sign mode, then drop the unused LSBs
    flip = -1 if mode == _SIGN_INH else 1
    w_opt = np.clip(flip * (w << shift), -256 if mode == _SIGN_MIXED else 0, 255)
    drop = 8 - num_weight_bits + signed
    w_opt = flip * ((w_opt >> drop) << drop)
    return w_opt.astype(np.int64), num_weight_bits, -shift, mode, shift


def _dense_weight_problem(weight: np.ndarray) -> str | None:
    """Why netx + Lava cannot use ``weight`` losslessly (None if they can)."""
    problem = _dense_range_problem(weight)
    if problem:
        return problem
    w_lava, _, _, mode, shift = _netx_pipeline(weight)
    if not np.array_equal(w_lava, weight << shift):
        hint = (" (netx shifts an inhibitory-only matrix whose most negative weight is a power of two to -256, "
                "which Lava clips to -255 and truncates)" if mode == _SIGN_INH else "")
        return f"netx/Lava would not reproduce these dense weights exactly{hint}; rescale them"
    return None


def netx_dense_weights(weight: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """Weights as Lava's fixed-point Dense model uses them after netx loads a file.

    Reproduces netx's ``utils.optimize_weight_bits`` (sign mode, left shift that
    fills 8 bits, trailing-zero stripping) followed by Lava's ``clip_weights``
    (8 bits) and ``truncate_weights`` (``num_weight_bits``). The Dense model then
    computes ``(W_lava @ s) >> -weight_exp`` (arithmetic shift, i.e. floor).

    Args:
        weight: integer weight matrix ``(out, in)`` as stored in the file.

    Returns:
        ``(w_lava, num_weight_bits, weight_exp, sign_mode)`` with ``w_lava`` int64
        and ``sign_mode`` netx's SYNAPSE_SIGN_MODE value (1 mixed, 2 exc., 3 inh.).

    Raises:
        GraphError: if the weights are outside the ranges netx handles (all zero,
            or beyond 8 bits for their sign mode).
    """
    w = np.asarray(weight, dtype=np.int64)
    problem = _dense_range_problem(w)
    if problem is not None:
        raise GraphError(problem)
    w_lava, num_weight_bits, weight_exp, mode, _ = _netx_pipeline(w)
    return w_lava, num_weight_bits, weight_exp, mode


@dataclass(frozen=True, eq=False)
class LoihiLayer:
    """One netx layer: synapses (dense / conv) into CUBA neurons, or a flatten.

    Attributes:
        kind: ``'dense'``, ``'conv'`` or ``'flatten'``.
        shape: neuron shape in torch order: ``(N,)`` for dense/flatten (for a
            flatten: the flattened size), ``(C, H, W)`` for conv.
        weight: integer weights as stored in netx: dense ``(out, in)``, conv
            ``(out, in // groups, kH, kW)`` (cross-correlation, as torch). Dense
            weights must fit netx's 8-bit sign modes: mixed ``[-256, 254]``,
            excitatory ``[0, 255]``, inhibitory ``[-256, -1]``, and be reproduced
            exactly by netx/Lava (see :func:`netx_dense_weights`); conv ``[-256, 255]``.
        bias: integer bias mantissa (added as ``bias << 6`` to ``v`` every step),
            ``(N,)`` for dense, per channel ``(C,)`` for conv, in ``[-4096, 4095]``;
            ``None`` for no bias.
        i_decay: current decay in 1/4096 per step (4096: the current does not persist).
        v_decay: voltage decay in 1/4096 per step (0: no leak).
        v_th_mant: threshold mantissa; a neuron spikes when ``v > v_th_mant << 6``.
        ref_delay: refractory delay; must be 1 (Lava's LIF has no refractory
            period and netx ignores ``refDelay``).
        stride, padding, dilation, groups: conv geometry, ``(H, W)`` order.
        scale: float-to-integer factor used by :mod:`~spikeport.targets.lava.quantize`
            (integer = float * scale); informational only.
        name: optional label used in error messages (e.g. the IR node name).
    """

    kind: str
    shape: tuple[int, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    i_decay: int = DECAY_UNITY
    v_decay: int = 0
    v_th_mant: int = 64
    ref_delay: int = 1
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    scale: float | None = None
    name: str = field(default="", compare=False)

    @property
    def synapse_weight(self) -> np.ndarray:
        """The weight of a dense or conv layer (a flatten layer has none: GraphError)."""
        if self.weight is None:
            raise GraphError(f"{self.label}: a {self.kind} layer has no synapse weight")
        return self.weight

    @property
    def label(self) -> str:
        """``"Loihi <kind> layer [name]"`` for messages."""
        return f"Loihi {self.kind} layer" + (f" {self.name!r}" if self.name else "")

    def __post_init__(self) -> None:
        owner = self.label
        if self.kind not in LAYER_KINDS:
            raise GraphError(f"{owner}: kind must be one of {', '.join(LAYER_KINDS)}, got {self.kind!r}")
        try:
            shape = tuple(int(s) for s in self.shape)
        except (TypeError, ValueError) as e:
            raise GraphError(f"{owner}: shape must be a tuple of ints, got {self.shape!r}") from e
        want = 3 if self.kind == "conv" else 1
        if len(shape) != want or min(shape) <= 0:
            raise GraphError(f"{owner}: shape must be {'(C, H, W)' if want == 3 else '(N,)'} with positive "
                             f"sizes, got {shape}")
        object.__setattr__(self, "shape", shape)
        if self.kind == "flatten":
            if self.weight is not None or self.bias is not None:
                raise GraphError(f"{owner}: a flatten layer has no weight or bias")
            return
        for pname in ("stride", "padding", "dilation"):
            object.__setattr__(self, pname, _pair(owner, pname, getattr(self, pname)))
        object.__setattr__(self, "groups", int(self.groups))
        for pname in ("i_decay", "v_decay", "v_th_mant", "ref_delay"):
            object.__setattr__(self, pname, int(getattr(self, pname)))
        if self.weight is None:
            raise GraphError(f"{owner}: weight is required")
        w = _int_array(owner, "weight", self.weight)
        object.__setattr__(self, "weight", w)
        if self.bias is not None:
            object.__setattr__(self, "bias", _int_array(owner, "bias", self.bias))
        problem = self._problem(w, self.bias)
        if problem:
            raise GraphError(f"{owner}: {problem}")

    def _problem(self, w: np.ndarray, b: np.ndarray | None) -> str | None:
        if not 0 <= self.i_decay <= DECAY_UNITY or not 0 <= self.v_decay <= DECAY_UNITY:
            return f"i_decay and v_decay must lie in [0, 4096], got {self.i_decay} and {self.v_decay}"
        if not 0 <= self.v_th_mant <= VTH_MAX:
            return f"v_th_mant must lie in [0, {VTH_MAX}] (17-bit mantissa), got {self.v_th_mant}"
        if self.ref_delay != 1:
            return (f"ref_delay must be 1: Lava's LIF has no refractory period and netx ignores refDelay, "
                    f"got {self.ref_delay}")
        n_out = self.shape[0]
        if self.kind == "dense":
            if w.ndim != 2 or w.shape[0] != n_out:
                return f"dense weight must have shape ({n_out}, in_features), got {w.shape}"
            problem = _dense_weight_problem(w)
            if problem:
                return problem
        else:
            if w.ndim != 4 or w.shape[0] != n_out:
                return f"conv weight must have shape ({n_out}, in/groups, kH, kW), got {w.shape}"
            if self.groups < 1 or n_out % self.groups:
                return f"groups={self.groups} must be >= 1 and divide the {n_out} output channels"
            if w.min() < -256 or w.max() > 255:
                return f"conv weights must lie in [-256, 255], got [{w.min()}, {w.max()}]"
            if min(self.stride) < 1 or min(self.dilation) < 1 or min(self.padding) < 0:
                return (f"stride/dilation must be >= 1 and padding >= 0, got stride={self.stride}, "
                        f"padding={self.padding}, dilation={self.dilation}")
        if b is not None:
            if b.shape != (n_out,):
                what = "one per channel" if self.kind == "conv" else "one per neuron"
                return f"bias must have shape ({n_out},) ({what}), got {b.shape}"
            if b.min() < BIAS_MIN or b.max() > BIAS_MAX:
                return f"bias mantissa must lie in [{BIAS_MIN}, {BIAS_MAX}] (13 bits), got [{b.min()}, {b.max()}]"
        return None

    @property
    def has_neurons(self) -> bool:
        """True for dense/conv (a Lava block with synapse + LIF), False for flatten."""
        return self.kind != "flatten"

    @property
    def in_features(self) -> int:
        """Number of inputs of a dense layer."""
        if self.kind != "dense" or self.weight is None:
            raise GraphError(f"{self.label}: in_features is defined for dense layers only")
        return int(self.weight.shape[1])

    @property
    def kernel_size(self) -> tuple[int, int]:
        """``(kH, kW)`` of a conv layer."""
        if self.kind != "conv" or self.weight is None:
            raise GraphError(f"{self.label}: kernel_size is defined for conv layers only")
        return int(self.weight.shape[2]), int(self.weight.shape[3])

    @property
    def size(self) -> int:
        """Number of neurons (flattened)."""
        return int(np.prod(self.shape))


@dataclass(frozen=True, eq=False)
class LoihiNetwork:
    """A sequential netx network: spike input of ``input_shape`` then ``layers``.

    Attributes:
        input_shape: shape of one input step in torch order, ``(N,)`` or ``(C, H, W)``.
        layers: the layers, in order; the last one must have neurons.

    Raises:
        GraphError: naming the layer index when layers do not chain (shape
            mismatch, flatten in a wrong place, empty network).
    """

    input_shape: tuple[int, ...]
    layers: tuple[LoihiLayer, ...]

    def __post_init__(self) -> None:
        try:
            shape = tuple(int(s) for s in self.input_shape)
        except (TypeError, ValueError) as e:
            raise GraphError(f"Loihi network: input_shape must be a tuple of ints, got {self.input_shape!r}") from e
        if len(shape) not in (1, 3) or min(shape) <= 0:
            raise GraphError(f"Loihi network: input_shape must be (N,) or (C, H, W) with positive sizes, got {shape}")
        object.__setattr__(self, "input_shape", shape)
        layers = tuple(self.layers)
        object.__setattr__(self, "layers", layers)
        if not layers or not any(layer.has_neurons for layer in layers):
            raise GraphError("Loihi network: needs at least one dense or conv layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, LoihiLayer):
                raise GraphError(f"Loihi network layer {i}: expected a LoihiLayer, got {type(layer).__name__}")
        prev: tuple[int, ...] = shape
        for i, layer in enumerate(layers):
            problem = self._chain_problem(i, layer, prev)
            if problem:
                raise GraphError(f"Loihi network layer {i} ({layer.kind}{' ' + layer.name if layer.name else ''}): "
                                 f"{problem}")
            prev = layer.shape
        if not layers[-1].has_neurons:
            raise GraphError(f"Loihi network layer {len(layers) - 1} (flatten): the last layer must be dense or conv")

    def _chain_problem(self, i: int, layer: LoihiLayer, prev: tuple[int, ...]) -> str | None:
        n_prev = int(np.prod(prev))
        before = self.layers[i - 1] if i > 0 else None
        if layer.kind == "flatten":
            if before is not None and before.kind != "conv":
                return "a flatten must follow a conv layer or the input (netx flattens (W, H, C) conv output only)"
            if layer.size != n_prev:
                return f"flattened size {layer.size} != {n_prev} = size of its input {prev}"
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if nxt is not None and nxt.kind != "dense":
                return "a flatten must be followed by a dense layer"
            return None
        if layer.kind == "dense":
            if before is not None and before.kind == "conv":
                return "a dense layer after a conv layer needs a flatten layer in between (netx wiring)"
            if layer.in_features != n_prev:
                return f"weight expects {layer.in_features} inputs but its input {prev} has {n_prev}"
            return None
        if len(prev) != 3 or (before is not None and before.kind != "conv"):
            return f"a conv layer needs a (C, H, W) input from the network input or a conv layer, got {prev}"
        in_ch = int(np.shape(layer.synapse_weight)[1]) * layer.groups
        if in_ch != prev[0]:
            return f"weight expects {in_ch} input channels but its input {prev} has {prev[0]}"
        hw = conv_output_hw(prev[1:], layer.kernel_size, layer.stride, layer.padding, layer.dilation)
        if min(hw) <= 0 or (layer.shape[1], layer.shape[2]) != hw:
            return f"output shape {layer.shape} does not match the convolution of {prev}: expected spatial {hw}"
        return None

    @property
    def neuron_layers(self) -> tuple[int, ...]:
        """Indices of the layers with neurons (the ones whose spikes are recorded)."""
        return tuple(i for i, layer in enumerate(self.layers) if layer.has_neurons)

    def latency(self, index: int) -> int:
        """Lava latency in steps of layer ``index``'s spikes after the input.

        Every Lava Dense/Conv synapse sends, at step ``t``, what it accumulated at
        step ``t - 1``, so neuron layer ``k`` (1-based among dense/conv layers)
        fires at step ``t + k`` on the input of step ``t``. Flatten adds nothing.
        """
        if not 0 <= index < len(self.layers):
            raise GraphError(f"Loihi network: no layer {index} (it has {len(self.layers)})")
        return sum(1 for layer in self.layers[: index + 1] if layer.has_neurons)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Neuron shape of the last layer."""
        return self.layers[-1].shape
