"""Run an exported ``.net`` (+ ``.loihi.json``): the Loihi-exact reference or Lava, plus the host readout."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from spikeport.errors import DataError, ExportError
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
        self.timesteps = None
        self.runtime = {"reference": "loihi-reference", "lava": "lava-fixed_pt", "both": "lava-fixed_pt"}[backend]
        self.approximate = ("8-bit fixed-point weights and integer neuron state (Loihi 2) vs the float model: "
                            "spikes differ by quantization, not by float rounding")
        self.lava_checked = 0
        self._readout = self.deployment.readout_module()

    def chip_spikes(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Integer spikes ``{layer index: [T, B, ...]}`` of the chip part for float input ``x``."""
        from spikeport.targets.lava.loihi_reference import run_reference

        dep = self.deployment
        k = dep.encode_input(x)
        if self.backend == "reference":
            return run_reference(dep.network, k, lava_delay=False, input_message_bits=dep.input_message_bits,
                                 device=self.device)
        from spikeport.targets.lava.lava_sim import run_lava

        got = {i: torch.as_tensor(v) for i, v in run_lava(self.path, k.numpy(), net=dep.network,
                                                            input_message_bits=dep.input_message_bits).items()}
        if self.backend == "both":
            ref = run_reference(dep.network, k, lava_delay=False, input_message_bits=dep.input_message_bits)
            for i, r in ref.items():
                if not torch.equal(got[i].to(torch.int8), r.cpu()):
                    bad = int((got[i].to(torch.int8) != r.cpu()).sum())
                    raise ExportError(f"{self.path}: Lava and the Loihi reference differ in layer "
                                      f"{dep.network.layers[i].name!r} ({bad} of {r.numel()} spikes)")
            self.lava_checked += int(k.shape[1])
        return got

    @torch.no_grad()
    def run(self, x: torch.Tensor):
        """Logits ``[T, B, K]`` (host readout) and every Loihi layer's spikes for ``[T, B, ...]`` input."""
        from spikeport.targets.torch_runner import RunResult

        x = torch.as_tensor(x)
        if tuple(x.shape[2:]) != self.input_shape or x.dim() != len(self.input_shape) + 2:
            raise DataError(f"{self.path}: input must be [T, B, {', '.join(map(str, self.input_shape))}], got "
                            f"{list(x.shape)}")
        spikes = self.chip_spikes(x)
        net = self.deployment.network
        named = {net.layers[i].name: s.cpu().bool() for i, s in spikes.items()}
        last = spikes[net.neuron_layers[-1]].cpu().to(torch.float32)
        logits = self._readout(last)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        return RunResult(logits.detach().float().cpu(), named, self.runtime)
