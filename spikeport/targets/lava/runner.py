"""Run an exported ``.net`` (+ ``.loihi.json``): the Loihi-exact reference or Lava, plus the host readout.

Chains run in netx (:func:`~spikeport.targets.lava.lava_sim.run_lava`), graphs in standard Lava processes
(:mod:`spikeport.targets.lava.lava_graph`); both are compared with the Loihi-exact reference.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from spikeport.errors import DataError, ExportError
from spikeport.targets.lava.network import LoihiNetwork
from spikeport.targets.lava.sidecar import read_deployment

__all__ = ["LoihiRunner"]


class LoihiRunner:
    """Run an exported ``.net`` (+ ``.loihi.json``): Loihi-exact integer reference or Lava, plus the host readout.

    ``run(x)`` takes the float model's ``[T, B, ...]`` input, encodes it (:meth:`LoihiDeployment.encode_input`),
    runs the chip part on the input-aligned timeline (``run_reference(..., lava_delay=False)`` or batched
    :func:`~spikeport.targets.lava.lava_sim.run_lava`, which are equal) and the readout on the host, and returns
    a :class:`~spikeport.targets.torch_runner.RunResult` with spikes keyed by IR neuron names.

    Args:
        path: the netx file.
        backend: ``'reference'`` (integer torch executor), ``'lava'`` (Lava ``fixed_pt`` simulation) or
            ``'both'`` (Lava, checked spike for spike against the reference; ExportError on any difference).
        device: torch device of the reference.

    Attributes:
        approximate: why this runtime is not expected to match the float model exactly (fixed point).
        lava_checked: samples on which Lava was compared with the reference (``'both'``).
    """

    BACKENDS = ("reference", "lava", "both")

    def __init__(self, path: str | os.PathLike, *, backend: str = "reference",
                 device: str | torch.device = "cpu") -> None:
        if backend not in self.BACKENDS:
            raise ExportError(f"Loihi backend must be one of {', '.join(self.BACKENDS)}, got {backend!r}")
        self.path = Path(path)
        self.deployment = read_deployment(self.path)
        self.backend = backend
        self.device = device
        self.input_shape = tuple(self.deployment.network.input_shape)
        self.layers = self.deployment.layer_names
        self.timesteps = self.deployment.timesteps  # the runtime contract's T (None for a version-1 sidecar)
        self.runtime = {"reference": "loihi-reference", "lava": "lava-fixed_pt", "both": "lava-fixed_pt"}[backend]
        self.approximate = ("8-bit fixed-point weights and integer neuron state (Loihi 2) vs the float model: "
                            "spikes differ by quantization, not by float rounding")
        self.lava_checked = 0
        self._readout = self.deployment.readout_module()

    def chip_spikes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Integer spikes ``{neuron population: [T, B, ...]}`` of the chip part for float input ``x``."""
        dep = self.deployment
        k = dep.encode_input(x)
        ref = None
        if self.backend in ("reference", "both"):
            ref = self._reference(k)
            if self.backend == "reference":
                return ref
        got = self._lava(k)
        if ref is not None:
            for name, r in ref.items():
                if not torch.equal(got[name].to(torch.int8), r.cpu()):
                    bad = int((got[name].to(torch.int8) != r.cpu()).sum())
                    raise ExportError(f"{self.path}: Lava and the Loihi reference differ in layer {name!r} ({bad} of "
                                      f"{r.numel()} spikes)")
            self.lava_checked += int(k.shape[1])
        return got

    def _reference(self, k: torch.Tensor) -> dict[str, torch.Tensor]:
        from spikeport.targets.lava.graph_reference import run_graph_reference
        from spikeport.targets.lava.loihi_reference import run_reference

        dep = self.deployment
        net = dep.network
        if isinstance(net, LoihiNetwork):
            out = run_reference(net, k, lava_delay=False, input_message_bits=dep.input_message_bits,
                                device=self.device)
            return {net.layers[i].name: s for i, s in out.items()}
        names = set(self.layers)
        return {n: s for n, s in run_graph_reference(net, k, input_message_bits=dep.input_message_bits,
                                                     device=self.device).items() if n in names}

    def _lava(self, k: torch.Tensor) -> dict[str, torch.Tensor]:
        dep = self.deployment
        net = dep.network
        if isinstance(net, LoihiNetwork):
            from spikeport.targets.lava.lava_sim import run_lava

            out = run_lava(self.path, k.numpy(), net=net, input_message_bits=dep.input_message_bits)
            return {net.layers[i].name: torch.as_tensor(s) for i, s in out.items()}
        from spikeport.targets.lava.lava_graph import run_lava_graph

        return {n: torch.as_tensor(s) for n, s in run_lava_graph(dep, k.numpy(), self.layers).items()}

    @torch.no_grad()
    def run(self, x: torch.Tensor):
        """Logits ``[T, B, K]`` (host readout) and every Loihi layer's spikes for ``[T, B, ...]`` input."""
        from spikeport.targets.torch_runner import RunResult

        x = torch.as_tensor(x)
        if tuple(x.shape[2:]) != self.input_shape or x.dim() != len(self.input_shape) + 2:
            raise DataError(f"{self.path}: input must be [T, B, {', '.join(map(str, self.input_shape))}], got "
                            f"{list(x.shape)}")
        spikes = self.chip_spikes(x)
        named = {n: s.cpu().bool() for n, s in spikes.items()}
        last = spikes[self.deployment.graph.output].cpu().to(torch.float32)
        logits = self._readout(last)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        return RunResult(logits.detach().float().cpu(), named, self.runtime)
