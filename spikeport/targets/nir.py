"""NIR file target: the converter's NIR export written atomically, read back and re-run.

:func:`export_nir` traces the model to the IR (unless given a graph), writes it
with :func:`spikeport.converter.nir_io.write_nir` (BatchNorm folded; the file is
re-read with ``nir.read`` before it is renamed into place), then imports the file
back (:func:`~spikeport.converter.nir_io.read_nir`) and compares that graph's
torch execution with the original model's on seeded random inputs (see
:mod:`spikeport.targets.verify`). BatchNorm folding changes float rounding, so
logits typically differ by ~1e-7 and spikes may differ by threshold ties only.
The mapping of neurons, and what NIR cannot represent, is documented in
:mod:`spikeport.converter.nir_io`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from spikeport._io import atomic_path
from spikeport.errors import ExportError
from spikeport.targets.torch_runner import TorchRunner, check_input_budget
from spikeport.targets.verify import DEFAULT_ATOL, DEFAULT_TIE_EPS, Comparison, compare

__all__ = ["NirExport", "NirRunner", "export_nir", "to_graph"]


@dataclass
class NirExport:
    """What :func:`export_nir` wrote: ``path``, node/edge counts, the import-back check, file size, the step
    recorded in the file and the importer it was written for."""

    path: Path
    nodes: int
    edges: int
    check: Comparison | None
    size_bytes: int
    dt: float = 1e-4
    consumer: str = "spikeport"


def to_graph(model: Any, input_shape: Sequence[int] | None = None) -> Any:
    """The IR graph of ``model`` (a ``SpikeGraph``, a ``LoweredModule`` or a traceable module)."""
    from spikeport.converter import LoweredModule, SpikeGraph, trace

    if isinstance(model, SpikeGraph):
        return model
    if isinstance(model, LoweredModule):
        return model.graph
    return trace(model, input_shape)


class NirRunner(TorchRunner):
    """Run a ``.nir`` file: imported to the IR and executed by the torch reference executor."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu", **options: Any) -> None:
        from spikeport.converter.nir_io import read_nir

        super().__init__(read_nir(path, **options), device=device)
        self.runtime = "nir-import"


def export_nir(model: Any, path: str | os.PathLike, *, input_shape: Sequence[int] | None = None,
               dt: float | None = None, consumer: str = "spikeport", check: bool = True,
               timesteps: int | None = None, batch: int = 2, seed: int = 0, scale: float = 1.0,
               atol: float = DEFAULT_ATOL, tie_eps: float = DEFAULT_TIE_EPS) -> NirExport:
    """Write ``model`` as a NIR file at ``path`` (atomic) and check it by importing it back.

    Args:
        model: ``nn.Module`` (traced), ``SpikeGraph`` or ``LoweredModule`` (not modified).
        path: output ``.nir`` file.
        dt: NIR timestep in seconds (default: the consumer's, else 1e-4), recorded in the file's metadata.
        consumer: the importer the file is written for (``--nir-for``; see
            :mod:`spikeport.converter.nir_io.consumers`): nodes it would misread are refused.
        check: re-import and compare with the original on ``rand(T, batch(+1), ...) * scale``.
        timesteps: T of the check (default ``model.timesteps``, else 4).
        atol, tie_eps: see :mod:`spikeport.targets.verify`.

    Raises:
        UnsupportedNodeError: nodes NIR cannot represent (all listed).
        ExportError: writing or the import-back check failed (nothing left at ``path``).
    """
    from spikeport.converter.nir_io import export_dt, read_nir, to_nir, write_nir
    from spikeport.models.encoders import check_timesteps

    graph = to_graph(model, input_shape)
    step = export_dt(dt, consumer)
    ng = to_nir(graph, step, consumer=consumer)  # raises UnsupportedNodeError listing every blocking node
    dest = Path(path)
    comp = None
    with atomic_path(dest) as tmp:
        write_nir(graph, tmp, step, consumer=consumer)
        if check:
            t = check_timesteps(timesteps if timesteps is not None else (getattr(model, "timesteps", None) or 4))
            ref = TorchRunner(graph)
            check_input_budget(t, batch + 1, ref.input_shape)
            back = TorchRunner(read_nir(tmp))  # dt and integration from the file's metadata
            back.runtime = "nir-import"
            g = torch.Generator().manual_seed(seed)
            batches = [(torch.rand(t, b, *ref.input_shape, generator=g) * scale, None) for b in (batch, batch + 1)]
            comp = compare(ref, back, batches, atol=atol, tie_eps=tie_eps)
            if not comp.ok:
                raise ExportError(f"{dest.name}: the NIR file imported back disagrees with the model: "
                                  f"{comp.describe()}")
    return NirExport(dest, len(ng.nodes), len(ng.edges), comp, dest.stat().st_size, step, consumer)
