r"""Float LIF/CUBA layers -> Loihi fixed-point layers (netx conventions).

**Neuron mapping.** Every supported float neuron is a CUBA-LIF with hard reset
to 0, spiking on :math:`H \ge V_{th}`:

.. math::

    I[t] = (1 - d_i) I[t-1] + g\,(W s[t] + b), \quad
    H[t] = (1 - d_v) V[t-1] + I[t], \quad
    S[t] = H[t] \ge V_{th}, \quad V[t] = H[t](1 - S[t])

* LIF, ``decay_input=False``: :math:`H = (1 - 1/\tau) V + x` -> ``d_i = 1`` (the
  current does not persist: ``iDecay = 4096``), ``d_v = 1/tau``
  (``vDecay = round(4096/tau)``), ``g = 1``.
* LIF, ``decay_input=True``: :math:`H = (1 - 1/\tau) V + x/\tau` -> as above with
  ``g = 1/tau`` folded into weights and bias. PLIF: the same with the trained tau.
* IF: ``d_v = 0`` (``vDecay = 0``). DA-LIF (scalar): ``d_v = 1 - beta``, ``g = alpha``.
* CUBA-LIF: ``iDecay = round(4096 d_i)``, ``vDecay = round(4096 d_v)`` directly.

Lava adds the bias to ``v``, not to the current, so a bias needs ``d_i = 1``.
Soft reset and ``v_reset != 0`` have no Lava LIF equivalent and are refused.

**Scaling.** Lava computes ``u = W_int s << 6`` (with ``d_i = 1``),
``v += u + b_int << 6`` and fires on ``v > vth << 6``; divided by 64 this is the
float model with every quantity multiplied by one per-layer factor ``s``:
``W_int = round(W s)``, ``b_int = round(b s)``, ``vth = round(V_th s)``. Spikes
are scale-free, so ``s`` is free per layer; precision is limited by the 8-bit
weights, so ``scale='auto'`` picks the largest ``s`` that keeps the weights in
8 bits (mixed sign: even values in ``[-256, 254]``, as slayer's ``quantize_8bit``
and Loihi's signed 8-bit weight field; single sign: ``[0, 255]`` /
``[-255, 0]``), ``vth`` in 17 bits and the bias in 13 bits.
``scale='slayer'`` reproduces lava-dl's fixed ``w_scale = 64``
(``vThMant = int(threshold * 64)``), which loses most weight bits for small
weights. Lava's strict ``>`` against float's ``>=`` only differs when ``v``
equals the threshold exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spikeport.errors import ExportError, GraphError
from spikeport.targets.lava.network import (
    BIAS_MAX,
    BIAS_MIN,
    DECAY_UNITY,
    VTH_MAX,
    LoihiLayer,
    LoihiNetwork,
    conv_output_hw,
)

__all__ = [
    "W_SCALE",
    "FloatNeuron",
    "FloatLayer",
    "quantize_decay",
    "choose_scale",
    "quantize_weight",
    "quantize_layer",
    "quantize_population",
    "quantize_network",
    "spike_agreement",
]

W_SCALE = 64   # lava-dl's w_scale: 1.0 in float = 64 in the file


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@dataclass(frozen=True)
class FloatNeuron:
    """A float CUBA-LIF with hard reset to 0 (see the module docstring).

    Attributes:
        v_threshold: firing threshold (> 0); spikes on ``H >= v_threshold``.
        v_decay: fraction of ``V`` lost per step, in [0, 1] (``1/tau``; 0 for IF).
        i_decay: fraction of the current lost per step, in [0, 1] (1: no current state).
        input_gain: factor on the synaptic input (``1/tau`` for ``decay_input=True``).
    """

    v_threshold: float
    v_decay: float = 0.0
    i_decay: float = 1.0
    input_gain: float = 1.0

    def __post_init__(self) -> None:
        for name in ("v_threshold", "v_decay", "i_decay", "input_gain"):
            value = getattr(self, name)
            if not _finite(value):
                raise ExportError(f"FloatNeuron: {name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.v_threshold <= 0:
            raise ExportError(f"FloatNeuron: v_threshold must be > 0, got {self.v_threshold}")
        if not (0.0 <= self.v_decay <= 1.0 and 0.0 <= self.i_decay <= 1.0):
            raise ExportError(f"FloatNeuron: v_decay and i_decay must lie in [0, 1], got {self.v_decay} "
                              f"and {self.i_decay}")
        if self.input_gain <= 0:
            raise ExportError(f"FloatNeuron: input_gain must be > 0, got {self.input_gain}")

    @staticmethod
    def check_reset(owner: str, v_reset: float | None) -> None:
        if v_reset is None:
            raise ExportError(f"{owner}: soft reset (v_reset=None) has no Lava LIF equivalent; retrain with hard "
                              f"reset v_reset=0")
        if v_reset != 0.0:
            raise ExportError(f"{owner}: Lava's LIF resets to 0, got v_reset={v_reset}; retrain with v_reset=0")

    @classmethod
    def lif(cls, tau: float, v_threshold: float = 1.0, decay_input: bool = False,
            v_reset: float | None = 0.0) -> FloatNeuron:
        """LIF with time constant ``tau`` (``decay_input`` as in spikeport's LIF)."""
        cls.check_reset("LIF", v_reset)
        if not _finite(tau) or tau < 1.0:
            raise ExportError(f"LIF: tau must be >= 1, got {tau}")
        return cls(v_threshold, v_decay=1.0 / tau, input_gain=1.0 / tau if decay_input else 1.0)

    @classmethod
    def if_(cls, v_threshold: float = 1.0, v_reset: float | None = 0.0) -> FloatNeuron:
        """Integrate-and-fire (no leak)."""
        cls.check_reset("IF", v_reset)
        return cls(v_threshold)

    @classmethod
    def cuba(cls, i_decay: float, v_decay: float, v_threshold: float = 1.0,
             v_reset: float | None = 0.0) -> FloatNeuron:
        """Current-based LIF (Loihi's CUBA neuron)."""
        cls.check_reset("CubaLIF", v_reset)
        return cls(v_threshold, v_decay=v_decay, i_decay=i_decay)


@dataclass(frozen=True, eq=False)
class FloatLayer:
    """A float layer to quantize: synapse (+ bias) into a :class:`FloatNeuron`, or a flatten.

    Attributes:
        kind: ``'dense'``, ``'conv'`` or ``'flatten'``.
        weight: float weights, dense ``(out, in)``, conv ``(out, in/groups, kH, kW)``.
        bias: float bias ``(out,)`` or None.
        neuron: the neuron after the synapse (required for dense/conv).
        stride, padding, dilation, groups: conv geometry ``(H, W)``.
        name: label for messages (e.g. the IR node name).
    """

    kind: str
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    neuron: FloatNeuron | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        owner = f"float {self.kind} layer" + (f" {self.name!r}" if self.name else "")
        if self.kind not in ("dense", "conv", "flatten"):
            raise ExportError(f"{owner}: kind must be dense, conv or flatten")
        if self.kind == "flatten":
            return
        if self.weight is None or self.neuron is None:
            raise ExportError(f"{owner}: weight and neuron are required")
        for key in ("weight", "bias"):
            value = getattr(self, key)
            if value is None:
                continue
            arr = np.array(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)
            if not np.all(np.isfinite(arr)):
                raise ExportError(f"{owner}: {key} has non-finite values")
            arr.setflags(write=False)
            object.__setattr__(self, key, arr)


def quantize_decay(fraction: float) -> int:
    """Decay fraction per step -> Loihi's 12-bit decay (``round(4096 * fraction)``, half to even as slayer)."""
    if not _finite(fraction) or not 0.0 <= fraction <= 1.0:
        raise ExportError(f"decay must lie in [0, 1], got {fraction!r}")
    return int(np.rint(fraction * DECAY_UNITY))


def _weight_limits(w: np.ndarray) -> tuple[str, float]:
    """Sign mode and the largest scale keeping ``w`` in its 8-bit range (inf if all zero)."""
    pos = float(w.max(initial=0.0))
    neg = float(-w.min(initial=0.0))
    if pos > 0 and neg > 0:
        return "mixed", min(254.0 / pos, 256.0 / neg)
    if pos > 0:
        return "excitatory", 255.0 / pos
    if neg > 0:
        return "inhibitory", 255.0 / neg
    return "zero", math.inf


def choose_scale(weight: np.ndarray, bias: np.ndarray | None, v_threshold: float) -> float:
    """Largest per-layer factor keeping weights (8 bit), ``vth`` (17 bit) and bias (13 bit) in range."""
    _, s = _weight_limits(np.asarray(weight, dtype=np.float64))
    s = min(s, VTH_MAX / v_threshold)
    if bias is not None and np.size(bias):
        b = np.asarray(bias, dtype=np.float64)
        if b.max() > 0:
            s = min(s, BIAS_MAX / b.max())
        if b.min() < 0:
            s = min(s, -BIAS_MIN / -b.min())
    return s


def quantize_weight(weight: np.ndarray, scale: float) -> np.ndarray:
    """``weight * scale`` on Loihi's 8-bit grid (even values for mixed sign), as int64."""
    w = np.asarray(weight, dtype=np.float64) * scale
    mode, _ = _weight_limits(w)
    if mode == "mixed":
        return np.clip(2 * np.rint(w / 2), -256, 254).astype(np.int64)
    if mode == "inhibitory":
        return np.clip(np.rint(w), -255, 0).astype(np.int64)
    return np.clip(np.rint(w), 0, 255).astype(np.int64)


def quantize_layer(layer: FloatLayer, in_shape: Sequence[int], scale: float | str = "auto",
                   name: str = "") -> LoihiLayer:
    """Quantize one float layer fed by ``in_shape`` (torch order).

    Args:
        layer: the float layer.
        in_shape: shape of its input, ``(N,)`` or ``(C, H, W)``.
        scale: ``'auto'`` (max precision), ``'slayer'`` (lava-dl's fixed 64) or a
            positive float factor.
        name: label stored in the :class:`LoihiLayer` (default ``layer.name``).

    Raises:
        ExportError: if the layer cannot be mapped (see the module docstring).
    """
    label = name or layer.name
    owner = f"{layer.kind} layer" + (f" {label!r}" if label else "")
    in_shape = tuple(int(s) for s in in_shape)
    if layer.kind == "flatten":
        return LoihiLayer("flatten", (int(np.prod(in_shape)),), name=label)
    neuron = layer.neuron
    if neuron is None:  # FloatLayer requires one for dense/conv layers
        raise ExportError(f"{owner}: a {layer.kind} layer needs a neuron")
    (w_int,), b_int, vth, s = quantize_population([np.asarray(layer.weight)], layer.bias, neuron, scale, owner)
    if layer.kind == "dense":
        shape: tuple[int, ...] = (w_int.shape[0],)
        kw: dict[str, Any] = {}
    else:
        if len(in_shape) != 3:
            raise ExportError(f"{owner}: a conv layer needs a (C, H, W) input, got {in_shape}")
        hw = conv_output_hw(in_shape[1:], w_int.shape[2:4], _pair(layer.stride), _pair(layer.padding),
                            _pair(layer.dilation))
        shape = (w_int.shape[0], *hw)
        kw = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation, "groups": layer.groups}
    try:
        return LoihiLayer(layer.kind, shape, weight=w_int, bias=b_int,
                          i_decay=quantize_decay(neuron.i_decay), v_decay=quantize_decay(neuron.v_decay),
                          v_th_mant=vth, scale=s, name=label, **kw)
    except GraphError as e:
        raise ExportError(f"{owner}: quantized layer is not valid for netx: {e}") from e


def quantize_population(weights: Sequence[np.ndarray], bias: np.ndarray | None, neuron: FloatNeuron,
                        scale: float | str, owner: str) -> tuple[list[np.ndarray], np.ndarray | None, int, float]:
    """Quantize the synapses into one neuron population with one shared factor (the population's scale).

    Every weight array (the float synapses into the population, before the neuron's input gain) and the
    summed bias are multiplied by the neuron's ``input_gain`` and by one factor ``s``: ``'auto'`` picks the
    largest ``s`` keeping every weight array in its 8-bit range (:func:`choose_scale` over all of them),
    the threshold in 17 bits and the bias in 13 bits; ``'slayer'`` uses lava-dl's fixed 64; a number is
    used as is.

    Returns:
        ``(integer weights, integer bias or None, threshold mantissa, s)``.

    Raises:
        ExportError: naming ``owner``: a bias with current decay, no usable scale, out-of-range values.
    """
    ws = [np.asarray(w, dtype=np.float64) * neuron.input_gain for w in weights]
    b = None if bias is None else np.asarray(bias, dtype=np.float64) * neuron.input_gain
    if b is not None and np.any(b != 0) and neuron.i_decay != 1.0:
        raise ExportError(f"{owner}: a bias with current decay i_decay={neuron.i_decay} < 1 cannot be mapped (Lava "
                          f"adds the bias to the voltage, not the current); fold it away or use i_decay=1")
    if scale == "slayer":
        s = float(W_SCALE)
        vth = int(neuron.v_threshold * W_SCALE)   # slayer's v_th_mant truncates
        w_ints = [np.clip(2 * np.rint(w * s / 2), -256, 254).astype(np.int64) for w in ws]
    else:
        if scale == "auto":
            s = min(choose_scale(w, b, neuron.v_threshold) for w in ws)
        elif isinstance(scale, (int, float)) and not isinstance(scale, bool) and _finite(scale) and scale > 0:
            s = float(scale)
        else:
            raise ExportError(f"{owner}: scale must be 'auto', 'slayer' or a positive number, got {scale!r}")
        if not math.isfinite(s):
            raise ExportError(f"{owner}: cannot choose a scale (all weights are zero)")
        vth = int(np.rint(neuron.v_threshold * s))
        w_ints = [quantize_weight(w, s) for w in ws]
    for w, w_int in zip(ws, w_ints, strict=True):
        if not np.any(w_int) and np.any(w):
            raise ExportError(_all_weights_zero(owner, w, b, neuron.v_threshold, s, scale))
    if vth > VTH_MAX:
        raise ExportError(f"{owner}: threshold {neuron.v_threshold} x scale {s:g} = {vth} exceeds the 17-bit "
                          f"mantissa {VTH_MAX}; use a smaller scale")
    b_int = None
    if b is not None and np.any(b != 0):
        b_int = np.rint(b * s).astype(np.int64)
        if b_int.min() < BIAS_MIN or b_int.max() > BIAS_MAX:
            raise ExportError(f"{owner}: bias x scale {s:g} leaves the 13-bit mantissa range [{BIAS_MIN}, "
                              f"{BIAS_MAX}]; use scale='auto' or a smaller scale")
    return w_ints, b_int, vth, s


def _all_weights_zero(owner: str, w: np.ndarray, b: np.ndarray | None, v_threshold: float, s: float,
                      scale: float | str) -> str:
    """Why every (nonzero) float weight of a layer rounds to 0 at scale ``s``, and the fix (one line)."""
    mode, s_w = _weight_limits(np.asarray(w, dtype=np.float64))
    wmax = float(np.abs(w).max())
    lost = f"at scale {s:.4g} the largest |effective weight| {wmax:.4g} becomes {wmax * s:.3g}, which rounds to 0"
    if scale == "slayer":
        return f"{owner}: every weight rounds to 0: {lost} at lava-dl's fixed scale 64; use scale='auto'"
    if scale != "auto":
        return f"{owner}: every weight rounds to 0: {lost}; use scale='auto' or a larger scale"
    step = 2.0 if mode == "mixed" else 1.0  # mixed-sign weights live on the even grid
    if s >= VTH_MAX / v_threshold * (1 - 1e-12):  # the 17-bit threshold set the scale
        any_bits = VTH_MAX * 2.0 / step  # below this V_th / max|w|, the largest weight survives rounding
        all_bits = VTH_MAX / (s_w * wmax)  # below this, the weights get their whole 8-bit range
        return (f"{owner}: every weight rounds to 0 because of the threshold, not the weights: Loihi's threshold is "
                f"a 17-bit mantissa (at most {VTH_MAX}), so V_th = {v_threshold:g} caps the layer's scale at "
                f"{VTH_MAX}/{v_threshold:g} = {s:.4g}, and {lost}; V_th is {v_threshold / wmax:.4g} x the largest "
                f"effective weight (weight x input gain, / input scale on the first layer), while 8-bit weights keep "
                f"any bits only below {any_bits:.4g} x and all 8 bits up to {all_bits:.4g} x: lower this layer's "
                f"threshold relative to its weights (retrain or fine-tune with a smaller v_threshold)")
    bmax = float(np.abs(b).max()) if b is not None and np.size(b) else 0.0
    return (f"{owner}: every weight rounds to 0 because of the bias: Loihi's bias is a 13-bit mantissa "
            f"(|b x scale| <= {BIAS_MAX}), so the largest |bias| {bmax:.4g} caps the layer's scale at {s:.4g}, and "
            f"{lost}; the bias is {bmax / wmax:.4g} x the largest weight: retrain with a smaller bias (or larger "
            f"weights) for this layer")


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def quantize_network(layers: Sequence[FloatLayer], input_shape: Sequence[int],
                     scale: float | str = "auto") -> LoihiNetwork:
    """Quantize a chain of float layers into a :class:`LoihiNetwork`.

    Args:
        layers: the float layers in order (dense/conv/flatten).
        input_shape: one input step, ``(N,)`` or ``(C, H, W)``.
        scale: as in :func:`quantize_layer` (applied per layer).

    Raises:
        ExportError: naming the layer index if a layer cannot be mapped.
    """
    shape = tuple(int(s) for s in input_shape)
    out: list[LoihiLayer] = []
    for i, layer in enumerate(layers):
        try:
            q = quantize_layer(layer, shape, scale, name=layer.name or str(i))
        except ExportError as e:
            raise ExportError(f"layer {i}: {e}") from e
        out.append(q)
        shape = q.shape
    try:
        return LoihiNetwork(tuple(int(s) for s in input_shape), tuple(out))
    except GraphError as e:
        raise ExportError(str(e)) from e


def spike_agreement(a: dict[int, Any], b: dict[int, Any]) -> dict[int, float]:
    """Fraction of equal spike entries per layer between two ``{layer: spikes}`` results."""
    out = {}
    for i in a:
        x = np.asarray(a[i].cpu() if hasattr(a[i], "cpu") else a[i]) != 0
        y = np.asarray(b[i].cpu() if hasattr(b[i], "cpu") else b[i]) != 0
        if x.shape != y.shape:
            raise ExportError(f"layer {i}: spike shapes differ: {x.shape} vs {y.shape}")
        out[i] = float((x == y).mean())
    return out
