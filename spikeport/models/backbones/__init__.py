"""Spiking backbones (ResNet-18/19/20, VGG-11, digits-sized variants) and their zoo entries.

Importing this package registers every model family with the zoo.
"""

from spikeport.models.backbones import digits_variants, resnet, vgg
from spikeport.models.backbones._common import ChannelFactory, neuron_factory, num_params
from spikeport.models.backbones.resnet import (
                                               RESNET_CFGS,
                                               BasicBlock,
                                               SpikingResNet,
                                               create_resnet,
                                               fsta_hooks,
                                               staa_hooks,
                                               ts_hooks,
)
from spikeport.models.backbones.vgg import VGG_CFGS, SpikingVGG

__all__ = ["digits_variants", "resnet", "vgg",  # the families' modules (importing them registers their models)
           "ChannelFactory", "neuron_factory", "num_params", "BasicBlock", "SpikingResNet", "RESNET_CFGS",
           "create_resnet", "ts_hooks", "staa_hooks", "fsta_hooks", "SpikingVGG", "VGG_CFGS"]
