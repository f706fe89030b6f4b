"""snnTorch 1.0: an init_hidden Sequential called once per step ([B, ...]). spikeport: --time-layout step.

    python examples/frameworks/snntorch_digits.py snn.pt        # trains a few seconds on digits, saves the state dict
"""

import sys

import snntorch as snn
import torch
import torch.nn.functional as F
from snntorch import utils
from torch import nn


def build() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), snn.Leaky(beta=0.8, init_hidden=True, learn_beta=True),
                         nn.Linear(32, 10), snn.Leaky(beta=0.8, init_hidden=True, output=True))


def forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:  # x [T, B, 1, 8, 8] -> spike counts [B, 10]
    utils.reset(net)  # init_hidden keeps the membrane between calls
    return sum(net(x_t)[0] for x_t in x)


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
