"""The SNN frameworks as NIR producers and consumers, for benchmarks/nir_interop.py and its fast test.

For each framework (snnTorch, Norse, sinabs, SpikingJelly, plain nirtorch with a user's own neurons, lava-dl
SLAYER) a :class:`Producer` builds a digits MLP (64-H-10) or CNN (conv8-conv16-pool-fc10) from given
weights, runs it in the framework itself (``own``: the reference), exports it with the framework's NIR
exporter (``export``, with the workarounds docs/nir.md documents) and reads a NIR graph back with the
framework's importer (``their_import``). Every run returns a :class:`Run`: the spikes of each spiking layer
in network order (``[T, B, ...]``, spike counts for sinabs) and the logits (output spikes summed over T).
Inputs are ``[T, B, ...]`` (direct encoding: the same frame every step).
"""

from __future__ import annotations

import copy
import importlib
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

warnings.filterwarnings("ignore")
logging.getLogger("norse").setLevel(logging.ERROR)
os.environ.setdefault("PYTHONWARNINGS", "ignore")

__all__ = ["Run", "Producer", "PRODUCERS", "Weights", "random_weights", "trained_weights", "digits_inputs",
           "record_outputs"]

Weights = dict[str, np.ndarray]


@dataclass
class Run:
    """Spikes per spiking layer (network order, ``[T, B, neurons]``) and logits ``[B, 10]``."""

    spikes: list[np.ndarray]
    logits: np.ndarray


# ---------------------------------------------------------------- data and weights
def digits_inputs(n: int, t: int, image: bool, offset: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """``(x [T, n, 64] or [T, n, 1, 8, 8], labels)``: spikeport's digits test split, direct encoding."""
    from spikeport.data.digits import load_digits_arrays

    x, y = load_digits_arrays(train=False)
    x, y = x[offset:offset + n], y[offset:offset + n]
    xt = torch.from_numpy(x if image else x.reshape(len(x), -1))
    return xt.unsqueeze(0).repeat(t, *([1] * xt.dim())).contiguous(), y


def random_weights(kind: str, hidden: int = 16, seed: int = 0) -> Weights:
    """Seeded uniform weights of the MLP (``w1 b1 w2 b2``) or CNN (``c1 cb1 c2 cb2 w b``)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "mlp":
        shapes = {"w1": (hidden, 64), "b1": (hidden,), "w2": (10, hidden), "b2": (10,)}
    else:
        shapes = {"c1": (8, 1, 3, 3), "cb1": (8,), "c2": (16, 8, 3, 3), "cb2": (16,), "w": (10, 256), "b": (10,)}
    return {k: ((torch.rand(s, generator=g) - 0.4) * 0.8).numpy() for k, s in shapes.items()}


def trained_weights(kind: str, hidden: int = 64, seed: int = 0, epochs: int = 200) -> Weights:
    """A seeded ReLU ANN trained full-batch on the digits train split (seconds); its weights."""
    from spikeport.data.digits import load_digits_arrays

    x, y = load_digits_arrays(train=True)
    xt, yt = torch.from_numpy(x if kind == "cnn" else x.reshape(len(x), -1)), torch.from_numpy(y)
    torch.manual_seed(seed)
    if kind == "mlp":
        m = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
        keys = {"w1": m[0].weight, "b1": m[0].bias, "w2": m[2].weight, "b2": m[2].bias}
    else:
        m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                          nn.AvgPool2d(2), nn.Flatten(), nn.Linear(256, 10))
        keys = {"c1": m[0].weight, "cb1": m[0].bias, "c2": m[2].weight, "cb2": m[2].bias, "w": m[6].weight,
                "b": m[6].bias}
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(epochs if kind == "mlp" else epochs // 2):
        opt.zero_grad()
        nn.functional.cross_entropy(m(xt), yt).backward()
        opt.step()
    return {k: v.detach().numpy().copy() for k, v in keys.items()}


def _load(layer: nn.Module, w: np.ndarray, b: np.ndarray, gain: float, scale: float = 1.0) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w) * gain * scale)
        layer.bias.copy_(torch.from_numpy(b) * gain)


def _synapses(kind: str, w: Weights, gains: Sequence[float], pool_scale: float = 1.0,
              conv: type = nn.Conv2d, linear: type = nn.Linear) -> list[nn.Module]:
    """The weighted layers with ``w * gain`` loaded (CNN: ``pool_scale`` folded into the head)."""
    if kind == "mlp":
        layers = [linear(64, w["w1"].shape[0]), linear(w["w1"].shape[0], 10)]
        for layer, k, g in zip(layers, ("1", "2"), gains, strict=True):
            _load(layer, w[f"w{k}"], w[f"b{k}"], g)
        return layers
    layers = [conv(1, 8, 3, padding=1), conv(8, 16, 3, padding=1), linear(256, 10)]
    for layer, (wk, bk), g, s in zip(layers, (("c1", "cb1"), ("c2", "cb2"), ("w", "b")), gains,
                                     (1.0, 1.0, pool_scale), strict=True):
        _load(layer, w[wk], w[bk], g, s)
    return layers


def record_outputs(modules: Sequence[nn.Module]) -> tuple[list[list[torch.Tensor]], Callable[[], None]]:
    """Forward hooks appending each call's output (first item of a tuple) per module; returns (records, remove)."""
    recs: list[list[torch.Tensor]] = [[] for _ in modules]
    handles = []
    for i, m in enumerate(modules):
        def hook(_m: nn.Module, _i: Any, o: Any, i: int = i) -> None:
            recs[i].append((o[0] if isinstance(o, (tuple, list)) else o).detach().clone())
        handles.append(m.register_forward_hook(hook))
    return recs, lambda: [h.remove() for h in handles]


def _stepwise(step: Callable[[torch.Tensor], torch.Tensor], neurons: Sequence[nn.Module], x: torch.Tensor) -> Run:
    recs, remove = record_outputs(neurons)
    try:
        with torch.no_grad():
            outs = [step(x[t]) for t in range(x.shape[0])]
    finally:
        remove()
    b = x.shape[1]
    spikes = [torch.stack(r).reshape(x.shape[0], b, -1).numpy() for r in recs]
    return Run(spikes, torch.stack([o.reshape(b, -1) for o in outs]).sum(0).numpy())


def _per_sample(fn: Callable[[torch.Tensor], Run], x: torch.Tensor) -> Run:
    """Run ``fn`` one sample at a time (importers that only run batch size 1) and concatenate."""
    runs = [fn(x[:, i:i + 1]) for i in range(x.shape[1])]
    return Run([np.concatenate([r.spikes[k] for r in runs], 1) for k in range(len(runs[0].spikes))],
               np.concatenate([r.logits for r in runs], 0))


def _neuron_modules(m: nn.Module, graph: Any, types: tuple[str, ...] = ("IF", "LIF", "CubaLIF")) -> list[nn.Module]:
    """The importer's modules of the NIR graph's neuron nodes, in graph order (nirtorch names them after the
    nodes, with '.' -> '_')."""
    mods = dict(m.named_modules())
    names = [n for n in _nir_order(graph) if type(graph.nodes[n]).__name__ in types]
    return [mods[n.replace(".", "_")] for n in names]


def _nir_order(graph: Any) -> list[str]:
    preds = {n: {a for a, b in graph.edges if b == n} for n in graph.nodes}
    order: list[str] = []
    while len(order) < len(preds):
        ready = [n for n in graph.nodes if n not in order and preds[n] <= set(order)]
        if not ready:
            raise ValueError("cyclic NIR graph")
        order += ready
    return order


def _np_fields(graph: Any) -> Any:
    """A copy of ``graph`` with torch tensors in node fields as numpy arrays (Norse's exporter leaves tensors)."""
    g = copy.deepcopy(graph)
    for node in g.nodes.values():
        for k, v in list(vars(node).items()):
            if isinstance(v, torch.Tensor):
                setattr(node, k, v.detach().numpy())
    return g


class Producer:
    """A framework as NIR producer and consumer (see the module docstring)."""

    name = ""
    preset = ""
    variants: tuple[str, ...] = ("",)
    kinds: tuple[str, ...] = ("mlp", "cnn")
    note = ""
    layout: str | None = None
    """The model's time layout for spikeport's tracer (``None``: spikeport cannot trace it)."""

    def available(self) -> bool:
        mod = {"nirtorch": "nirtorch", "lava-dl": "lava.lib.dl.slayer"}.get(self.name, self.name)
        try:
            importlib.import_module(mod if mod != "lava.lib.dl.slayer" else "lava")
        except ImportError:
            return False
        return True

    def n_layers(self, kind: str) -> int:
        return 2 if kind == "mlp" else 3

    def import_options(self, variant: str) -> dict[str, Any]:
        """The reading options a user passes for this variant (``load_nir(..., **options)``)."""
        return {"producer": self.preset}

    def has_importer(self) -> bool:
        return True

    def build(self, kind: str, variant: str, w: Weights, gains: Sequence[float]) -> nn.Module:
        raise NotImplementedError

    def own(self, model: nn.Module, x: torch.Tensor) -> Run:
        raise NotImplementedError

    def export(self, model: nn.Module, kind: str, x: torch.Tensor) -> Any:
        raise NotImplementedError

    def their_import(self, graph: Any, x: torch.Tensor) -> Run:
        raise NotImplementedError


# ---------------------------------------------------------------- snnTorch
class SnnTorch(Producer):
    name = preset = "snntorch"
    variants = ("subtract", "zero")
    note = "Leaky(beta=0.9), reset_delay=True (snnTorch's default)"
    layout = "step"

    def import_options(self, variant: str) -> dict[str, Any]:
        return {"producer": self.preset, "reset": variant}  # the file cannot say which reset the model used

    def build(self, kind: str, variant: str, w: Weights, gains: Sequence[float]) -> nn.Module:
        import snntorch as snn

        def leaky(shape: tuple[int, ...]) -> nn.Module:
            # WORKAROUND: beta/threshold as tensors of the layer shape (scalars export nodes of shape ())
            return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape), init_hidden=True,
                             reset_mechanism=variant)

        syn = _synapses(kind, w, gains)
        if kind == "mlp":
            return nn.Sequential(syn[0], leaky((syn[0].out_features,)), syn[1], leaky((10,)))
        return nn.Sequential(syn[0], leaky((8, 8, 8)), syn[1], leaky((16, 8, 8)), nn.AvgPool2d(2), nn.Flatten(),
                             syn[2], leaky((10,)))

    def _neurons(self, m: nn.Module) -> list[nn.Module]:
        import snntorch as snn

        return [x for x in m.modules() if isinstance(x, snn.SpikingNeuron)]

    def own(self, model: nn.Module, x: torch.Tensor) -> Run:
        import snntorch.utils

        snntorch.utils.reset(model)
        return _stepwise(model, self._neurons(model), x)

    def export(self, model: nn.Module, kind: str, x: torch.Tensor) -> Any:
        from snntorch.export_nir import export_to_nir

        return export_to_nir(model, x[0, :1], ignore_dims=[0])  # WORKAROUND: ignore_dims=[0] drops the batch

    def their_import(self, graph: Any, x: torch.Tensor) -> Run:
        from snntorch.import_nir import import_from_nir

        g = copy.deepcopy(graph)
        for node in g.nodes.values():  # WORKAROUND: the importer calls tuple(kernel_size) on AvgPool2d
            if type(node).__name__ == "AvgPool2d":
                for k in ("kernel_size", "stride", "padding"):
                    v = np.asarray(getattr(node, k)).ravel()
                    setattr(node, k, np.repeat(v, 2) if v.size == 1 else v)

        import snntorch.utils

        m = import_from_nir(g)

        def run(xb: torch.Tensor) -> Run:
            snntorch.utils.reset(m)  # the imported neurons keep hidden state: a fresh one per call
            state: list[Any] = [None]

            def step(xt: torch.Tensor) -> torch.Tensor:
                out, state[0] = m(xt, state[0])
                return out
            return _stepwise(step, _neuron_modules(m, g), xb)

        cnn = any(type(n).__name__ == "Flatten" for n in g.nodes.values())
        return _per_sample(run, x) if cnn else run(x)  # Flatten(start_dim=0) flattens the batch: B = 1


# ---------------------------------------------------------------- Norse
class Norse(Producer):
    name = preset = "norse"
    variants = ("lif", "lifbox", "iaf")
    note = "LIFCell / LIFBoxCell / IAFCell, dt = 1e-3"
    layout = "step"

    def _cell(self, variant: str, shape: tuple[int, ...]) -> nn.Module:
        import norse.torch as nt

        def f(v: float) -> torch.Tensor:  # WORKAROUND: per-neuron tensors (scalars export nodes of shape ())
            return torch.full(shape, float(v))
        if variant == "lif":
            return nt.LIFCell(nt.LIFParameters(tau_syn_inv=f(200.0), tau_mem_inv=f(100.0), v_leak=f(0.0),
                                               v_th=f(1.0), v_reset=f(0.0)))
        if variant == "lifbox":
            return nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=f(100.0), v_leak=f(0.0), v_th=f(1.0),
                                                     v_reset=f(0.0)))
        return nt.IAFCell(nt.IAFParameters(v_th=f(1.0), v_reset=f(0.0)))

    def build(self, kind: str, variant: str, w: Weights, gains: Sequence[float]) -> nn.Module:
        import norse.torch as nt

        # Norse's exporter maps neither AvgPool2d nor Flatten: export() fills those NIR nodes in by hand
        syn = _synapses(kind, w, gains)
        if kind == "mlp":
            return nt.SequentialState(syn[0], self._cell(variant, (syn[0].out_features,)), syn[1],
                                      self._cell(variant, (10,)))
        return nt.SequentialState(syn[0], self._cell(variant, (8, 8, 8)), syn[1], self._cell(variant, (16, 8, 8)),
                                  nn.AvgPool2d(2), nn.Flatten(), syn[2], self._cell(variant, (10,)))

    def _neurons(self, m: nn.Module) -> list[nn.Module]:
        return [x for x in m.modules() if type(x).__name__ in ("LIFCell", "LIFBoxCell", "IAFCell")]

    def own(self, model: nn.Module, x: torch.Tensor) -> Run:
        state: list[Any] = [None]

        def step(xt: torch.Tensor) -> torch.Tensor:
            out, state[0] = model(xt, state[0])
            return out
        return _stepwise(step, self._neurons(model), x)

    def export(self, model: nn.Module, kind: str, x: torch.Tensor) -> Any:
        import nir
        import norse.torch as nt

        # WORKAROUND: the exporter keeps the sample's batch axis in the Input node: give the MLP an unbatched
        # sample, and rebuild the CNN's Input node (its convolutions need a batched sample)
        raw = nt.to_nir(model, x[0, 0] if kind == "mlp" else x[0, :1])
        nodes = {}
        for k, n in raw.nodes.items():
            if type(n).__name__ == "Input":
                n = nir.Input(input_type=np.array(x.shape[2:]))
            elif type(n).__name__ == "Output":
                n = nir.Output(output_type=np.array([10]))
            elif n is None:  # WORKAROUND: AvgPool2d and Flatten are exported as None: fill them in
                mod = dict(model.named_children())[k]
                n = (nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
                     if isinstance(mod, nn.AvgPool2d) else
                     nir.Flatten(input_type={"input": np.array([16, 4, 4])}, start_dim=0, end_dim=-1))
            nodes[k] = n
        return nir.NIRGraph(nodes=nodes, edges=list(raw.edges), type_check=True)

    def their_import(self, graph: Any, x: torch.Tensor) -> Run:
        import norse.torch as nt

        g = _np_fields(graph)

        m = nt.from_nir(g, dt=float(graph.metadata.get("dt", 1e-3)) if graph.metadata else 1e-3)

        def run(xb: torch.Tensor) -> Run:
            state: list[Any] = [None]  # a fresh state per call

            def step(xt: torch.Tensor) -> torch.Tensor:
                out, state[0] = m(xt, state[0])
                return out
            return _stepwise(step, _neuron_modules(m, g), xb)

        cnn = any(type(n).__name__ == "Flatten" for n in g.nodes.values())
        return _per_sample(run, x) if cnn else run(x)


# ---------------------------------------------------------------- sinabs
class Sinabs(Producer):
    name = preset = "sinabs"
    variants = ("iaf", "lif", "iaf_clip", "lif_raw")
    note = ("IAFSqueeze / LIFSqueeze(tau_mem=10 steps), MultiSpike + MembraneSubtract (sinabs' defaults); iaf_clip: "
            "min_v_mem = -threshold, lif_raw: norm_input=False (the forms sinabs' own importer builds)")
    layout = "bt-flat"

    def import_options(self, variant: str) -> dict[str, Any]:  # what the file cannot say about these variants
        assume = {"iaf_clip": {"min_v_mem": "-threshold"}, "lif_raw": {"norm_input": "false"}}.get(variant)
        return {"producer": self.preset, "assume": assume}

    def _neuron(self, variant: str, shape: tuple[int, ...], t: int) -> nn.Module:
        import sinabs.layers as sl

        if variant.startswith("iaf"):
            return sl.IAFSqueeze(num_timesteps=t, min_v_mem=-1.0 if variant == "iaf_clip" else None)
        # WORKAROUND: tau_mem / spike_threshold as tensors of the layer shape (scalars export nodes of shape ())
        return sl.LIFSqueeze(tau_mem=torch.full(shape, 10.0), spike_threshold=torch.ones(shape), num_timesteps=t,
                             norm_input=variant != "lif_raw")

    def build(self, kind: str, variant: str, w: Weights, gains: Sequence[float], t: int = 16) -> nn.Module:
        import sinabs.layers as sl

        syn = _synapses(kind, w, gains, pool_scale=0.25)  # SumPool2d: the AvgPool's 1/4 folded into the head
        if kind == "mlp":
            return nn.Sequential(syn[0], self._neuron(variant, (syn[0].out_features,), t), syn[1],
                                 self._neuron(variant, (10,), t))
        return nn.Sequential(syn[0], self._neuron(variant, (8, 8, 8), t), syn[1], self._neuron(variant, (16, 8, 8), t),
                             sl.SumPool2d(2), nn.Flatten(), syn[2], self._neuron(variant, (10,), t))

    def _neurons(self, m: nn.Module) -> list[nn.Module]:
        return [x for x in m.modules() if type(x).__name__ in ("IAFSqueeze", "LIFSqueeze")]

    @staticmethod
    def _bt(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1).reshape(-1, *x.shape[2:])  # [T, B, ...] -> sinabs' [B*T, ...]

    def _run(self, m: nn.Module, neurons: Sequence[nn.Module], x: torch.Tensor) -> Run:
        import sinabs

        sinabs.reset_states(m)
        recs, remove = record_outputs(neurons)
        try:
            with torch.no_grad():
                out = m(self._bt(x))
        finally:
            remove()
        t, b = x.shape[0], x.shape[1]

        def tb(y: torch.Tensor) -> np.ndarray:
            return y.reshape(b, t, *y.shape[1:]).transpose(0, 1).numpy()
        out = out[0] if isinstance(out, tuple) else out
        return Run([tb(r[0]).reshape(t, b, -1) for r in recs], tb(out).sum(0).reshape(b, -1))

    def rebuild(self, model: nn.Module, t: int) -> nn.Module:
        for n in self._neurons(model):
            n.num_timesteps = t
        return model

    def own(self, model: nn.Module, x: torch.Tensor) -> Run:
        return self._run(self.rebuild(model, x.shape[0]), self._neurons(model), x)

    def export(self, model: nn.Module, kind: str, x: torch.Tensor) -> Any:
        import sinabs

        t = x.shape[0]
        self.rebuild(model, t)
        sample = self._bt(x[:, :2])
        with torch.no_grad():
            model(sample)  # the exporter reads the state shapes
        graph = sinabs.to_nir(model, sample)
        sinabs.reset_states(model)
        return graph  # in memory: Conv2d/Flatten shapes are None (nir.write needs graph.infer_types() first)

    def their_import(self, graph: Any, x: torch.Tensor) -> Run:
        import sinabs

        g = copy.deepcopy(graph)
        m = sinabs.from_nir(g, num_timesteps=x.shape[0])
        mods = _neuron_modules(m, g)
        if len(mods) != sum(type(n).__name__ in ("IF", "LIF", "CubaLIF") for n in g.nodes.values()):
            raise RuntimeError("sinabs' from_nir dropped neuron nodes")
        return self._run(m, mods, x)


# ---------------------------------------------------------------- SpikingJelly
class SpikingJelly(Producer):
    name = preset = "spikingjelly"
    variants = ("if", "lif")
    note = "IFNode / LIFNode(tau=2), hard reset (the exporter refuses soft reset)"
    layout = "step"

    def build(self, kind: str, variant: str, w: Weights, gains: Sequence[float]) -> nn.Module:
        from spikingjelly.activation_based import layer, neuron

        def node() -> nn.Module:
            return neuron.IFNode(v_reset=0.0) if variant == "if" else neuron.LIFNode(tau=2.0, v_reset=0.0)

        syn = _synapses(kind, w, gains, conv=layer.Conv2d, linear=layer.Linear)
        if kind == "mlp":
            return nn.Sequential(syn[0], node(), syn[1], node())
        return nn.Sequential(syn[0], node(), syn[1], node(), layer.AvgPool2d(2), layer.Flatten(), syn[2], node())

    def _neurons(self, m: nn.Module) -> list[nn.Module]:
        return [x for x in m.modules() if type(x).__name__ in ("IFNode", "LIFNode")]

    def own(self, model: nn.Module, x: torch.Tensor) -> Run:
        from spikingjelly.activation_based import functional

        functional.reset_net(model)
        run = _stepwise(model, self._neurons(model), x)
        functional.reset_net(model)
        return run

    def export(self, model: nn.Module, kind: str, x: torch.Tensor) -> Any:
        from spikingjelly.activation_based import functional
        from spikingjelly.activation_based.nir_exchange import export_to_nir

        graph = export_to_nir(model, x[0, :1])
        functional.reset_net(model)
        return graph

    def their_import(self, graph: Any, x: torch.Tensor) -> Run:
        from spikingjelly.activation_based.nir_exchange import import_from_nir

        g = copy.deepcopy(graph)
        m = import_from_nir(g, dt=float(graph.metadata.get("dt", 1e-4)) if graph.metadata else 1e-4)
        state: list[Any] = [None]

        def step(xt: torch.Tensor) -> torch.Tensor:
            out, state[0] = m(xt, state[0])
            return out
        return _stepwise(step, _neuron_modules(m, g), x)


# ---------------------------------------------------------------- plain nirtorch (a user's own neurons)
DT_USER = 1e-4


class UserNeuron(nn.Module):
    """A user's hand-written neuron as NIR states it: forward Euler at dt = 1e-4 s (``tau`` None: IF), spike
    on ``v > threshold``, hard reset to 0; state kept in the module (``reset()``)."""

    def __init__(self, shape: tuple[int, ...], tau: float | None = None, threshold: float = 1.0) -> None:
        super().__init__()
        self.shape, self.tau, self.threshold = tuple(shape), tau, threshold
        self.v: torch.Tensor | None = None

    def reset(self) -> None:
        self.v = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x) if self.v is None or self.v.shape != x.shape else self.v
        v = v + x if self.tau is None else v + (DT_USER / self.tau) * (x - v)
        s = (v > self.threshold).float()
        self.v = v * (1 - s)
        return s


class NirTorch(Producer):
    name = "nirtorch"
    preset = "nirtorch"
    variants = ("if", "lif")
    note = "the user's own IF / LIF(tau = 2e-4 s) modules with nirtorch.torch_to_nir / nir_to_torch maps"

    def build(self, kind: str, variant: str, w: Weights, gains: Sequence[float]) -> nn.Module:
        def node(shape: tuple[int, ...]) -> nn.Module:
            return UserNeuron(shape, None if variant == "if" else 2e-4)

        syn = _synapses(kind, w, gains)
        if kind == "mlp":
            return nn.Sequential(syn[0], node((syn[0].out_features,)), syn[1], node((10,)))
        return nn.Sequential(syn[0], node((8, 8, 8)), syn[1], node((16, 8, 8)), nn.AvgPool2d(2), nn.Flatten(),
                             syn[2], node((10,)))

    def own(self, model: nn.Module, x: torch.Tensor) -> Run:
        for m in model.modules():
            if isinstance(m, UserNeuron):
                m.reset()
        return _stepwise(model, [m for m in model.modules() if isinstance(m, UserNeuron)], x)

    def export(self, model: nn.Module, kind: str, x: torch.Tensor) -> Any:
        import nir
        import nirtorch

        def neuron(m: UserNeuron) -> Any:
            def full(v: float) -> np.ndarray:
                return np.full(m.shape, float(v))
            if m.tau is None:
                return nir.IF(r=full(1 / DT_USER), v_threshold=full(m.threshold), v_reset=full(0.0))
            return nir.LIF(tau=full(m.tau), r=full(1.0), v_leak=full(0.0), v_threshold=full(m.threshold),
                           v_reset=full(0.0))

        def t(v: torch.Tensor) -> np.ndarray:
            return v.detach().numpy()
        module_map = {
            UserNeuron: neuron,
            nn.Conv2d: lambda m: nir.Conv2d(input_shape=(8, 8), weight=t(m.weight), stride=m.stride, padding=m.padding,
                                            dilation=m.dilation, groups=m.groups, bias=t(m.bias)),
            nn.AvgPool2d: lambda m: nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                  padding=np.array([0, 0])),
            nn.Flatten: lambda m: nir.Flatten(input_type={"input": np.array([16, 4, 4])}, start_dim=m.start_dim - 1,
                                              end_dim=m.end_dim),
        }
        graph = nirtorch.torch_to_nir(model, module_map, type_check=False)
        nodes = {}
        for k, node in graph.nodes.items():  # torch_to_nir leaves the input/output shapes to the user
            if type(node).__name__ == "Input":
                node = nir.Input(input_type=np.array((64,) if kind == "mlp" else (1, 8, 8)))
            elif type(node).__name__ == "Output":
                node = nir.Output(output_type=np.array([10]))
            nodes[k] = node
        return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), type_check=True)

    def their_import(self, graph: Any, x: torch.Tensor) -> Run:
        import nir
        import nirtorch

        def neuron(n: Any) -> nn.Module:
            th = float(np.asarray(n.v_threshold).ravel()[0])
            shape = np.asarray(n.v_threshold).shape
            if isinstance(n, nir.IF):
                if not np.allclose(np.asarray(n.r) * DT_USER, 1.0):
                    raise ValueError("the user's IF map reads r = 1/dt only")
                return UserNeuron(shape, None, th)
            return UserNeuron(shape, float(np.asarray(n.tau).ravel()[0]), th)

        def affine(n: Any) -> nn.Module:  # WORKAROUND: nirtorch's default Affine map never loads the bias
            m = nn.Linear(n.weight.shape[1], n.weight.shape[0])
            m.weight.data, m.bias.data = torch.tensor(n.weight).float(), torch.tensor(n.bias).float()
            return m

        def flatten(n: Any) -> nn.Module:  # WORKAROUND: NIR's start_dim is per sample (+1 for the batch axis)
            return nn.Flatten(int(n.start_dim) + 1, int(n.end_dim))

        g = copy.deepcopy(graph)
        missing = sorted({type(n).__name__ for n in g.nodes.values()} - {"Input", "Output", "IF", "LIF", "Affine",
                                                                        "Linear", "Conv2d", "AvgPool2d", "Flatten"})
        if missing:
            raise NotImplementedError(f"the user's node_map has no {', '.join(missing)} (write one for your neuron)")
        m = nirtorch.nir_to_torch(g, {nir.IF: neuron, nir.LIF: neuron, nir.Affine: affine, nir.Flatten: flatten})
        neurons = _neuron_modules(m, g)
        for n in neurons:
            n.reset()
        state: list[Any] = [None]

        def step(xt: torch.Tensor) -> torch.Tensor:
            out, state[0] = m(xt, state[0])
            return out
        return _stepwise(step, neurons, x)


# ---------------------------------------------------------------- lava-dl SLAYER (no NIR in lava-dl 0.6)
class SlayerMLP(nn.Module):
    """Two float Linear synapses into SLAYER ``neuron.cuba.Neuron`` populations (layout ``[B, C, T]`` inside)."""

    def __init__(self, syn: list[nn.Module], du: float, dv: float) -> None:
        super().__init__()
        from spikeport.targets.lava._compat import enable_lava

        enable_lava()
        slayer = importlib.import_module("lava.lib.dl.slayer")
        self.fc1, self.fc2 = syn
        self.du, self.dv = du, dv
        self.n1 = slayer.neuron.cuba.Neuron(threshold=1.0, current_decay=du, voltage_decay=dv)
        self.n2 = slayer.neuron.cuba.Neuron(threshold=1.0, current_decay=du, voltage_decay=dv)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # [T, B, 64] -> spikes per layer
        s1 = self.n1(self.fc1(x).permute(1, 2, 0))
        s2 = self.n2(self.fc2(s1.permute(2, 0, 1)).permute(1, 2, 0))
        return s1.permute(2, 0, 1), s2.permute(2, 0, 1)


class LavaDl(Producer):
    name = preset = "lava-dl"
    variants = ("upstream", "consistent")
    kinds = ("mlp",)
    note = ("SLAYER neuron.cuba.Neuron (du 0.25, dv 0.125) with float Linear synapses; lava-dl 0.6 has no NIR: "
            "written by hand as upstream lava-dl's netx->NIR writer does (upstream: r = 1; consistent: r = tau_mem)")

    def available(self) -> bool:
        try:
            from spikeport.errors import SpikeportError
            from spikeport.targets.lava._compat import enable_lava

            enable_lava()
            importlib.import_module("lava.lib.dl.slayer")
        except (ImportError, RuntimeError, ValueError, TypeError, AttributeError, SpikeportError):
            return False  # lava-dl is not usable here
        return True

    def build(self, kind: str, variant: str, w: Weights, gains: Sequence[float]) -> nn.Module:
        m = SlayerMLP(_synapses(kind, w, gains), 0.25, 0.125)
        m.variant = variant
        return m

    def own(self, model: nn.Module, x: torch.Tensor) -> Run:
        with torch.no_grad():
            s1, s2 = model(x)
        t, b = x.shape[0], x.shape[1]
        return Run([s1.reshape(t, b, -1).numpy(), s2.reshape(t, b, -1).numpy()], s2.sum(0).numpy())

    def export(self, model: nn.Module, kind: str, x: torch.Tensor) -> Any:
        import nir

        def cuba(n: int) -> Any:
            ts, tm = 1 / model.du, 1 / model.dv  # steps

            def f(v: float) -> np.ndarray:
                return np.full((n,), float(v))
            return nir.CubaLIF(tau_syn=f(ts), tau_mem=f(tm), r=f(1.0 if model.variant == "upstream" else tm),
                               v_leak=f(0.0), v_threshold=f(1.0), v_reset=f(0.0), w_in=f(ts))

        def affine(fc: nn.Linear) -> Any:
            return nir.Affine(weight=fc.weight.detach().numpy().copy(), bias=fc.bias.detach().numpy().copy())
        h = model.fc1.out_features
        nodes = {"input": nir.Input(input_type=np.array([64])), "fc1": affine(model.fc1), "n1": cuba(h),
                 "fc2": affine(model.fc2), "n2": cuba(10), "output": nir.Output(output_type=np.array([10]))}
        edges = [("input", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("n2", "output")]
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=True)

    def has_importer(self) -> bool:
        return False

    def their_import(self, graph: Any, x: torch.Tensor) -> Run:
        raise NotImplementedError("lava-dl 0.6 has no NIR importer")


PRODUCERS: dict[str, Producer] = {p.name: p for p in (SnnTorch(), Norse(), Sinabs(), SpikingJelly(), NirTorch(),
                                                      LavaDl())}
