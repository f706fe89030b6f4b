"""Import helper for the optional parts of a build (registries fill themselves on import)."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["optional_import"]


def optional_import(name: str) -> ModuleType | None:
    """Import module ``name``; return None if it (or a parent package) does not exist.

    Errors raised *inside* an existing module propagate, so bugs are not hidden.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            return None
        raise
