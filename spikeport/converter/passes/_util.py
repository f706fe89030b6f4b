"""Helpers shared by the passes."""

from __future__ import annotations

from spikeport.converter.graph import SpikeGraph

__all__ = ["sole_user", "bypass"]


def sole_user(g: SpikeGraph, name: str) -> str | None:
    """The only consumer of ``name`` over a single feed-forward edge, else ``None``."""
    users = g.users(name)
    if len(users) != 1 or users[0].recurrent:
        return None
    return users[0].dst


def bypass(g: SpikeGraph, name: str) -> None:
    """Remove single-input node ``name``, rewiring its consumers to its input (in place on ``g``)."""
    (src,) = g.inputs_of(name)
    g.rewire(name, src)
    g.remove(name)
