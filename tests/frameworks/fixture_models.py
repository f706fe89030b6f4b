"""Small digits models written in each framework, as their users write them (a factory file for ``file.py:factory``).

Every factory takes one step's input ``[1, 8, 8]`` (spikeport's digits). ``LAYOUTS`` says how each
takes time. The framework is imported inside each factory, so this file imports with torch alone.
"""

from __future__ import annotations

import torch
from torch import nn

H = 32  # hidden units: small and fast, enough to spike in every layer after a few epochs

LAYOUTS = {"sj_mlp": "tb", "sj_cnn": "tb", "snn_seq": "step", "snn_loop": "tb", "norse_cells": "step",
           "sinabs_cnn": "bt-flat", "sinabs_mlp": "bt", "slayer_mlp": "time-last"}


def sj_mlp() -> nn.Module:
    """SpikingJelly multi-step MLP: LIF (hard reset, decay_input) -> PLIF (hard reset, no input decay)."""
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    net = nn.Sequential(
        layer.Flatten(), layer.Linear(64, H),
        neuron.LIFNode(tau=2.0, v_reset=0.0, surrogate_function=surrogate.ATan(), detach_reset=True),
        layer.Linear(H, 10),
        neuron.ParametricLIFNode(init_tau=2.0, decay_input=False, v_reset=0.0, surrogate_function=surrogate.ATan()))
    functional.set_step_mode(net, "m")
    return net


def sj_cnn() -> nn.Module:
    """SpikingJelly multi-step CNN: conv-BN-IF (soft reset)-maxpool, SeqToANNContainer(conv, BN)-LIF-avgpool."""
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    net = nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1, bias=False), layer.BatchNorm2d(4),
        neuron.IFNode(v_reset=None, surrogate_function=surrogate.ATan()), layer.MaxPool2d(2),
        layer.SeqToANNContainer(nn.Conv2d(4, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan()), layer.AvgPool2d(2),
        layer.Flatten(), layer.Linear(32, 10), neuron.LIFNode(tau=2.0, decay_input=False))
    functional.set_step_mode(net, "m")
    return net


def snn_seq() -> nn.Module:
    """snnTorch init_hidden Sequential, called once per step: Leaky (learned beta/threshold) -> Leaky."""
    import snntorch as snn

    return nn.Sequential(nn.Flatten(), nn.Linear(64, H),
                         snn.Leaky(beta=0.8, init_hidden=True, learn_beta=True, learn_threshold=True),
                         nn.Linear(H, 10), snn.Leaky(beta=0.8, init_hidden=True, output=True))


class SnnLoop(nn.Module):
    """snnTorch explicit-state style: ``forward`` loops over ``[T, B, ...]`` (untraceable; measured by hooks)."""

    def __init__(self) -> None:
        import snntorch as snn

        super().__init__()
        self.fc1 = nn.Linear(64, H)
        self.lif1 = snn.Synaptic(alpha=0.7, beta=0.85, reset_mechanism="zero")
        self.fc2 = nn.Linear(H, 10)
        self.lif2 = snn.Leaky(beta=0.9, reset_delay=False)

    def forward(self, x_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        syn1, mem1 = self.lif1.reset_mem()
        mem2 = self.lif2.reset_mem()
        spikes, mems = [], []
        for t in range(x_seq.shape[0]):
            spk1, syn1, mem1 = self.lif1(self.fc1(x_seq[t].flatten(1)), syn1, mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spikes.append(spk2)
            mems.append(mem2)
        return torch.stack(spikes), torch.stack(mems)


def snn_loop() -> nn.Module:
    return SnnLoop()


def norse_cells() -> nn.Module:
    """Norse SequentialState of cells, called per step with its state: conv -> LIFBoxCell, linear -> LIFCell."""
    from norse.torch import LIFBoxCell, LIFBoxParameters, LIFCell, LIFParameters, SequentialState

    t = torch.as_tensor
    p = LIFParameters(tau_syn_inv=t(500.0), tau_mem_inv=t(500.0), v_leak=t(0.0), v_th=t(1.0), v_reset=t(0.0))
    return SequentialState(nn.Conv2d(1, 4, 3, padding=1), LIFBoxCell(LIFBoxParameters(tau_mem_inv=t(500.0))),
                           nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10), LIFCell(p))


def sinabs_cnn() -> nn.Module:
    """sinabs Squeeze CNN on [B*T, ...]: IAFSqueeze with MultiSpike (spike counts) -> SumPool2d -> IAFSqueeze."""
    import sinabs.layers as sl
    from sinabs.activation import MembraneSubtract, MultiSpike, SingleSpike

    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False),
                         sl.IAFSqueeze(batch_size=None, num_timesteps=6, spike_fn=MultiSpike,
                                       reset_fn=MembraneSubtract()),
                         sl.SumPool2d(2), nn.Flatten(), nn.Linear(64, 10),
                         sl.IAFSqueeze(num_timesteps=6, spike_fn=SingleSpike, reset_fn=MembraneSubtract()))


def sinabs_mlp() -> nn.Module:
    """sinabs on [B, T, ...]: LIF (trained tau, single spikes, reset to 0) -> IAF (single spikes, reset to 0)."""
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    return nn.Sequential(nn.Flatten(2), nn.Linear(64, H),
                         sl.LIF(tau_mem=4.0, spike_fn=SingleSpike, reset_fn=MembraneReset(), norm_input=False),
                         nn.Linear(H, 10), sl.IAF(spike_fn=SingleSpike, reset_fn=MembraneReset()))


def slayer_mlp() -> nn.Module:
    """lava-dl SLAYER CUBA blocks on [B, C, H, W, T]: Flatten -> Dense -> Dense (8-bit weights, delay_shift)."""
    from spikeport.targets.lava import enable_lava

    enable_lava()
    import lava.lib.dl.slayer as slayer

    neuron = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03, "scale_grad": 3,
              "requires_grad": True}

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([
                slayer.block.cuba.Flatten(),
                slayer.block.cuba.Dense(dict(neuron), 64, H, weight_scale=2, weight_norm=False),
                slayer.block.cuba.Dense(dict(neuron), H, 10, weight_scale=2, weight_norm=False)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for b in self.blocks:
                x = b(x)
            return x

    return Net()
