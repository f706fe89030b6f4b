"""NIR file target: the converter's NIR export written atomically, read back and re-run.

:func:`export_nir` traces the model to the IR (unless given a graph), writes it
with :func:`spikeport.converter.nir_io.write_nir` (BatchNorm folded; the file is
re-read with ``nir.read`` before it is renamed into place), then imports the file
back (:func:`~spikeport.converter.nir_io.read_nir`) and compares that graph's
torch execution with the original model's on the check data (the model's test
split when the caller passes it, else seeded random inputs; see
:mod:`spikeport.targets.verify`). A failed or vacuous check leaves nothing behind
unless ``allow_mismatch`` / ``allow_silent``. BatchNorm folding changes float rounding, so
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

from spikeport._io import atomic_path
from spikeport.errors import ExportError
from spikeport.targets.torch_runner import TorchRunner, check_input_budget
from spikeport.targets.verify import (
    DEFAULT_ATOL,
    DEFAULT_MIN_SPIKES,
    DEFAULT_TIE_EPS,
    CheckData,
    Comparison,
    compare,
    enforce_check,
    random_check_data,
)

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
    check_data: str = ""  # what the check ran on
    dt: float = 1e-4  # the step recorded in the file
    consumer: str = "spikeport"  # the importer the file was written for


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
               atol: float = DEFAULT_ATOL, tie_eps: float = DEFAULT_TIE_EPS, check_data: CheckData | None = None,
               min_spikes: int = DEFAULT_MIN_SPIKES, allow_mismatch: bool = False,
               allow_silent: bool = False) -> NirExport:
    """Write ``model`` as a NIR file at ``path`` (atomic) and check it by importing it back.

    Args:
        model: ``nn.Module`` (traced), ``SpikeGraph`` or ``LoweredModule`` (not modified).
        path: output ``.nir`` file.
        dt: NIR timestep in seconds (default: the consumer's, else 1e-4), recorded in the file's metadata.
        consumer: the importer the file is written for (``--nir-for``; see
            :mod:`spikeport.converter.nir_io.consumers`): nodes it would misread are refused.
        check: re-import and compare with the original on ``check_data`` (default
            ``rand(T, batch(+1), ...) * scale``).
        timesteps: T of the check (default ``model.timesteps``, else 4).
        atol, tie_eps, min_spikes, allow_silent: see :mod:`spikeport.targets.verify`.
        allow_mismatch: keep the file although the check failed (its verdict is in ``check``).

    Raises:
        UnsupportedNodeError: nodes NIR cannot represent (all listed).
        ExportError: writing failed, or the import-back check failed or is vacuous (nothing left at ``path``).
    """
    from spikeport.converter.nir_io import export_dt, to_nir, write_nir
    from spikeport.models.encoders import check_timesteps

    graph = to_graph(model, input_shape)
    step = export_dt(dt, consumer)
    ng = to_nir(graph, step, consumer=consumer)  # raises UnsupportedNodeError listing every blocking node
    dest = Path(path)
    comp = None
    data = None
    with atomic_path(dest) as tmp:
        write_nir(graph, tmp, step, consumer=consumer)
        if check:
            t = check_timesteps(timesteps if timesteps is not None else (getattr(model, "timesteps", None) or 4))
            ref = TorchRunner(graph)
            if ref.input_shape is None:
                raise ExportError(f"graph '{graph.name}': unknown input shape for the import-back check; pass "
                                  "input_shape (e.g. --input-shape 1,8,8)")
            check_input_budget(t, batch + 1, ref.input_shape)
            data = check_data or random_check_data(ref.input_shape, timesteps=t, batch=batch, seed=seed, scale=scale)
            comp = compare(ref, NirRunner(tmp), data.batches, atol=atol, tie_eps=tie_eps,  # dt from the metadata
                           min_spikes=min_spikes, allow_silent=allow_silent)
            enforce_check(comp, dest.name, allow_mismatch=allow_mismatch, data=data.description,
                          what="the NIR file imported back")
    return NirExport(dest, len(ng.nodes), len(ng.edges), comp, dest.stat().st_size,
                     data.description if data is not None else "", step, consumer)
