"""Models from other SNN frameworks (SpikingJelly, snnTorch, Norse, sinabs, lava-dl SLAYER) in spikeport.

* :class:`ForeignModel` / :func:`adapt`: run such a model on spikeport's ``[T, B, ...]`` data in its
  own time layout, resetting its state before every batch (:mod:`.foreign`);
* :func:`reset_state`, :func:`frameworks_in`, :func:`neuron_layout`: where each framework keeps state
  and how its neurons are called (:mod:`.state`);
* :class:`OriginalRunner`: the model run as it is, with per-layer spikes, for verification (:mod:`.runner`).

Their neurons and layers become IR ops through the adapters in :mod:`spikeport.ops.frameworks`.
"""

from spikeport.frameworks.foreign import ForeignModel, adapt, first_tensor
from spikeport.frameworks.state import FRAMEWORKS, frameworks_in, neuron_layout, reset_state

__all__ = ["ForeignModel", "adapt", "first_tensor", "FRAMEWORKS", "frameworks_in", "neuron_layout", "reset_state",
           "OriginalRunner"]


def __getattr__(name: str) -> object:  # the runner imports the targets package: loaded on first use
    if name == "OriginalRunner":
        from spikeport.frameworks.runner import OriginalRunner

        return OriginalRunner
    raise AttributeError(f"module 'spikeport.frameworks' has no attribute {name!r}")
