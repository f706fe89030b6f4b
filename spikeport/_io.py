"""Atomic file output.

Every file spikeport writes goes through :func:`atomic_path` or
:func:`atomic_write_bytes`/:func:`atomic_write_text`: the content is written to a
temporary file in the destination directory and renamed over the target only
once complete, so a crash or an exception never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from spikeport.errors import ConfigError

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "ensure_writable_dir", "check_overwrite"]


def ensure_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and parents) if needed and check it is a writable directory.

    Raises:
        ConfigError: if the directory cannot be created or written.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{p}: exists and is not a directory; choose another output path")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{p}: cannot create output directory ({e.strerror}); choose a writable path") from e
    if not p.is_dir():
        raise ConfigError(f"{p}: exists and is not a directory; choose another output path")
    if not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(f"{p}: output directory is not writable; choose a writable path")
    return p


def check_overwrite(path: str | os.PathLike, force: bool) -> None:
    """Refuse to overwrite an existing output unless ``force`` is set."""
    p = Path(path)
    if p.exists() and not force:
        raise ConfigError(f"{p}: already exists; pass --force to overwrite it")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    The temporary keeps ``path``'s suffix (or ``suffix``) so writers that look at
    the extension (e.g. ``torch.onnx.export``) behave.
    """
    dest = Path(path)
    if dest.is_dir():
        raise ConfigError(f"{dest}: is a directory; give the path of a file to write")
    parent = ensure_writable_dir(dest.parent if str(dest.parent) else ".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=parent,
                                   suffix=suffix if suffix is not None else dest.suffix + ".tmp")
    except OSError as e:  # name the destination, not the temporary
        raise ConfigError(f"{dest}: cannot create a file in {parent} ({e.strerror}); choose a writable path") from e
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not tmp_path.exists() or tmp_path.stat().st_size == 0:
            raise OSError(f"{dest}: writer produced no data")
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))
