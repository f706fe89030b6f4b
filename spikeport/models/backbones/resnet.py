r"""Spiking ResNets (multi-step, ``[T, B, C, H, W]`` -> per-step logits ``[T, B, K]``).

Basic block (the SNN-literature "spiking ResNet": the residual is added to the
input current *before* the output neuron, as in TET / MPBN / the seed papers):

.. math::

    y = \mathrm{act_1}(\mathrm{BN}_1(\mathrm{conv}_1(\mathrm{pre}(x)))),\quad
    \mathrm{out} = \mathrm{act_2}(\mathrm{BN}_2(\mathrm{conv}_2(\mathrm{pre}(y))) + \mathrm{shortcut}(x))

Layers are injected timm-style: ``neuron``/``neuron_kw`` pick the spiking neuron;
``act_layer(C)`` replaces every neuron after a BN (FSTA), ``block_act_layer(C)`` those
inside the blocks only (FSTA-SNN's ResNet-19 wires its block attentions differently
from its stem's); ``pre_conv(C)`` is
inserted before each block conv on the residual branch only (TS-SNN);
``block_attn(C)`` replaces each block's output neuron ``act_2`` (STAA, whose
block contains its own neuron). Forward has no data-dependent Python control
flow: the model is torch.fx traceable when neurons, the multi-step layers and
the paper-method modules are leaves.

Configurations (``resnet18``/``resnet19``/``resnet20`` in the zoo):

* ResNet-18 (CIFAR): conv3x3(64) stem, stages (64, 128, 256, 512) x 2 blocks.
* ResNet-19 (TET / MPBN / TS-SNN / FSTA): conv3x3(128) stem, stages (128, 256, 512) x (3, 3, 2).
* ResNet-20 (the SNN-literature ResNet-20 of the FSTA code, not He et al.'s 0.27M CIFAR net):
  three conv3x3(64) stem layers + AvgPool(2), stages (64, 128, 256, 512) x 2 with
  AvgPool + 1x1-conv shortcuts.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from spikeport.errors import ConfigError
from spikeport.models import layers as L
from spikeport.models._registry import register_model
from spikeport.models.backbones._common import (
    ChannelFactory,
    check_input_shape,
    check_int_tuple,
    conv_out,
    init_weights,
    neuron_factory,
)
from spikeport.models.methods import FSTALIF, STAABlock, TemporalShift
from spikeport.models.neurons.factory import NeuronType

__all__ = ["BasicBlock", "SpikingResNet", "RESNET_CFGS", "create_resnet", "ts_hooks", "staa_hooks", "fsta_hooks"]

_SHORTCUTS = ("conv", "avgconv")
_HEADS = ("gap", "flatten")


class BasicBlock(nn.Module):
    """Spiking basic block (see module docstring).

    Args:
        in_channels, out_channels, stride: as in a ResNet basic block.
        act_layer: factory for the neurons after BN1 and after the residual add.
        pre_conv: optional factory inserted before conv1 and conv2 (residual branch only).
        block_attn: optional factory replacing the output neuron (after the residual add).
        shortcut: ``'conv'`` (1x1 conv stride s + BN) or ``'avgconv'`` (AvgPool(s) + 1x1 conv + BN),
            used when the stride or the width changes; identity otherwise.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, act_layer: ChannelFactory,
                 pre_conv: ChannelFactory | None = None, block_attn: ChannelFactory | None = None,
                 shortcut: str = "conv") -> None:
        super().__init__()
        if shortcut not in _SHORTCUTS:
            raise ConfigError(f"BasicBlock: shortcut must be one of {_SHORTCUTS}, got {shortcut!r}")
        self.pre1 = pre_conv(in_channels) if pre_conv is not None else None
        self.conv1 = L.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = L.BatchNorm2d(out_channels)
        self.act1 = act_layer(out_channels)
        self.pre2 = pre_conv(out_channels) if pre_conv is not None else None
        self.conv2 = L.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = L.BatchNorm2d(out_channels)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            mods: list[nn.Module] = []
            if shortcut == "avgconv" and stride != 1:
                mods.append(L.AvgPool2d(stride, stride=stride, ceil_mode=True, count_include_pad=False))
                stride = 1
            mods += [L.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), L.BatchNorm2d(out_channels)]
            self.shortcut = nn.Sequential(*mods)
        self.act2 = block_attn(out_channels) if block_attn is not None else act_layer(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.pre1 is None else self.pre1(x)
        out = self.act1(self.bn1(self.conv1(out)))
        if self.pre2 is not None:
            out = self.pre2(out)
        out = self.bn2(self.conv2(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.act2(out + identity)


class SpikingResNet(nn.Module):
    """Configurable multi-step spiking ResNet with injectable neurons and paper-method modules.

    Args:
        stage_channels: width of each stage.
        stage_blocks: basic blocks per stage.
        stage_strides: stride of each stage's first block (default 1 then 2, 2, ...).
        stem_channels: widths of the stem's conv3x3-BN-neuron layers.
        stem_pool: AvgPool kernel after the stem (0: none).
        shortcut: ``'conv'`` or ``'avgconv'`` (see :class:`BasicBlock`).
        head: ``'gap'`` (global average pool -> Linear) or ``'flatten'`` (Linear on the flat map).
        num_classes: K.
        input_shape: ``(C, H, W)`` of one timestep (C sets the stem's input channels).
        neuron: neuron spec (``'lif'``, ``'dalif'``, ``'relu'`` for the ANN twin, a class, ...).
        neuron_kw: neuron options (``{'per_channel': True}`` is filled with each layer's width).
        act_layer: factory replacing every neuron after a BN (default: the ``neuron`` factory).
        block_act_layer: factory for the neurons inside the blocks (default: ``act_layer``).
        pre_conv: factory inserted before each block conv (TS-SNN).
        block_attn: factory replacing each block's output neuron (STAA).
        timesteps: T the model was built for (``None``: any T); recorded as ``self.timesteps``.

    Attributes:
        default_input_shape, num_classes, timesteps, num_features.
    """

    def __init__(self, stage_channels: Sequence[int], stage_blocks: Sequence[int],
                 stage_strides: Sequence[int] | None = None, stem_channels: Sequence[int] = (64,), stem_pool: int = 0,
                 shortcut: str = "conv", head: str = "gap", num_classes: int = 10,
                 input_shape: Sequence[int] = (3, 32, 32), neuron: NeuronType = "lif",
                 neuron_kw: dict[str, Any] | None = None, act_layer: ChannelFactory | None = None,
                 pre_conv: ChannelFactory | None = None, block_attn: ChannelFactory | None = None,
                 timesteps: int | None = None, block_act_layer: ChannelFactory | None = None) -> None:
        super().__init__()
        owner = type(self).__name__
        shape = check_input_shape(owner, input_shape)
        chans = check_int_tuple(owner, "stage_channels", stage_channels)
        blocks = check_int_tuple(owner, "stage_blocks", stage_blocks, len(chans))
        strides = check_int_tuple(owner, "stage_strides",
                                  stage_strides if stage_strides is not None else (1,) + (2,) * (len(chans) - 1),
                                  len(chans))
        stem = check_int_tuple(owner, "stem_channels", stem_channels)
        if head not in _HEADS:
            raise ConfigError(f"{owner}: head must be one of {_HEADS}, got {head!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
            raise ConfigError(f"{owner}: num_classes must be a positive integer, got {num_classes!r}")
        self.default_input_shape = shape
        self.num_classes = num_classes
        self.timesteps = timesteps
        act = act_layer if act_layer is not None else neuron_factory(neuron, neuron_kw)
        block_act = block_act_layer if block_act_layer is not None else act

        layers: list[nn.Module] = []
        prev, (h, w) = shape[0], shape[1:]
        for c in stem:
            layers += [L.Conv2d(prev, c, 3, padding=1, bias=False), L.BatchNorm2d(c), act(c)]
            prev = c
        if stem_pool:
            layers.append(L.AvgPool2d(stem_pool))
            h, w = h // stem_pool, w // stem_pool
        self.stem = nn.Sequential(*layers)

        stages = []
        for c, n, s in zip(chans, blocks, strides, strict=True):
            blks = []
            for i in range(n):
                blks.append(BasicBlock(prev, c, s if i == 0 else 1, act_layer=block_act, pre_conv=pre_conv,
                                       block_attn=block_attn, shortcut=shortcut))
                prev = c
            h, w = conv_out(h, s), conv_out(w, s)
            stages.append(nn.Sequential(*blks))
        self.stages = nn.Sequential(*stages)
        if h <= 0 or w <= 0:
            raise ConfigError(f"{owner}: input_shape {shape} is too small for the stem pool/strides")

        self.global_pool = L.AdaptiveAvgPool2d(1) if head == "gap" else None
        self.flatten = L.Flatten()
        self.num_features = prev if head == "gap" else prev * h * w
        self.fc = L.Linear(self.num_features, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` input -> last stage's spike map ``[T, B, C', H', W']``."""
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map -> per-step logits ``[T, B, K]``."""
        if self.global_pool is not None:
            x = self.global_pool(x)
        return self.fc(self.flatten(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


RESNET_CFGS: dict[str, dict[str, Any]] = {
    "resnet18": {"stem_channels": (64,), "stage_channels": (64, 128, 256, 512), "stage_blocks": (2, 2, 2, 2)},
    "resnet19": {"stem_channels": (128,), "stage_channels": (128, 256, 512), "stage_blocks": (3, 3, 2)},
    "resnet20": {"stem_channels": (64, 64, 64), "stem_pool": 2, "stage_channels": (64, 128, 256, 512),
                 "stage_blocks": (2, 2, 2, 2), "shortcut": "avgconv"},
    # digits-sized (1x8x8): 8x8 -> 16ch block -> 32ch block (stride 2) -> 4x4 -> flatten -> Linear
    "resnet_digits": {"stem_channels": (16,), "stage_channels": (16, 32), "stage_blocks": (1, 1), "head": "flatten",
                      "input_shape": (1, 8, 8)},
}


def create_resnet(cfg: str, **kw: Any) -> SpikingResNet:
    """Build configuration ``cfg`` of :data:`RESNET_CFGS` with keyword overrides."""
    args = dict(RESNET_CFGS[cfg])
    args.update(kw)
    return SpikingResNet(**args)


# ---------------------------------------------------------------- seed-method hooks
def ts_hooks(fold_div: int = 32, split_mode: str = "fixed", alpha_init: float = 0.3,
             split: tuple[int, int] | None = None) -> dict[str, Any]:
    """Backbone kwargs adding a TS-SNN :class:`TemporalShift` before every block conv."""
    return {"pre_conv": partial(TemporalShift, fold_div=fold_div, split=split, split_mode=split_mode,
                                alpha_init=alpha_init)}


def staa_hooks(timesteps: int, neuron: NeuronType = "dalif", neuron_kw: dict[str, Any] | None = None,
               reduction: int = 4, tsrd_p: float = 0.1) -> dict[str, Any]:
    """Backbone kwargs: STAA blocks as every block's output layer, the adaptive LIF elsewhere."""
    return {"block_attn": partial(STAABlock, timesteps=timesteps, reduction=reduction, tsrd_p=tsrd_p, neuron=neuron,
                                  neuron_kw=neuron_kw),
            "neuron": neuron, "neuron_kw": neuron_kw, "timesteps": timesteps}


def fsta_hooks(timesteps: int, freq_num: int = 49, reduction: int = 1, neuron: NeuronType | None = None,
               neuron_kw: dict[str, Any] | None = None, *, block_reduction: int | None = None) -> dict[str, Any]:
    """Backbone kwargs replacing every neuron after a BN by :class:`FSTALIF`.

    ``reduction`` is the stem's attention reduction; ``block_reduction`` the blocks' (default: the same).
    """
    def fsta(r: int) -> ChannelFactory:
        return partial(FSTALIF, timesteps=timesteps, freq_num=freq_num, reduction=r, neuron=neuron,
                       neuron_kw=neuron_kw)

    hooks: dict[str, Any] = {"act_layer": fsta(reduction), "timesteps": timesteps}
    if block_reduction is not None and block_reduction != reduction:
        hooks["block_act_layer"] = fsta(block_reduction)
    return hooks


# ---------------------------------------------------------------- zoo entries (CIFAR-sized)
@register_model(tags=("cifar",))
def resnet18(**kw: Any) -> SpikingResNet:
    """Spiking ResNet-18, CIFAR stem (conv3x3 64), 3x32x32 input."""
    return create_resnet("resnet18", **kw)


@register_model(tags=("cifar",))
def resnet19(**kw: Any) -> SpikingResNet:
    """Spiking ResNet-19 (TET/MPBN): stem 128, stages (128,256,512) x (3,3,2)."""
    return create_resnet("resnet19", **kw)


@register_model(tags=("cifar",))
def resnet20(**kw: Any) -> SpikingResNet:
    """Spiking ResNet-20 of the SNN literature (FSTA code): 3-conv stem, 4 stages x 2 blocks."""
    return create_resnet("resnet20", **kw)


@register_model(tags=("cifar", "paper:ts"))
def tssnn_resnet19(fold_div: int = 32, split_mode: str = "fixed", alpha_init: float = 0.3,
                   split: tuple[int, int] | None = None, **kw: Any) -> SpikingResNet:
    """TS-SNN: ResNet-19 with a temporal shift before every block conv (non-causal)."""
    return create_resnet("resnet19", **ts_hooks(fold_div, split_mode, alpha_init, split), **kw)


@register_model(tags=("cifar", "paper:dalif"))
def dalif_resnet19(per_channel: bool = False, neuron: NeuronType = "dalif", neuron_kw: dict[str, Any] | None = None,
                   **kw: Any) -> SpikingResNet:
    """DA-LIF: ResNet-19 with dual-adaptive LIF neurons (per-layer, or per-channel decays)."""
    nk = dict(neuron_kw or {})
    if per_channel:
        nk["per_channel"] = True
    return create_resnet("resnet19", neuron=neuron, neuron_kw=nk, **kw)


@register_model(tags=("cifar", "paper:staa"))
def staa_resnet19(timesteps: int = 4, neuron: NeuronType = "dalif", neuron_kw: dict[str, Any] | None = None,
                  reduction: int = 4, tsrd_p: float = 0.1, **kw: Any) -> SpikingResNet:
    """STAA-SNN: ResNet-19 with PE+GC+adaptive LIF+SA (+TSRD) as every block's output (needs T)."""
    return create_resnet("resnet19", **staa_hooks(timesteps, neuron, neuron_kw, reduction, tsrd_p), **kw)


FSTA_OFFICIAL_BLOCK_REDUCTION = 16
"""Attention reduction of the official FSTA-SNN ResNet-19's blocks: its ``_make_layer`` does not pass
``reduction`` on, so every ``BasicBlock`` keeps its default 16 (49 -> 3 -> 1 channels), while the stem gets
the configured 1 (``train.py`` passes ``freq_num=49, reduction=1``)."""


@register_model(tags=("cifar", "paper:fsta"))
def fsta_resnet19(timesteps: int = 2, freq_num: int = 49, reduction: int = 1,
                  block_reduction: int | None = FSTA_OFFICIAL_BLOCK_REDUCTION, neuron: NeuronType | None = None,
                  neuron_kw: dict[str, Any] | None = None, **kw: Any) -> SpikingResNet:
    """FSTA-SNN: ResNet-19 with FSTA+LIF replacing every LIF (CIFAR-100 config, T=2).

    Wired as the official code (``models/resnet.py``, ``ResNet19``): the stem's attention uses ``reduction``
    (1: one 7x7 conv 49 -> 1) and the 16 block attentions ``block_reduction`` = 16 (7x7 convs 49 -> 3 -> 1),
    because its ``_make_layer`` does not pass ``reduction`` on. ``block_reduction=None`` (or 1) gives the
    uniform wiring with reduction 1 everywhere. Parameters (``sum(p.numel() for p in model.parameters())`` of
    this model, T=2; the official code's three unused scalars per attention are not built): 12,735,533 with
    the official wiring and 12,656,349 with reduction 1 everywhere at CIFAR-100 (100 classes); 12,689,363 and
    12,610,179 at 10 classes. Each block attention with reduction 16 holds 49x3x7x7 + 3x1x7x7 = 7,350 conv
    weights instead of 49x1x7x7 = 2,401.
    """
    return create_resnet("resnet19", **fsta_hooks(timesteps, freq_num, reduction, neuron, neuron_kw,
                                                  block_reduction=block_reduction), **kw)


@register_model(tags=("cifar", "paper:fsta"))
def fsta_resnet20(timesteps: int = 2, freq_num: int = 49, reduction: int = 1, block_reduction: int | None = None,
                  neuron: NeuronType | None = None, neuron_kw: dict[str, Any] | None = None,
                  **kw: Any) -> SpikingResNet:
    """FSTA-SNN: ResNet-20 with FSTA+LIF replacing every LIF (CIFAR-10 config, T=2).

    The official ``ResNet20._make_layer`` does pass ``reduction`` on, so stem and blocks share it
    (``block_reduction=None``: the same as ``reduction``, 1 in the official config). Parameters (this model,
    T=2): 11,293,717 at 10 classes (11,372,901 with ``block_reduction=16``).
    """
    return create_resnet("resnet20", **fsta_hooks(timesteps, freq_num, reduction, neuron, neuron_kw,
                                                  block_reduction=block_reduction), **kw)
