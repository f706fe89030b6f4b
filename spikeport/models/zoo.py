"""Imports every module that registers zoo models (import for side effects only)."""

import importlib

_ZOO_MODULES = ("digits", "backbones")

for _m in _ZOO_MODULES:
    try:
        importlib.import_module(f"spikeport.models.{_m}")
    except ModuleNotFoundError as _e:  # a model family not present in this build
        if _e.name != f"spikeport.models.{_m}":
            raise
