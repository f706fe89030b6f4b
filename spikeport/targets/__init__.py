"""Deployment targets: ONNX (sequence and streaming), NIR, Lava/Loihi, and the torch reference they are checked against.

* :func:`export_model` / :data:`TARGETS`: ``target name -> function`` with atomic
  outputs and deployability summaries (:mod:`spikeport.targets.export`);
* :mod:`spikeport.targets.onnx`, :mod:`spikeport.targets.nir`, :mod:`spikeport.targets.lava`:
  the targets (optional dependencies are imported only when a target runs);
* :class:`TorchRunner`: the float reference on CPU or CUDA (:mod:`spikeport.targets.torch_runner`);
* :func:`verify_export` / :class:`Comparison`: per-layer spike agreement, logit
  error and accuracy of a target against the reference (:mod:`spikeport.targets.verify`).
"""

from spikeport.targets.export import TARGETS, ExportResult, deployability, export_model, open_exported
from spikeport.targets.torch_runner import RunResult, TorchRunner
from spikeport.targets.verify import Comparison, compare, dataset_batches, random_batches, verify_export

__all__ = [
    "TARGETS",
    "ExportResult",
    "export_model",
    "deployability",
    "open_exported",
    "RunResult",
    "TorchRunner",
    "Comparison",
    "compare",
    "verify_export",
    "dataset_batches",
    "random_batches",
]
