"""Model zoo registry: ``@register_model`` factories and ``create_model(name, **kw)``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from spikeport._registry import Registry
from spikeport.errors import ConfigError

__all__ = ["MODELS", "register_model", "create_model", "list_models"]

MODELS: Registry = Registry("model")


def register_model(fn: Callable[..., nn.Module] | None = None, *, name: str | None = None,
                   tags: tuple[str, ...] = ()) -> Any:
    """Register a model factory (decorator). Tags e.g. ``("digits",)``, ``("cifar",)``, ``("paper:fsta",)``."""
    return MODELS.register(fn, name=name, tags=tags)


def _load_zoo() -> None:
    importlib.import_module("spikeport.models.zoo")  # registers every built-in model


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate zoo model ``name`` with keyword overrides.

    Raises:
        ConfigError: unknown name (close matches listed) or bad keyword arguments.
    """
    _load_zoo()
    factory = MODELS.get(name)
    try:
        model = factory(**kwargs)
    except TypeError as e:
        raise ConfigError(f"model '{name}': bad arguments {sorted(kwargs)} ({e})") from e
    model.zoo_name = name
    model.zoo_kwargs = dict(kwargs)
    return model


def list_models(tag: str | None = None) -> list[str]:
    """Registered model names (optionally only those with ``tag``)."""
    _load_zoo()
    return MODELS.names(tag)
