"""Norse 1.1: a SequentialState of cells, called once per step with its state. spikeport: --time-layout step.

    python examples/frameworks/norse_digits.py norse.pt         # trains a few seconds on digits, saves the state dict

Norse keeps its neuron parameters (LIFParameters, dt) outside the state dict: the factory is their only source.
"""

import sys

import torch
import torch.nn.functional as F
from norse.torch import LIFCell, LIFParameters, SequentialState
from torch import nn


def build() -> nn.Module:
    p = LIFParameters(tau_syn_inv=torch.tensor(500.0), tau_mem_inv=torch.tensor(500.0))
    return SequentialState(nn.Flatten(), nn.Linear(64, 32), LIFCell(p), nn.Linear(32, 10), LIFCell(p))


def forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:  # x [T, B, 1, 8, 8] -> spike counts [B, 10]
    state, total = None, 0
    for x_t in x:
        z, state = net(x_t, state)
        total = total + z
    return total


if __name__ == "__main__":
    from spikeport.data.digits import load_digits_arrays

    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in load_digits_arrays(train=True))
    net = build()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(8):
        for i in range(0, len(x), 64):
            loss = F.cross_entropy(forward(net, x[i:i + 64].expand(6, -1, -1, -1, -1)), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.save(net.state_dict(), sys.argv[1])
