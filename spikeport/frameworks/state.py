"""Where each framework keeps neuron state, how to reset it, and how each neuron module is called.

Nothing here imports a framework: classes are recognised by the qualified names in their MRO.

=============  ==============================================  ==========================================
framework      state                                           reset (what :func:`reset_state` does)
=============  ==============================================  ==========================================
SpikingJelly   ``MemoryModule._memories`` (``v``), persists    ``module.reset()`` (``functional.reset_net``)
snnTorch       non-persistent buffers ``mem``/``syn``          ``reset_mem()`` (``snntorch.utils.reset``)
Norse          nowhere (returned tuples)                       nothing: each sequence starts from ``state=None``
sinabs         persistent buffers ``v_mem``/``i_syn``          emptied (a batch-size change would otherwise
                                                               resample old rows at random)
lava-dl        ``current_state``/``voltage_state`` buffers and  zeroed, ``delay_buffer`` dropped (only used with
               the blocks' ``delay_buffer``                     ``persistent_state=True``)
=============  ==============================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["FRAMEWORKS", "framework_of", "frameworks_in", "reset_state", "neuron_layout", "neuron_modules",
           "mro_names"]

FRAMEWORKS = {"spikingjelly": "spikingjelly.", "snntorch": "snntorch.", "norse": "norse.", "sinabs": "sinabs.",
              "lava-dl": "lava.lib.dl."}

_SJ_MEMORY = "spikingjelly.activation_based.base.MemoryModule"
_SJ_NODE = "spikingjelly.activation_based.neuron.base_node.BaseNode"
_SNN_NEURON = "snntorch._neurons.neurons.SpikingNeuron"
_NORSE_CELLS = ("norse.torch.module.snn.SNNCell", "norse.torch.module.lif_box.LIFBoxCell")
_NORSE_SEQ = "norse.torch.module.snn.SNN"
_SINABS = "sinabs.layers.stateful_layer.StatefulLayer"
_SINABS_SQUEEZE = "sinabs.layers.reshape.SqueezeMixin"
_SLAYER_NEURON = "lava.lib.dl.slayer.neuron.base.Neuron"


def mro_names(m: Any) -> set[str]:
    """Qualified names of every class in ``type(m).__mro__``."""
    return {f"{k.__module__}.{k.__qualname__}" for k in type(m).__mro__}


def framework_of(m: Any) -> str | None:
    """The framework defining ``m``'s class (``None`` for torch / spikeport / user classes)."""
    mod = type(m).__module__
    return next((name for name, prefix in FRAMEWORKS.items() if mod.startswith(prefix)), None)


def frameworks_in(model: nn.Module) -> list[str]:
    """The frameworks whose modules ``model`` contains, sorted."""
    return sorted({f for m in model.modules() if (f := framework_of(m)) is not None})


def neuron_layout(m: Any) -> str | None:
    """How a framework neuron module is called (a time layout), or ``None`` for any other module.

    ``step``: once per step with ``[B, ...]``; ``tb`` ``[T, B, ...]``; ``bt`` ``[B, T, ...]``;
    ``bt-flat`` ``[B*T, ...]``; ``time-last`` ``[B, ..., T]``.
    """
    names = mro_names(m)
    if _SJ_NODE in names:
        return "tb" if getattr(m, "step_mode", "s") == "m" else "step"
    if _SNN_NEURON in names or names & set(_NORSE_CELLS):
        return "step"
    if _NORSE_SEQ in names:
        return "tb"
    if _SINABS in names:
        return "bt-flat" if _SINABS_SQUEEZE in names else "bt"
    if _SLAYER_NEURON in names:
        return "time-last"
    return None


def neuron_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module, str]]:
    """``(name, module, layout)`` of every framework neuron module in ``model`` (definition order)."""
    for name, m in model.named_modules():
        layout = neuron_layout(m)
        if layout is not None:
            yield name, m, layout


def reset_state(model: nn.Module) -> None:
    """Reset every framework neuron state in ``model`` to its initial value (see the module docstring)."""
    for module in model.modules():
        m: Any = module  # a neuron of another framework, recognised by its class names (its type is not imported)
        names = mro_names(m)
        if _SJ_MEMORY in names:
            m.reset()
        elif _SNN_NEURON in names:
            for buf in ("mem", "syn"):
                v = getattr(m, buf, None)
                if isinstance(v, torch.Tensor):
                    setattr(m, buf, torch.zeros(0, dtype=v.dtype, device=v.device))
        elif _SINABS in names:
            for buf in ("v_mem", "i_syn"):  # exact names: "min_v_mem" is a parameter
                v = m._buffers.get(buf)
                if isinstance(v, torch.Tensor):
                    m.register_buffer(buf, torch.zeros(0, dtype=v.dtype, device=v.device))
        elif _SLAYER_NEURON in names:
            for buf in ("current_state", "voltage_state"):
                v = getattr(m, buf, None)
                if isinstance(v, torch.Tensor):
                    setattr(m, buf, torch.zeros(1, dtype=v.dtype, device=v.device))
        if hasattr(m, "delay_buffer") and framework_of(m) == "lava-dl":
            m.delay_buffer = None
