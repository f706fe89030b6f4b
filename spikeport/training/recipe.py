"""Training recipes: TOML files for ``spikeport train --config FILE.toml``.

A recipe has a ``[train]`` table whose keys mirror the ``spikeport train``
options, an optional ``[paper]`` table (free-form provenance: title, arXiv id,
reported numbers; never read by the trainer), and nothing else::

    [paper]
    name = "FSTA-SNN"
    arxiv = "2501.14744"

    [train]
    model = "fsta_resnet20"
    dataset = "cifar10"
    timesteps = 2
    epochs = 600
    optimizer = "sgd"
    lr = 0.1

    [train.model_options]     # --model-arg KEY=VALUE
    [train.loss_options]      # --loss-arg KEY=VALUE

Options given on the command line override the recipe's. Relative paths
(``teacher``, ``data_dir``) are taken relative to the working directory.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeport.errors import ConfigError

__all__ = ["Recipe", "RECIPE_KEYS", "load_recipe"]

# key -> accepted Python types (TOML integers are accepted where floats are)
RECIPE_KEYS: dict[str, tuple[type, ...]] = {
    "model": (str,), "dataset": (str,), "data_dir": (str,), "timesteps": (int,), "epochs": (int,),
    "batch_size": (int,), "lr": (float, int), "weight_decay": (float, int), "optimizer": (str,),
    "momentum": (float, int), "encoder": (str,), "loss": (str,), "kd": (str,), "teacher": (str,), "ann": (bool,),
    "seed": (int,), "amp": (bool,), "device": (str,), "model_options": (dict,), "loss_options": (dict,),
}
_SECTIONS = ("train", "paper")
# keys whose values TrainConfig range-checks (one set of rules for recipes and flags)
_CONFIG_KEYS = ("timesteps", "epochs", "batch_size", "lr", "weight_decay", "optimizer", "momentum", "encoder", "seed")


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe: ``train`` options (validated types) and ``paper`` provenance."""

    path: str
    train: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, Any] = field(default_factory=dict)


def _close(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file.

    Raises:
        ConfigError: missing file, malformed TOML (message names the file, line and
            column), unknown section or key, a value of the wrong type, or out of
            range (e.g. ``timesteps = -3``; the message names the file).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror})") from e
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: config is not UTF-8 text ({e.reason} at byte {e.start})") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: malformed TOML: {e}") from e
    for key in doc:
        if key not in _SECTIONS:
            raise ConfigError(f"{p}: unknown section [{key}]{_close(key, _SECTIONS)} (a recipe has [train] and "
                              "optionally [paper])")
    train = doc.get("train")
    if not isinstance(train, dict):
        raise ConfigError(f"{p}: missing [train] table")
    for key, value in train.items():
        if key not in RECIPE_KEYS:
            raise ConfigError(f"{p}: unknown key '{key}' in [train]{_close(key, RECIPE_KEYS)}")
        types = RECIPE_KEYS[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            want = " or ".join(t.__name__ if t is not dict else "table" for t in types)
            raise ConfigError(f"{p}: [train] {key} = {value!r} must be {want}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{p}: [train] {key} = {value!r} must be finite")
    paper = doc.get("paper", {})
    if not isinstance(paper, dict):
        raise ConfigError(f"{p}: 'paper' must be a table ([paper])")
    out = dict(train)
    for key in ("lr", "weight_decay", "momentum"):
        if key in out:
            out[key] = float(out[key])
    _check_values(p, out)
    return Recipe(path=str(p), train=out, paper=dict(paper))


def _check_values(p: Path, train: dict[str, Any]) -> None:
    """Range-check the recipe's training options with :class:`TrainConfig`'s rules, naming the file."""
    from spikeport.training.trainer import TrainConfig

    given = {k: train[k] for k in _CONFIG_KEYS if k in train}
    if not given:
        return
    try:
        TrainConfig(**given)
    except ConfigError as e:
        raise ConfigError(f"{p}: [train] {e}") from e
