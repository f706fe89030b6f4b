"""Shared helpers for the benchmark scripts: timing, machine info, side-by-side tables.

Scripts in ``benchmarks/`` import this as ``from _common import ...`` (run them as
``python benchmarks/<name>.py``). Benchmarks are not tests: they print, they are
never collected by pytest, and their numbers depend on the machine and its load,
so every table is printed with the machine it was measured on.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["Timing", "time_it", "machine_info", "format_info", "Column", "format_table", "ratio_str",
           "add_common_args"]


@dataclass(frozen=True)
class Timing:
    """Wall-clock timing of one callable, in milliseconds."""

    median_ms: float
    min_ms: float
    max_ms: float
    repeat: int

    @property
    def spread(self) -> float:
        """``max / min``: how noisy the runs were (1.0 = identical)."""
        return self.max_ms / self.min_ms if self.min_ms > 0 else float("inf")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_it(fn: Callable[[], object], *, warmup: int = 3, repeat: int = 20, device: str = "cpu",
            setup: Callable[[], object] | None = None, clock: str = "wall") -> Timing:
    """Median / min of ``repeat`` timed calls after ``warmup`` untimed ones.

    Args:
        fn: the work to time (its result is dropped).
        warmup: untimed calls first (caches, allocator, kernel compilation).
        repeat: timed calls.
        device: ``cuda...`` synchronizes before and after each call.
        setup: untimed work before every call (e.g. clearing ``.grad``).
        clock: ``wall`` (``perf_counter``) or ``cpu`` (``process_time``: CPU seconds of this
            process, summed over its threads; steadier on a shared machine with one thread).
    """
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock must be 'wall' or 'cpu', got {clock!r}")
    now = time.perf_counter if clock == "wall" else time.process_time
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        _sync(device)
        t0 = now()
        fn()
        _sync(device)
        times.append((now() - t0) * 1e3)
    return Timing(statistics.median(times), min(times), max(times), repeat)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(device: str = "cpu") -> dict[str, str]:
    """Versions and hardware the numbers were measured on."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": f"{_cpu_model()} ({os.cpu_count()} logical cores, torch threads={torch.get_num_threads()})",
        "cpu capability": str(torch.backends.cpu.get_cpu_capability()),
    }
    with contextlib.suppress(OSError):  # not available on every platform
        info["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = str(torch.version.cuda)
    return info


def format_info(info: dict[str, str]) -> str:
    """``key: value`` lines."""
    width = max(len(k) for k in info)
    return "\n".join(f"{k:<{width}} : {v}" for k, v in info.items())


@dataclass(frozen=True)
class Column:
    """One table column: dict key, header, format (``{:.2f}``-style); missing values print ``-``."""

    key: str
    header: str
    fmt: str = "{}"


def format_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """Plain-text table, first column left-aligned, the others right-aligned."""
    cells = [[c.header for c in columns]]
    for row in rows:
        cells.append(["-" if row.get(c.key) is None else c.fmt.format(row[c.key]) for c in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]

    def line(r: list[str]) -> str:
        return "  ".join(r[0].ljust(widths[0]) if i == 0 else r[i].rjust(widths[i]) for i in range(len(r)))

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def ratio_str(value_ms: float | None, ref_ms: float | None) -> str | None:
    """``value / ref`` as ``"3.21x"`` (how many times slower than the reference), ``None`` if unknown."""
    if value_ms is None or ref_ms is None or ref_ms <= 0:
        return None
    return f"{value_ms / ref_ms:.2f}x"


def add_common_args(parser) -> None:
    """``--device``, ``--repeat``, ``--warmup``, ``--threads``, ``--clock`` for an ``argparse`` parser."""
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default: cpu)")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per measurement (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or CPU time of this process (steadier on a loaded machine with --threads 1)")
