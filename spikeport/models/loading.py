"""Resolve the MODEL argument every command takes.

A model may be given as:

* a spikeport checkpoint file (``*.pt``/``*.pth``; see :mod:`spikeport.checkpoint`);
* a zoo name (``spikeport zoo`` lists them), built with fresh weights;
* ``path/to/file.py:factory`` (+ ``weights=`` a state_dict or checkpoint file);
* a ``.nir`` file (imported through the converter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from spikeport.errors import ConfigError

__all__ = ["LoadedModel", "load_model", "NIR_FLAGS"]

NIR_FLAGS = {"producer": "--nir-from", "dt": "--dt", "integration": "--integration", "reset": "--nir-reset",
             "assume": "--nir-assume"}
"""The command-line flag of each NIR reading option."""


@dataclass
class LoadedModel:
    """A model plus what callers need to run it."""

    model: nn.Module
    source: str
    kind: str  # 'checkpoint' | 'zoo' | 'factory' | 'nir'
    timesteps: int | None = None
    input_shape: tuple[int, ...] | None = None
    encoder: str = "direct"
    dataset: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def load_model(spec: str, *, weights: str | None = None, device: str = "cpu",
               nir_options: Mapping[str, Any] | None = None, **model_kwargs: Any) -> LoadedModel:
    """Resolve ``spec`` (see module docstring) to a model in eval mode.

    ``nir_options``: how a ``.nir`` file is read (``dt``, ``integration``, ``producer``, ``reset``, ``assume``; see
    :func:`spikeport.converter.nir_io.from_nir`); ``None`` values are left to the file and the defaults.

    Raises:
        ConfigError: ``weights`` given for anything but ``file.py:factory``, NIR options for a model that is
            not a ``.nir`` file, unknown names, bad files.
    """
    from spikeport.checkpoint import load_checkpoint
    from spikeport.models import MODELS, create_model, list_models

    path = Path(spec)
    if weights is not None and ".py:" not in spec:
        raise ConfigError(f"--weights {weights}: --weights only applies to file.py:factory models; {spec} already "
                          "carries its weights (checkpoint) or is built from the zoo; drop --weights, or pass the "
                          "checkpoint itself as MODEL")
    if path.suffix in (".pt", ".pth", ".ckpt"):
        model, info = load_checkpoint(path, map_location=device)
        return LoadedModel(model, spec, "checkpoint", info.timesteps, tuple(info.input_shape), info.encoder,
                           info.dataset, {"metrics": info.metrics, "model": info.model,
                                          "model_kwargs": info.model_kwargs})
    given = {k: v for k, v in dict(nir_options or {}).items() if v is not None and v != {}}
    if path.suffix == ".nir":
        return _load_nir(path, device, given)
    if given:
        flags = ", ".join(NIR_FLAGS.get(k, k) for k in given)
        raise ConfigError(f"{flags}: these options say how a .nir file is read; {spec} is not a .nir file")
    if ".py:" in spec:
        return _load_factory(spec, weights, device, model_kwargs)
    list_models()  # populate the registry
    if spec in MODELS:
        model = create_model(spec, **model_kwargs).to(device).eval()
        shape = getattr(model, "default_input_shape", None)
        return LoadedModel(model, spec, "zoo", None, tuple(shape) if shape else None)
    if path.exists():
        raise ConfigError(f"{spec}: unrecognised model file type '{path.suffix}'; expected a .pt checkpoint, "
                          "a .nir file or file.py:factory")
    MODELS.get(spec)  # raises with close matches
    raise AssertionError("unreachable")  # pragma: no cover


def _load_nir(path: Path, device: str, options: Mapping[str, Any]) -> LoadedModel:
    try:
        from spikeport.converter.nir_io import load_nir_model
    except ModuleNotFoundError as e:  # pragma: no cover - converter always ships
        raise ConfigError(f"{path}: NIR import is not available in this build") from e
    return load_nir_model(path, device=device, **options)


def _load_factory(spec: str, weights: str | None, device: str, model_kwargs: dict[str, Any]) -> LoadedModel:
    import importlib.util
    import sys

    file, _, fn_name = spec.rpartition(":")
    fpath = Path(file)
    if not fpath.is_file():
        raise ConfigError(f"{file}: no such Python file (MODEL given as file.py:factory)")
    mod_name = f"spikeport_user_{abs(hash(str(fpath.resolve())))}"
    try:
        mspec = importlib.util.spec_from_file_location(mod_name, fpath)
        module = importlib.util.module_from_spec(mspec)  # type: ignore[arg-type]
        sys.modules[mod_name] = module
        mspec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as e:  # user code: report its failure as one line
        raise ConfigError(f"{file}: importing the file failed: {type(e).__name__}: {e}") from e
    factory = getattr(module, fn_name, None)
    if not callable(factory):
        raise ConfigError(f"{file}: has no callable '{fn_name}'; expected file.py:factory")
    try:
        model = factory(**model_kwargs)
    except Exception as e:
        raise ConfigError(f"{spec}: factory raised {type(e).__name__}: {e}") from e
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{spec}: factory returned {type(model).__name__}, expected a torch.nn.Module")
    info = None
    if weights is not None:
        info = _load_weights(model, weights)
    shape = getattr(model, "default_input_shape", None)
    return LoadedModel(model.to(device).eval(), spec, "factory", info.timesteps if info else None,
                       tuple(info.input_shape) if info else (tuple(shape) if shape else None))


def _load_weights(model: nn.Module, weights: str):
    """Load a spikeport checkpoint's or a bare state_dict's weights into ``model``."""
    import torch

    from spikeport.checkpoint import read_checkpoint
    from spikeport.errors import CheckpointError

    try:
        info, sd = read_checkpoint(weights)
    except CheckpointError as e:
        if "not a spikeport checkpoint (missing format tag" not in str(e):
            raise
        info = None
        sd = torch.load(weights, map_location="cpu", weights_only=True)
        if not isinstance(sd, dict):
            raise CheckpointError(f"{weights}: expected a state_dict (dict of tensors)") from None
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{weights}: weights do not fit the model ({str(e).splitlines()[0]})") from e
    return info
