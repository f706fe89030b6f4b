"""Resolve the MODEL argument every command takes.

A model may be given as:

* a spikeport checkpoint file (``*.pt``/``*.pth``; see :mod:`spikeport.checkpoint`);
* a zoo name (``spikeport zoo`` lists them), built with fresh weights;
* ``path/to/file.py:factory`` (+ ``weights=`` a state_dict or checkpoint file);
* a ``.nir`` file (imported through the converter).

A factory may build a model of another framework (SpikingJelly, snnTorch, Norse, sinabs,
lava-dl) or in another time layout: ``time_layout=`` says how it takes time, and the model is
wrapped in a :class:`~spikeport.frameworks.ForeignModel` (``[T, B, ...]`` in, state reset per
batch). The factory's folder is importable while the file is imported and the factory runs.
State-dict errors list the missing and unexpected keys; framework state buffers saved in a
state dict (sinabs ``v_mem``/``i_syn``, shaped by the last training batch) are dropped with a
note; a pickled whole model is refused with the two lines that re-save it as a state dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from spikeport.errors import CheckpointError, ConfigError

__all__ = ["LoadedModel", "load_model", "STATE_BUFFERS", "NIR_FLAGS"]

STATE_BUFFERS = ("v_mem", "i_syn")
"""Last key components of framework state buffers that state dicts carry but weights are not (sinabs);
matched exactly (``min_v_mem`` is a parameter)."""
_SHOWN_KEYS = 10

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
    notes: list[str] = field(default_factory=list)
    """Things the caller should tell the user (e.g. state buffers dropped from the weights)."""


def load_model(spec: str, *, weights: str | None = None, device: str = "cpu", time_layout: str | None = None,
               nir_options: Mapping[str, Any] | None = None, **model_kwargs: Any) -> LoadedModel:
    """Resolve ``spec`` (see module docstring) to a model in eval mode.

    Args:
        time_layout: how a ``file.py:factory`` model takes time (:mod:`spikeport.converter.layout`; default
            ``tb``); a model holding framework modules, or in another layout, comes back as a
            :class:`~spikeport.frameworks.ForeignModel`.
        nir_options: how a ``.nir`` file is read (``dt``, ``integration``, ``producer``, ``reset``, ``assume``;
            see :func:`spikeport.converter.nir_io.from_nir`); ``None`` values are left to the file and the defaults.

    Raises:
        ConfigError: ``weights`` or ``time_layout`` given for anything but ``file.py:factory``, NIR options for a
            model that is not a ``.nir`` file, unknown names, bad files.
    """
    from spikeport.checkpoint import load_checkpoint
    from spikeport.models import MODELS, create_model, list_models

    path = Path(spec)
    if time_layout not in (None, "tb") and ".py:" not in spec:
        raise ConfigError(f"--time-layout {time_layout}: only applies to file.py:factory models; {spec} is a "
                          "spikeport model (time-first [T, B, ...])")
    if weights is not None and ".py:" not in spec:
        raise ConfigError(f"--weights {weights}: --weights only applies to file.py:factory models; {spec} already "
                          "carries its weights (checkpoint) or is built from the zoo; drop --weights, or pass the "
                          "checkpoint itself as MODEL")
    if path.suffix in (".pt", ".pth", ".ckpt"):
        try:
            model, info = load_checkpoint(path, map_location=device)
        except CheckpointError as e:
            if "pickled Python objects" in str(e):
                raise _pickled(path, e) from e
            raise
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
        return _load_factory(spec, weights, device, model_kwargs, time_layout)
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


def _load_factory(spec: str, weights: str | None, device: str, model_kwargs: dict[str, Any],
                  time_layout: str | None) -> LoadedModel:
    import importlib.util
    import sys

    file, _, fn_name = spec.rpartition(":")
    fpath = Path(file)
    if not fpath.is_file():
        raise ConfigError(f"{file}: no such Python file (MODEL given as file.py:factory)")
    mod_name = f"spikeport_user_{abs(hash(str(fpath.resolve())))}"
    folder = str(fpath.resolve().parent)
    added = folder not in sys.path
    if added:  # modules next to the factory file import as they do when the user runs it
        sys.path.insert(0, folder)
    try:
        try:
            mspec = importlib.util.spec_from_file_location(mod_name, fpath)
            if mspec is None or mspec.loader is None:
                raise ConfigError(f"{file}: not an importable Python file")
            module = importlib.util.module_from_spec(mspec)
            sys.modules[mod_name] = module
            mspec.loader.exec_module(module)
        except ConfigError:
            raise
        except Exception as e:  # user code: report its failure as one line
            raise ConfigError(f"{file}: importing the file failed: {type(e).__name__}: {e}") from e
        factory = getattr(module, fn_name, None)
        if not callable(factory):
            raise ConfigError(f"{file}: has no callable '{fn_name}'; expected file.py:factory")
        try:
            model = factory(**model_kwargs)
        except Exception as e:
            raise ConfigError(f"{spec}: factory raised {type(e).__name__}: {e}") from e
    finally:
        if added:
            sys.path.remove(folder)
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{spec}: factory returned {type(model).__name__}, expected a torch.nn.Module")
    info: Any = None
    notes: list[str] = []
    if weights is not None:
        info, notes = _load_weights(model, weights)
    shape = getattr(model, "default_input_shape", None)
    in_shape = tuple(info.input_shape) if info else (tuple(shape) if shape else None)
    from spikeport.frameworks import adapt

    model = adapt(model.to(device).eval(), time_layout, in_shape)
    return LoadedModel(model.eval(), spec, "factory", info.timesteps if info else None, in_shape, notes=notes)


def _pickled(path: Any, err: Exception) -> CheckpointError:
    """The refusal of a file holding pickled objects (e.g. a whole model saved with ``torch.save(model)``), with the
    two lines that re-save its weights as a state dict."""
    out = f"{Path(path).stem}.weights.pt"
    return CheckpointError(
        f"{path}: refused: the file holds pickled Python objects, not plain weights (loading it could run code); "
        f"if it is a whole model you saved yourself (torch.save(model)) and you trust it, re-save its weights once, "
        f"in Python where its classes import: `m = torch.load(\"{path}\", weights_only=False)` then "
        f"`torch.save(m.state_dict(), \"{out}\")`; then pass file.py:factory --weights {out}")


def _keys(keys: list[str]) -> str:
    more = f" and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return ", ".join(keys[:_SHOWN_KEYS]) + more


def _load_weights(model: nn.Module, weights: str) -> tuple[Any, list[str]]:
    """Load a spikeport checkpoint's or a bare state_dict's weights into ``model``: ``(info or None, notes)``."""
    import pickle

    import torch

    from spikeport.checkpoint import read_checkpoint

    try:
        info, sd = read_checkpoint(weights)
    except CheckpointError as e:
        if "pickled Python objects" in str(e):
            raise _pickled(weights, e) from e
        if "not a spikeport checkpoint (missing format tag" not in str(e):
            raise
        info = None
        try:
            sd = torch.load(weights, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e2:
            raise _pickled(weights, e2) from e2
        if not isinstance(sd, dict):
            raise CheckpointError(f"{weights}: expected a state_dict (dict of tensors)") from None
    own = model.state_dict()
    params = {name for name, _ in model.named_parameters()}
    state = sorted(k for k in sd if k.rsplit(".", 1)[-1] in STATE_BUFFERS and k not in params)
    notes = []
    if state:
        sd = {k: v for k, v in sd.items() if k not in set(state)}
        notes.append(f"{weights}: ignored {len(state)} saved neuron state buffer(s) ({_keys(state)}): they hold the "
                     "last training batch's membrane, not weights; state starts from zero for every batch")
    missing = sorted(k for k in own if k not in sd and not (k.rsplit(".", 1)[-1] in STATE_BUFFERS
                                                             and k not in params))
    unexpected = sorted(k for k in sd if k not in own)
    if missing or unexpected:
        parts = ([f"{len(missing)} missing key(s): {_keys(missing)}"] if missing else []) + \
                ([f"{len(unexpected)} unexpected key(s): {_keys(unexpected)}"] if unexpected else [])
        raise CheckpointError(f"{weights}: weights do not fit the model ({'; '.join(parts)}); build the model with the "
                              "factory it was trained with")
    try:
        model.load_state_dict(sd, strict=False)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()]
        shown = "; ".join(lines[:_SHOWN_KEYS]) + (f" and {len(lines) - _SHOWN_KEYS} more" if len(lines) > _SHOWN_KEYS
                                                 else "")
        raise CheckpointError(f"{weights}: weights do not fit the model ({shown or str(e).splitlines()[0]})") from e
    return info, notes
