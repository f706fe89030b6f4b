"""SpikingJelly 2.0 twin of spikeport's spiking ResNet-19 (for benchmarks and equivalence tests).

:class:`SJResNet19` computes the same function as ``spikeport.models.create_model('resnet19')``:

* stem: conv3x3(128) -> BN -> LIF;
* stages (128, 256, 512) x (3, 3, 2) basic blocks, strides (1, 2, 2); each block is
  ``sn2(bn2(conv2(sn1(bn1(conv1(x))))) + downsample(x))`` (residual added *before*
  the output neuron), with a 1x1-conv + BN downsample when the stride or width changes;
* head: global average pool -> flatten -> Linear, giving per-step logits ``[T, B, K]``.

Every layer is a SpikingJelly ``layer.*`` module with ``step_mode='m'`` (BN statistics
shared over T, as spikeport's), and every neuron is
``neuron.LIFNode(tau=2, decay_input=True, v_reset=0, detach_reset=False,
surrogate_function=surrogate.Sigmoid(alpha=4))`` -- spikeport's LIF defaults.

Module names follow SpikingJelly/torchvision (``conv1``, ``layer1``, ``downsample``, ``sn1``);
:func:`map_spikeport_state_dict` renames a spikeport state dict onto them and
:func:`load_spikeport_weights` copies the weights of a spikeport model.

SpikingJelly neurons keep their membrane between calls: call
``spikingjelly.activation_based.functional.reset_net(model)`` after every forward.
On CUDA the LIF implementation is chosen by SpikingJelly's environment variable
``SJ_LIF_CUDA_IMPLEMENTATION`` (``auto``, ``cuda``, ``triton`` or ``torch``), read when
SpikingJelly is first imported; on CPU there is one implementation (a registered op
with a hand-written backward).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from spikingjelly.activation_based import layer, neuron, surrogate
from torch import nn

__all__ = ["SJBasicBlock", "SJResNet19", "make_lif", "map_spikeport_state_dict", "load_spikeport_weights"]

STEM_CHANNELS = 128
STAGE_CHANNELS = (128, 256, 512)
STAGE_BLOCKS = (3, 3, 2)
STAGE_STRIDES = (1, 2, 2)


def make_lif(detach_reset: bool = False) -> neuron.LIFNode:
    """SpikingJelly LIF with spikeport's LIF defaults (tau 2, decay_input, hard reset to 0, sigmoid(4))."""
    return neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                          surrogate_function=surrogate.Sigmoid(alpha=4.0), detach_reset=detach_reset,
                          step_mode="m")


class SJBasicBlock(nn.Module):
    """Spiking basic block: residual added before the output neuron ``sn2``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, detach_reset: bool = False) -> None:
        super().__init__()
        self.conv1 = layer.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False, step_mode="m")
        self.bn1 = layer.BatchNorm2d(out_channels, step_mode="m")
        self.sn1 = make_lif(detach_reset)
        self.conv2 = layer.Conv2d(out_channels, out_channels, 3, padding=1, bias=False, step_mode="m")
        self.bn2 = layer.BatchNorm2d(out_channels, step_mode="m")
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                layer.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False, step_mode="m"),
                layer.BatchNorm2d(out_channels, step_mode="m"))
        self.sn2 = make_lif(detach_reset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.sn1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.sn2(out + identity)


class SJResNet19(nn.Module):
    """Multi-step spiking ResNet-19 in SpikingJelly layers: ``[T, B, C, H, W]`` -> ``[T, B, K]``.

    Args:
        num_classes: K.
        in_channels: input channels of one timestep.
        detach_reset: stop the gradient through the reset (spikeport's default: ``False``).
        stage_channels, stage_blocks: stage widths and depths (defaults: ResNet-19).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, detach_reset: bool = False,
                 stage_channels: Sequence[int] = STAGE_CHANNELS, stage_blocks: Sequence[int] = STAGE_BLOCKS) -> None:
        super().__init__()
        self.conv1 = layer.Conv2d(in_channels, STEM_CHANNELS, 3, padding=1, bias=False, step_mode="m")
        self.bn1 = layer.BatchNorm2d(STEM_CHANNELS, step_mode="m")
        self.sn1 = make_lif(detach_reset)
        prev = STEM_CHANNELS
        for i, (c, n, s) in enumerate(zip(stage_channels, stage_blocks, STAGE_STRIDES, strict=True), start=1):
            blocks = []
            for j in range(n):
                blocks.append(SJBasicBlock(prev, c, s if j == 0 else 1, detach_reset))
                prev = c
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
        self.num_stages = len(stage_channels)
        self.avgpool = layer.AdaptiveAvgPool2d((1, 1), step_mode="m")
        self.flatten = layer.Flatten(start_dim=1, step_mode="m")
        self.fc = layer.Linear(prev, num_classes, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sn1(self.bn1(self.conv1(x)))
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(self.flatten(self.avgpool(x)))


# spikeport name -> SpikingJelly name (stage i of spikeport is ``layer{i+1}``)
_STEM = re.compile(r"^stem\.([01])\.(.+)$")
_BLOCK = re.compile(r"^stages\.(\d+)\.(\d+)\.(conv1|bn1|conv2|bn2|shortcut\.[01])\.(.+)$")
_HEAD = re.compile(r"^fc\.(weight|bias)$")


def _rename(key: str) -> str:
    m = _STEM.match(key)
    if m is not None:
        return f"{('conv1', 'bn1')[int(m.group(1))]}.{m.group(2)}"
    m = _BLOCK.match(key)
    if m is not None:
        part = m.group(3).replace("shortcut", "downsample")
        return f"layer{int(m.group(1)) + 1}.{m.group(2)}.{part}.{m.group(4)}"
    if _HEAD.match(key) is not None:
        return key
    raise KeyError(f"no SpikingJelly counterpart for spikeport state_dict key {key!r}")


def map_spikeport_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a spikeport ``resnet19`` state dict onto :class:`SJResNet19`'s module names.

    Raises:
        KeyError: a key with no counterpart (e.g. a seed-module parameter).
    """
    return {_rename(k): v for k, v in state.items()}


def load_spikeport_weights(sj_model: SJResNet19, sp_model: nn.Module) -> None:
    """Copy every parameter and buffer of spikeport ``sp_model`` into ``sj_model`` (strict, shape-checked).

    Raises:
        KeyError: unmapped key; RuntimeError: missing/unexpected keys or shape mismatch.
    """
    sj_model.load_state_dict(map_spikeport_state_dict(sp_model.state_dict()), strict=True)
