"""Up-front memory estimates: refuse a T x batch that cannot fit before allocating it.

A multi-step model keeps every layer's output ``[T, B, ...]`` for the whole
sequence (and training keeps more for BPTT), so memory grows linearly in
``T x B``. :func:`check_memory` measures one sample's activation elements with a
single ``T=1, B=1`` forward (no gradients, eval mode, global RNG untouched),
scales it by ``T x B x 4 bytes x`` a per-mode factor (:data:`MODE_FACTORS`) and
compares the result with the memory this process can still get
(:func:`available_memory`). Too much raises a one-line :class:`ConfigError`
that says how much is needed and how to lower it.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch
from torch import nn

from spikeport.errors import ConfigError

__all__ = ["MODE_FACTORS", "available_memory", "activation_elements", "estimate_bytes", "check_memory",
           "check_train_memory", "check_data_memory"]

MODE_FACTORS = {"eval": 1.0, "energy": 2.0, "train": 4.0}
"""Bytes kept per activation element, in float32 copies of every layer output (input included).

Measured on ``spiking_mlp_digits`` (CPU, peak RSS growth over T and width):
``eval`` ~1.1 (outputs are freed layer by layer, the encoded input stays);
``energy`` ~1.8 (plus the recording hooks' per-step counts and masks);
``train`` ~3.7 (BPTT keeps each layer's input, the neurons' charge/membrane
states and surrogate arguments, then allocates gradients of the same size).
"""

BYTES_PER_ELEMENT = 4  # float32
GIB = float(2**30)


def _proc_kib(path: str, key: str) -> int | None:
    """A ``key: N kB`` line of a /proc file, in KiB (None when absent)."""
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _ram_available() -> int | None:
    """Bytes of RAM the system can still give (psutil, /proc/meminfo MemAvailable or sysconf)."""
    with contextlib.suppress(Exception):  # psutil is optional
        import psutil

        return int(psutil.virtual_memory().available)
    kib = _proc_kib("/proc/meminfo", "MemAvailable")
    if kib is not None:
        return kib * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    return None


def _address_space_left() -> int | None:
    """Bytes left under this process's RLIMIT_AS (``ulimit -v``), or None when unlimited/unknown."""
    with contextlib.suppress(ImportError, ValueError, OSError, AttributeError):
        import resource  # POSIX only

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        used = _proc_kib("/proc/self/status", "VmSize")
        return max(0, soft - (used or 0) * 1024)
    return None


def available_memory(device: str | torch.device = "cpu") -> tuple[int, str] | None:
    """Bytes this process can still allocate on ``device`` and where that figure comes from.

    On CPU: the smaller of the system's available RAM and what is left under the
    address-space limit (``ulimit -v``). On CUDA: the device's free memory.
    None when nothing can be measured.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        with contextlib.suppress(RuntimeError, AssertionError):
            free, _ = torch.cuda.mem_get_info(dev)
            return int(free), f"free on {dev}"
        return None
    ram, cap = _ram_available(), _address_space_left()
    if cap is not None and (ram is None or cap < ram):
        return cap, "left under this process's memory limit (ulimit -v)"
    if ram is not None:
        return ram, "of available RAM"
    return None


def _numel(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel()
    if isinstance(obj, (tuple, list)):
        return sum(_numel(o) for o in obj)
    if isinstance(obj, dict):
        return sum(_numel(o) for o in obj.values())
    return 0


def activation_elements(model: nn.Module, sample_shape: tuple[int, ...], device: str | torch.device = "cpu") -> int:
    """Elements one sample produces per timestep: its input plus every leaf module's output.

    Runs ``model`` once on zeros ``[t, 1, *sample_shape]`` in eval mode without
    gradients (``t = 1``, or the model's own ``timesteps`` for models built for one
    T) and divides by ``t``; the model's train/eval flags and the global RNG state
    are restored.
    A model that fails on this probe is charged its input twice (the real run
    reports its error).
    """
    dev = torch.device(device)
    shape = tuple(int(s) for s in sample_shape)
    n_in = 1
    for s in shape:
        n_in *= s
    t_fixed = getattr(model, "timesteps", None)
    t_probe = t_fixed if isinstance(t_fixed, int) and not isinstance(t_fixed, bool) and 0 < t_fixed <= 64 else 1
    total = [n_in * t_probe]

    def hook(_m: nn.Module, _inp: Any, out: Any) -> None:
        total[0] += _numel(out)

    leaves = [m for m in model.modules() if not any(True for _ in m.children())] or [model]
    handles = [m.register_forward_hook(hook) for m in leaves]
    modes = {m: m.training for m in model.modules()}
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            param = next(model.parameters(), None)
            x = torch.zeros((t_probe, 1, *shape), device=param.device if param is not None else dev)
            model(x)
    except Exception:  # noqa: BLE001 - the probe is advisory; the real run reports model errors
        total[0] = 2 * n_in * t_probe
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    return -(-int(total[0]) // t_probe)


def estimate_bytes(elements_per_step: int, timesteps: int, batch: int, mode: str = "eval") -> int:
    """Bytes a run needs: ``T x batch x elements x 4 x MODE_FACTORS[mode]``."""
    return int(timesteps * batch * elements_per_step * BYTES_PER_ELEMENT * MODE_FACTORS[mode])


_DOING = {"eval": "evaluating", "energy": "recording", "train": "training (BPTT)"}


def check_memory(model: nn.Module, sample_shape: tuple[int, ...], *, timesteps: int, batch: int, mode: str = "eval",
                 what: str = "the model", device: str | torch.device = "cpu") -> int:
    """Refuse a run whose estimated memory exceeds what is available; return the estimate (bytes).

    Args:
        model: the multi-step model to run.
        sample_shape: one sample without T and B, e.g. ``(1, 8, 8)``.
        timesteps: T of the run.
        batch: samples per forward call.
        mode: ``eval``, ``energy`` or ``train`` (see :data:`MODE_FACTORS`).
        what: names the model in the message.
        device: where the run allocates.

    Raises:
        ConfigError: ``T=... needs about X GiB for ..., more than the Y GiB available; lower
            --timesteps or --batch-size``.
    """
    avail = available_memory(device)
    if avail is None:
        return 0
    left, where = avail
    need = estimate_bytes(activation_elements(model, sample_shape, device), timesteps, batch, mode)
    if need > left:
        raise ConfigError(f"T={timesteps} needs about {need / GIB:.1f} GiB for {_DOING[mode]} {what} with batch "
                          f"{batch}, more than the {left / GIB:.1f} GiB {where}; lower --timesteps or --batch-size")
    return need


def check_train_memory(model_name: str, model_kwargs: dict[str, Any] | None, *, timesteps: int, batch_size: int,
                       ann: bool = False, device: str = "cpu") -> int:
    """:func:`check_memory` for ``spikeport train``, before the dataset and model are built.

    Builds the zoo model once on the CPU (RNG state restored) to measure its
    activations at its default input shape. Options the model refuses are left
    to the real run to report.

    Raises:
        ConfigError: the run would not fit (see :func:`check_memory`).
    """
    from spikeport.models import create_model

    kwargs = dict(model_kwargs or {})
    if ann:
        kwargs["neuron"] = "relu"
    t = 1 if ann else timesteps
    if isinstance(t, bool) or not isinstance(t, int) or t <= 0 or isinstance(batch_size, bool) \
            or not isinstance(batch_size, int) or batch_size <= 0:
        return 0  # the real run reports bad values
    try:
        with torch.random.fork_rng(devices=[]):
            model = create_model(model_name, **kwargs)
    except Exception:  # noqa: BLE001 - bad names/options are reported by the real run
        return 0
    shape = kwargs.get("input_shape") or getattr(model, "default_input_shape", None)
    if not shape:
        return 0
    dev = device if str(device).startswith("cuda") and torch.cuda.is_available() else "cpu"
    return check_memory(model, tuple(shape), timesteps=t, batch=batch_size, mode="train", what=model_name,
                        device=dev)


def check_data_memory(model: nn.Module, data: Any, *, timesteps: int, batch_size: int, temporal: bool = False,
                      samples: int | None = None, input_shape: tuple[int, ...] | None = None, mode: str = "eval",
                      what: str = "the model", device: str | torch.device = "cpu") -> int:
    """:func:`check_memory` for a run over ``data`` (a :class:`~spikeport.data.DatasetSplit` or an array ``[N, ...]``).

    The batch is ``min(batch_size, samples, N)``; temporal data (samples ``[T, ...]``)
    use their own T instead of ``timesteps``.

    Raises:
        ConfigError: the run would not fit (see :func:`check_memory`).
    """
    ds = getattr(data, "dataset", data)
    try:
        n = len(ds)
    except TypeError:
        return 0
    if n == 0:
        return 0
    batch = min(batch_size, n, samples if samples is not None else n)
    if temporal:
        first = ds[0]
        x = first[0] if isinstance(first, (tuple, list)) else first
        shape = tuple(int(s) for s in getattr(x, "shape", ()))
        if len(shape) < 2:
            return 0
        timesteps, sample_shape = shape[0], shape[1:]
    else:
        if input_shape is None:
            input_shape = tuple(getattr(data, "input_shape", ()) or ())
        if not input_shape:
            return 0
        sample_shape = tuple(input_shape)
    return check_memory(model, sample_shape, timesteps=timesteps, batch=batch, mode=mode, what=what, device=device)
