"""Imports every module that registers zoo models (import for side effects only)."""

from spikeport._imports import optional_import

_ZOO_MODULES = ("digits", "backbones")

for _m in _ZOO_MODULES:
    optional_import(f"spikeport.models.{_m}")  # None: a model family not present in this build
