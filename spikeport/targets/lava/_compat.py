"""Make lava-nc 0.10.0 / lava-dl 0.6.0 importable and runnable on Python 3.11 + numpy 2.4.

lava-nc 0.10.0 declares ``python<3.11`` and ``numpy<2``. Three things actually break,
and one breaks when Lava is imported late in a process:

1. ``lava/magma/compiler/var_model.py`` (import time): dataclasses such as
   ``CoreEncoder`` use a ``ByteEncoder()`` *instance* as a field default. Python
   3.11 treats any unhashable default as mutable and raises ``ValueError:
   mutable default <class '...ByteEncoder'> for field x is not allowed: use
   default_factory``. Declaring ``ByteEncoder`` ``@dataclass(frozen=True)``
   makes it hashable; nothing in Lava mutates it.
2. ``lava/magma/core/process/ports/ports.py`` (run time): ``ReshapePort`` builds
   ``functools.partial(np.reshape, newshape=...)``; numpy removed the
   ``newshape`` keyword (deprecated in 2.1), so every netx conv -> flatten ->
   dense connection fails inside Lava's Dense process with ``TypeError:
   reshape() got an unexpected keyword argument 'newshape'``. It is rewritten
   to the ``shape=`` keyword, only when the installed numpy lacks ``newshape``.

3. ``lava/proc/conv/models.py`` (run time): the Conv model keeps ``groups``, the kernel size, stride,
   padding and dilation in int8 arrays and passes them to ``conv_scipy``, which computes
   ``output.shape[-1] % groups``; under numpy 2's promotion rules (NEP 50) a Python int combined with an
   int8 scalar stays int8, so any convolution with 128 or more output channels raises ``OverflowError:
   Python integer 128 out of bounds for int8``. The call is rewritten to pass Python ints, only on numpy 2.
   (Lava's own ``groups`` variable is int8, so a convolution still needs ``groups <= 127``.)

4. ``lava/magma/runtime/message_infrastructure/multiprocessing.py`` (import time)
   calls ``mp.set_start_method('fork')``, which raises ``RuntimeError: context has
   already been set`` when anything earlier in the process fixed the start method
   (e.g. after training and energy analysis in ``spikeport demo``). It is rewritten
   to set ``fork`` only when it is not already the start method.

:func:`enable_lava` installs a meta-path finder that intercepts exactly these
four modules and compiles their source with those literal replacements. Nothing
in site-packages is edited and no bytecode is written for the patched modules.
Nothing in spikeport imports Lava until a Lava target function calls
:func:`enable_lava`.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import inspect
import io
import logging
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from spikeport.errors import ExportError

__all__ = ["LAVA_INSTALL_HINT", "enable_lava", "lava_available"]

_LOG = logging.getLogger(__name__)

LAVA_INSTALL_HINT = "pip install --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0"
_LOCK = threading.Lock()
_NETX: ModuleType | None = None


def _source_patches() -> dict[str, list[tuple[str, str]]]:
    """``{module: [(old, new), ...]}``: the literal source replacements applied at import."""
    import numpy as np

    patches = {"lava.magma.compiler.var_model": [("@dataclass\nclass ByteEncoder:",
                                                  "@dataclass(frozen=True)\nclass ByteEncoder:")],
               # Lava sets the start method at import, which raises "context has already been set" once
               # anything in the process (a DataLoader, joblib, ...) has fixed it; fork is what it needs.
               "lava.magma.runtime.message_infrastructure.multiprocessing": [
                   ("    mp.set_start_method('fork')",
                    "    if mp.get_start_method(allow_none=True) != 'fork':\n"
                    "        mp.set_start_method('fork', force=True)")]}
    if "newshape" not in inspect.signature(np.reshape).parameters:
        patches["lava.magma.core.process.ports.ports"] = [("ft.partial(np.reshape, newshape=",
                                                           "ft.partial(np.reshape, shape=")]
    if int(np.__version__.split(".")[0]) >= 2:
        patches["lava.proc.conv.models"] = [(
            "            self.kernel_size, self.stride, self.padding, self.dilation,\n            self.groups[0]\n",
            "            self.kernel_size.astype(int), self.stride.astype(int), self.padding.astype(int),\n"
            "            self.dilation.astype(int), int(self.groups[0])\n")]
    return patches


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Source loader that applies literal replacements before compiling (never caches bytecode)."""

    def __init__(self, fullname: str, path: str, replacements: list[tuple[str, str]]) -> None:
        super().__init__(fullname, path)
        self.replacements = replacements

    def get_code(self, fullname: str) -> Any:
        source = self.get_data(self.path).decode("utf-8")
        for old, new in self.replacements:
            if old in source:
                source = source.replace(old, new)
            else:  # a future Lava may already be fixed; compile it unchanged
                _LOG.debug("%s: pattern %r not found, left unchanged", self.path, old)
        return compile(source, self.path, "exec", dont_inherit=True)


class _LavaPatchFinder(importlib.abc.MetaPathFinder):
    """Meta-path finder that only answers for the modules in :func:`_source_patches`."""

    def __init__(self, patches: dict[str, list[tuple[str, str]]]) -> None:
        self.patches = patches

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None):
        if fullname not in self.patches:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            return spec
        spec.loader = _PatchedSourceLoader(fullname, spec.origin, self.patches[fullname])
        return spec


def _install_finder() -> None:
    if not any(isinstance(f, _LavaPatchFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LavaPatchFinder(_source_patches()))


def lava_available() -> bool:
    """True if lava-nc and lava-dl are installed (checked on disk; nothing is imported)."""
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("lava")
    except (ImportError, ValueError):
        return False
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec is not None else []
    has_magma = any((r / "magma" / "core").is_dir() for r in roots)
    has_netx = any((r / "lib" / "dl" / "netx" / "hdf5.py").is_file() for r in roots)
    return has_magma and has_netx


def _check_reshape_port() -> None:
    """Fail early if Lava's ReshapePort was imported unpatched (Lava imported before the hook)."""
    import numpy as np
    from lava.magma.core.process.ports.ports import ReshapePort

    try:
        ReshapePort((2,), (1, 2)).get_transform_func_fwd()(np.zeros((1, 2)))
    except TypeError as e:
        raise ExportError("Lava was imported before spikeport could apply its numpy compatibility patch; call "
                          "spikeport.targets.lava.enable_lava() before importing lava (restart the interpreter)"
                          ) from e


def enable_lava() -> ModuleType:
    """Install the Python 3.11 compatibility hook and import ``lava.lib.dl.netx``.

    Idempotent and thread-safe. Anything lava-dl prints while importing (e.g. a
    notice about an optional dataset toolbox) is captured and logged at DEBUG.

    Returns:
        The imported ``lava.lib.dl.netx`` module.

    Raises:
        ExportError: if lava-nc / lava-dl are not installed or fail to import.
    """
    global _NETX
    with _LOCK:
        if _NETX is not None:
            return _NETX
        if not lava_available():
            raise ExportError(f"the Lava target needs lava-nc 0.10.0 and lava-dl 0.6.0; install them with "
                              f"`{LAVA_INSTALL_HINT}`")
        _install_finder()
        captured = io.StringIO()
        # lava-dl's slayer builds CUDA extensions lazily; on a CPU-only torch, importing it makes
        # torch.utils.cpp_extension warn "No CUDA runtime is found" on stderr: not our user's concern.
        ext_log = logging.getLogger("torch.utils.cpp_extension")
        old_level = ext_log.level
        ext_log.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(captured):
                import lava.lib.dl.netx as netx
        except Exception as e:  # any import failure is reported the same way
            raise ExportError(f"lava-dl failed to import ({type(e).__name__}: {e}); reinstall it with "
                              f"`{LAVA_INSTALL_HINT}`") from e
        finally:
            ext_log.setLevel(old_level)
        if captured.getvalue().strip():
            _LOG.debug("lava import output: %s", captured.getvalue().strip())
        _check_reshape_port()
        _NETX = netx
        return netx
