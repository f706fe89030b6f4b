"""SpikingJelly 2.0: a multi-step MLP ([T, B, ...]). spikeport: --time-layout tb (the default).

    python examples/frameworks/spikingjelly_digits.py sj.pt     # trains a few seconds on digits, saves the state dict
"""

import sys

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn


def build() -> nn.Module:
    net = nn.Sequential(layer.Flatten(), layer.Linear(64, 32), neuron.LIFNode(tau=2.0),
                        layer.Linear(32, 10), neuron.ParametricLIFNode(init_tau=2.0, decay_input=False))
    functional.set_step_mode(net, "m")
    return net


def forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:  # x [T, B, 1, 8, 8] -> spike counts [B, 10]
    functional.reset_net(net)  # SpikingJelly keeps the membrane between calls
    return net(x).sum(0)


if __name__ == "__main__":
    from spikeport.data.digits import load_digits_arrays

    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in load_digits_arrays(train=True))
    net = build()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for _ in range(6):
        for i in range(0, len(x), 64):
            loss = F.cross_entropy(forward(net, x[i:i + 64].expand(6, -1, -1, -1, -1)), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.save(net.state_dict(), sys.argv[1])
