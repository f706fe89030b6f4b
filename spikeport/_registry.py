"""A small named registry used for models, losses, datasets and energy profiles.

One :class:`Registry` instance per kind of thing (no module-level dict sprawl).
Duplicate names raise; unknown names list the closest registered matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from spikeport.errors import ConfigError

__all__ = ["Registry"]

F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[F]):
    """Map names to factories.

    Args:
        kind: what is registered ("model", "loss", ...), used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, F] = {}
        self._tags: dict[str, frozenset[str]] = {}

    def register(self, fn: F | None = None, *, name: str | None = None, tags: tuple[str, ...] = ()) -> Any:
        """Register ``fn`` under ``name`` (default: its ``__name__``); usable as a decorator."""

        def deco(f: F) -> F:
            key = name or f.__name__
            if key in self._entries:
                raise ConfigError(f"{self.kind} '{key}' is already registered; pick another name")
            self._entries[key] = f
            self._tags[key] = frozenset(tags)
            return f

        return deco(fn) if fn is not None else deco

    def get(self, name: str) -> F:
        """Return the factory for ``name``.

        Raises:
            ConfigError: unknown name, with close matches and how to list all.
        """
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} '{name}'{hint} (known: {', '.join(sorted(self._entries)) or 'none'})"
            ) from None

    def names(self, tag: str | None = None) -> list[str]:
        """Sorted registered names, optionally only those carrying ``tag``."""
        return sorted(k for k in self._entries if tag is None or tag in self._tags[k])

    def tags(self, name: str) -> frozenset[str]:
        return self._tags[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
