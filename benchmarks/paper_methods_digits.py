"""Paper methods on sklearn digits: test accuracy of each paper's digits model and each KD loss.

Rows (all on the tiny digits ResNet ``resnet_digits``, direct encoding, T=2 unless
``--timesteps``), each trained with ``--seeds`` seeds:

* ``baseline``: ``resnet_digits`` with LIF neurons, CE.
* one row per seed-module variant found in the zoo (``tssnn_digits``, ``dalif_digits``,
  ``staa_digits``, ``fsta_digits``), CE.
* ``kl``, ``hta_kl``, ``tser``: ``resnet_digits`` students distilled from the ANN twin
  (``neuron='relu'``, T=1) trained with the same seed; the teacher row is reported too.

Writes a Markdown report (mean ± sample std over seeds, every seed's accuracy,
the command, date, machine, run time) atomically to ``--out``. Exit status 1 when
a row's mean is below ``--min-acc``.

    python benchmarks/paper_methods_digits.py            # -> docs/results-digits.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from spikeport._io import atomic_write_text
from spikeport.data import get_dataset
from spikeport.models import create_model, list_models
from spikeport.training import TrainConfig, train

SEED_VARIANTS = ("tssnn_digits", "dalif_digits", "staa_digits", "fsta_digits")
KD_LOSSES = ("kl", "hta_kl", "tser")
BACKBONE = "resnet_digits"
BUILT_FOR_T = ("staa_digits", "fsta_digits")  # take timesteps=T at construction
PAPERS = {"tssnn_digits": "TS-SNN (2505.04165)", "dalif_digits": "DA-LIF (2502.10422)",
          "staa_digits": "STAA-SNN (2503.02689)", "fsta_digits": "FSTA-SNN (2501.14744)",
          "kl": "Hinton KD", "hta_kl": "HTA-KL (2504.20445)", "tser": "TSER (2503.03144)"}


@dataclass
class Row:
    name: str
    model: str
    loss: str
    timesteps: int
    accs: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accs)

    @property
    def std(self) -> float:
        return statistics.stdev(self.accs) if len(self.accs) > 1 else 0.0


def wait_for_variants(timeout_s: float, poll_s: float = 10.0) -> list[str]:
    """Paper-method digits variants in the zoo; poll up to ``timeout_s`` for a missing backbones package."""
    import importlib

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            importlib.import_module("spikeport.models.backbones")
        except ModuleNotFoundError as e:
            if e.name != "spikeport.models.backbones":
                raise
        present = [m for m in SEED_VARIANTS if m in list_models("digits")]
        if len(present) == len(SEED_VARIANTS) or time.monotonic() >= deadline:
            missing = sorted(set(SEED_VARIANTS) - set(present))
            if missing:
                print(f"warning: not in the zoo, skipped: {', '.join(missing)}", file=sys.stderr)
            return present
        time.sleep(poll_s)


def build(model: str, timesteps: int, seed: int, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    if model in BUILT_FOR_T:
        kw["timesteps"] = timesteps
    return create_model(model, **kw)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} logical CPUs, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}")


@dataclass
class Timing:
    wall_s: float
    cpu_s: float
    load_start: float
    load_end: float


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # not available on this platform
        return float("nan")


def run(args: argparse.Namespace) -> tuple[list[Row], Row, Timing]:
    tr = get_dataset("digits", train=True)
    te = get_dataset("digits", train=False)
    T = args.timesteps
    cfg = TrainConfig(epochs=args.epochs, timesteps=T, batch_size=args.batch_size, lr=args.lr, progress=False)
    variants = wait_for_variants(args.wait)
    rows = [Row("baseline (LIF)", BACKBONE, "ce", T)]
    rows += [Row(v, v, "ce", T) for v in variants]
    rows += [Row(f"KD {k}", BACKBONE, k, T) for k in KD_LOSSES]
    teacher_row = Row("ANN teacher (ReLU)", BACKBONE, "ce", 1)
    t0, c0, load0 = time.perf_counter(), time.process_time(), _load()
    for seed in range(args.seeds):
        teacher = build(BACKBONE, 1, seed, neuron="relu")
        res = train(teacher, tr, te, replace(cfg, timesteps=1, seed=seed))
        teacher_row.accs.append(res.test_acc)
        teacher_row.seconds.append(res.seconds)
        print(f"seed {seed} teacher: {res.test_acc:.4f} ({res.seconds:.1f}s)", file=sys.stderr)
        for row in rows:
            model = build(row.model, T, seed)
            res = train(model, tr, te, replace(cfg, seed=seed, loss=row.loss),
                        teacher=teacher if row.loss in KD_LOSSES else None)
            row.accs.append(res.test_acc)
            row.seconds.append(res.seconds)
            print(f"seed {seed} {row.name}: {res.test_acc:.4f} ({res.seconds:.1f}s)", file=sys.stderr)
    return rows, teacher_row, Timing(time.perf_counter() - t0, time.process_time() - c0, load0, _load())


def report(rows: list[Row], teacher: Row, timing: Timing, args: argparse.Namespace, command: str) -> str:
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    seeds = ", ".join(f"seed {s}" for s in range(args.seeds))
    lines = [
        "# Paper methods on sklearn digits",
        "",
        f"Test accuracy (450 held-out 8x8 digits) at T={args.timesteps}, {args.seeds} seeds per row, generated by "
        "`benchmarks/paper_methods_digits.py`. Every spiking row uses the tiny digits ResNet "
        f"(`{BACKBONE}`: conv3x3(16) stem, a 16- and a 32-channel basic block, flatten, Linear) with direct "
        "encoding; the seed variants add their paper's module to it, the KD rows distil it from its ANN twin "
        "(ReLU, T=1, trained with the same seed). These are toy-scale checks that each method trains, not "
        "reproductions of the papers' CIFAR/ImageNet numbers.",
        "",
        f"Training: AdamW lr {args.lr}, weight decay 1e-2, cosine schedule, batch {args.batch_size}, "
        f"{args.epochs} epochs; KD losses with their default options (kl: alpha 0.5, tau 4; hta_kl: tau 4, "
        "lambda 1, delta 0.5, per-sample weights; tser: alpha 0.01, gamma 1e-3, tau 5, the reproduction's values).",
        "",
        f"| model | method | T | mean ± std (%) | {' | '.join(f'seed {s}' for s in range(args.seeds))} | "
        "train s/run |",
        "|---|---|---|---|" + "---|" * args.seeds + "---|",
    ]
    for row in [*rows, teacher]:
        method = PAPERS.get(row.model if row.loss == "ce" else row.loss, "baseline" if row.loss == "ce" else row.loss)
        if row is teacher:
            method = "distillation teacher"
        elif row.model == BACKBONE and row.loss == "ce":
            method = "LIF, CE"
        per_seed = " | ".join(f"{100 * a:.2f}" for a in row.accs)
        lines.append(f"| `{row.model}` {'' if row.loss == 'ce' else f'+ `{row.loss}`'} | {method} | {row.timesteps} | "
                     f"{100 * row.mean:.2f} ± {100 * row.std:.2f} | {per_seed} | "
                     f"{statistics.fmean(row.seconds):.1f} |")
    below = [r.name for r in rows if r.mean < args.min_acc]
    lines += [
        "",
        f"std is the sample standard deviation over {seeds}. Target: every spiking row's mean >= "
        f"{100 * args.min_acc:.0f}%: " + ("met." if not below else f"NOT met by {', '.join(below)}."),
        "",
        f"- Command: `{command}`",
        f"- Date: {now}",
        f"- Machine: {machine()}",
        f"- Total run time: {timing.wall_s:.0f} s wall ({timing.wall_s / 60:.1f} min), {timing.cpu_s:.0f} s CPU, for "
        f"{len(rows) * args.seeds + args.seeds} training runs; 1-min load average {timing.load_start:.1f} at the "
        f"start, {timing.load_end:.1f} at the end (a load above the CPU count means other processes shared the "
        "CPUs and the times are inflated).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--timesteps", "-T", type=int, default=2)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--min-acc", type=float, default=0.93)
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for missing seed variants")
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "results-digits.md"))
    args = p.parse_args(argv)
    command = "python benchmarks/paper_methods_digits.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rows, teacher, timing = run(args)
    text = report(rows, teacher, timing, args, command.strip())
    atomic_write_text(args.out, text)
    print(text)
    return 1 if any(r.mean < args.min_acc for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
