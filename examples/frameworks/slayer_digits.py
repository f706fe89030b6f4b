"""lava-dl SLAYER: CUBA blocks on time-last tensors [B, C, H, W, T]. spikeport: --time-layout time-last.

    python examples/frameworks/slayer_digits.py slayer.pt       # trains a few seconds on digits, saves the state dict
"""

import sys

import torch
import torch.nn.functional as F
from torch import nn

NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "requires_grad": True}


def build() -> nn.Module:
    from spikeport.targets.lava import enable_lava

    enable_lava()  # lava-nc needs spikeport's import hook on Python 3.11 (before importing lava)
    import lava.lib.dl.slayer as slayer

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([slayer.block.cuba.Flatten(),
                                         slayer.block.cuba.Dense(dict(NEURON), 64, 32, weight_scale=2),
                                         slayer.block.cuba.Dense(dict(NEURON), 32, 10, weight_scale=2)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for block in self.blocks:
                x = block(x)
            return x

    return Net()


if __name__ == "__main__":
    from spikeport.data.digits import load_digits_arrays

    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in load_digits_arrays(train=True))
    net = build()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(8):
        for i in range(0, len(x), 64):
            out = net(x[i:i + 64].unsqueeze(-1).expand(-1, -1, -1, -1, 6))  # [B, 10, T]
            loss = F.cross_entropy(out.sum(-1), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.save(net.state_dict(), sys.argv[1])
