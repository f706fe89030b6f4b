"""Run an HDF5 reader on an untrusted file in a forked child first, so that a libhdf5 crash cannot kill us.

libhdf5 can crash the whole process (SIGSEGV) on a corrupt file instead of
raising: e.g. two bytes changed in the heap of a variable-length string
attribute make ``h5py``'s ``attrs.get()`` segfault (libhdf5 2.0, h5py 3.16).
:func:`check_hdf5_readable` forks and runs the caller's own read function
(``probe``) in the child, so that the child touches exactly what the real read
will touch; a child killed by a signal (or hanging) becomes a one-line
:class:`~spikeport.errors.DataError`. Python exceptions in the child are
ignored: the real read in the caller meets them again and reports them itself.

``fork`` costs ~30 ms even with torch loaded (copy-on-write), against ~0.3 s for
spawning an interpreter; the probe then costs one more read of the file. Where
``os.fork`` does not exist the check is skipped.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import select
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from spikeport.errors import DataError, SpikeportError

__all__ = ["check_hdf5_readable", "read_hdf5_guarded"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


def check_hdf5_readable(path: str | os.PathLike, what: str, probe: Callable[[Path], Any], *,
                        timeout: float = 60.0, error: type[SpikeportError] = DataError) -> None:
    """Raise ``error`` if ``probe(path)`` kills or hangs the process; run it in a forked child.

    Args:
        path: the HDF5 file (``.net``, ``.nir``) about to be read.
        what: the file kind for the message, e.g. ``"netx"``.
        probe: the caller's HDF5-reading function (without this guard, or it would fork again);
            its result and exceptions are discarded.
        timeout: seconds the probe may take before the file is refused.
        error: the :class:`SpikeportError` subclass to raise (the caller's contract).

    Raises:
        error: the probe died with a signal or ran past ``timeout``.
    """
    p = Path(path)
    if not hasattr(os, "fork"):  # pragma: no cover - Windows
        return
    done_r, done_w = os.pipe()  # the child holds the write end: EOF on the read end = the child has ended
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's stack, never flush the caller's buffers
        try:
            os.close(done_r)
            faulthandler.disable()  # a crash is the expected outcome here; no traceback on stderr
            probe(p)
        except BaseException:  # noqa: BLE001 - only signals matter; the real read reports exceptions
            pass
        finally:
            os._exit(0)
    os.close(done_w)
    try:
        ended, _, _ = select.select([done_r], [], [], timeout)
    finally:
        os.close(done_r)
    if not ended:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise error(f"{p}: reading this {what} file did not finish in {timeout:g} s (corrupt HDF5 structure?); "
                    "re-export it")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        logger.debug("%s: HDF5 read probe killed by %s", p, name)
        raise error(f"{p}: corrupt {what} file: libhdf5 crashed reading it ({name}); re-export it")


def read_hdf5_guarded(path: str | os.PathLike, what: str, read: Callable[[Path], T], *,
                      error: type[SpikeportError] = DataError) -> T:
    """``read(path)`` for an existing file whose HDF5 reading survives :func:`check_hdf5_readable`.

    Raises:
        error: no such file, or reading it kills or hangs the probe; ``read``'s own errors otherwise.
    """
    p = Path(path)
    if not p.is_file():
        raise error(f"{p}: no such {what} file")
    check_hdf5_readable(p, what, read, error=error)
    return read(p)
