"""sinabs 2.0: a Squeeze CNN on [B*T, ...] (time folded into the batch) with multi-spike neurons.
spikeport: --time-layout bt-flat.

    python examples/frameworks/sinabs_digits.py sinabs.pt       # trains a few seconds on digits, saves the state dict

sinabs saves its membranes (v_mem) in the state dict; spikeport drops them with a note.
"""

import sys

import sinabs
import sinabs.layers as sl
import torch
import torch.nn.functional as F
from torch import nn

T = 6


def build() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), sl.IAFSqueeze(num_timesteps=T), sl.SumPool2d(2),
                         nn.Flatten(), nn.Linear(64, 10), sl.IAFSqueeze(num_timesteps=T))


def forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:  # x [B, 1, 8, 8] -> spike counts [B, 10]
    sinabs.reset_states(net)  # the membranes persist between calls
    x = x.unsqueeze(1).expand(-1, T, -1, -1, -1).flatten(0, 1)  # [B*T, ...], row b*T + t
    return net(x).reshape(-1, T, 10).sum(1)


if __name__ == "__main__":
    from spikeport.data.digits import load_digits_arrays

    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in load_digits_arrays(train=True))
    net = build()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for _ in range(6):
        for i in range(0, len(x), 64):
            loss = F.cross_entropy(forward(net, x[i:i + 64]), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.save(net.state_dict(), sys.argv[1])
