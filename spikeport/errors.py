"""Error types raised by spikeport.

Every error a user can trigger is a :class:`SpikeportError` (or subclass) whose
message names the file, node or option at fault and says how to fix it. The CLI
prints such errors as one line and exits non-zero; any other exception is a bug
and shows a traceback only with ``--debug``.
"""

from __future__ import annotations

__all__ = [
    "SpikeportError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "GraphError",
    "ExportError",
    "UnsupportedNodeError",
]


class SpikeportError(Exception):
    """Base class of all user-facing errors."""

    exit_code = 2


class CheckpointError(SpikeportError):
    """A checkpoint file is missing, corrupt, foreign or unsafe."""


class ConfigError(SpikeportError, ValueError):
    """An option or argument has an invalid value."""


class DataError(SpikeportError):
    """A dataset or input file cannot be read or has the wrong shape."""


class GraphError(SpikeportError):
    """The IR graph is malformed (bad edge, shape mismatch, unknown node)."""


class ExportError(SpikeportError):
    """Writing or verifying an export failed."""


class UnsupportedNodeError(ExportError):
    """A node cannot be represented by a target (lists every blocking node)."""
