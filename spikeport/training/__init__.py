"""Training: BPTT with surrogate gradients, loss registry (CE, TET, KD losses), evaluation."""

from spikeport.training.losses import LOSSES, create_loss
from spikeport.training.trainer import TrainConfig, TrainResult, evaluate, train

__all__ = ["LOSSES", "create_loss", "TrainConfig", "TrainResult", "evaluate", "train"]
