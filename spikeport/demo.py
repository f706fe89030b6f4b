"""The end-to-end demo on the embedded digits data (what ``make demo`` runs).

Steps (each writes into ``out``):

1. train the spiking CNN (``spiking_cnn_digits``, LIF, T=4) -> ``snn.pt``;
2. train the ANN of the same shape (ReLU, T=1) as reference -> ``ann.pt``;
3. further steps (energy report, exports + verification) are appended in
   :data:`DEMO_STEPS` by the packages that provide them;
4. ``summary.json`` / ``summary.md`` with every figure.

Library code does not print: progress goes through the ``echo`` callback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeport._io import atomic_write_text, check_overwrite, ensure_writable_dir
from spikeport.training import TrainConfig
from spikeport.training.session import TrainedModel, fit_zoo_model

__all__ = ["DemoContext", "DEMO_STEPS", "run_demo"]

DEMO_MODEL = "spiking_cnn_digits"


@dataclass
class DemoContext:
    """State shared by the demo steps."""

    out: Path
    timesteps: int
    epochs: int
    device: str
    progress: bool
    echo: Callable[[str], None]
    snn: TrainedModel | None = None
    ann: TrainedModel | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    markdown: list[str] = field(default_factory=list)


def _train(ctx: DemoContext) -> None:
    cfg = TrainConfig(epochs=ctx.epochs, timesteps=ctx.timesteps, device=ctx.device, progress=ctx.progress, seed=0)
    ctx.echo(f"[demo] training {DEMO_MODEL} (LIF, T={ctx.timesteps}, {ctx.epochs} epochs) on digits")
    ctx.snn = fit_zoo_model(DEMO_MODEL, dataset="digits", cfg=cfg, out=ctx.out / "snn.pt")
    ctx.echo(f"[demo]   SNN test accuracy {ctx.snn.result.test_acc:.4f} ({ctx.snn.result.seconds:.1f} s)")
    ctx.echo("[demo] training the ANN of the same shape (ReLU, T=1) as reference")
    ctx.ann = fit_zoo_model(DEMO_MODEL, dataset="digits", cfg=cfg, ann=True, out=ctx.out / "ann.pt")
    ctx.echo(f"[demo]   ANN test accuracy {ctx.ann.result.test_acc:.4f} ({ctx.ann.result.seconds:.1f} s)")
    ctx.summary["training"] = {
        "model": DEMO_MODEL, "timesteps": ctx.timesteps, "epochs": ctx.epochs,
        "snn_test_acc": ctx.snn.result.test_acc, "ann_test_acc": ctx.ann.result.test_acc,
        "snn_checkpoint": "snn.pt", "ann_checkpoint": "ann.pt",
    }
    ctx.markdown += [
        "## Training (sklearn digits, 1347 train / 450 test)", "",
        "| model | neuron | T | test accuracy |", "|---|---|---|---|",
        f"| {DEMO_MODEL} | LIF | {ctx.timesteps} | {ctx.snn.result.test_acc:.4f} |",
        f"| {DEMO_MODEL} (ANN reference) | ReLU | 1 | {ctx.ann.result.test_acc:.4f} |", "",
    ]


DEMO_STEPS: list[tuple[str, Callable[[DemoContext], None]]] = [("train", _train)]


def _register_optional_steps() -> None:
    """Append the energy / export steps when their packages provide them."""
    from spikeport._imports import optional_import

    names = {n for n, _ in DEMO_STEPS}
    for mod_name, step in (("spikeport.energy.demo_step", "energy"), ("spikeport.targets.demo_step", "export")):
        mod = None if step in names else optional_import(mod_name)
        if mod is not None:
            DEMO_STEPS.append((step, mod.run))


def run_demo(out: str | Path, *, force: bool = False, timesteps: int = 4, epochs: int = 20, device: str = "cpu",
             progress: bool = True, echo: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run every demo step into ``out`` and return the summary dict."""
    out_dir = Path(out)
    if out_dir.exists() and any(out_dir.iterdir()):
        check_overwrite(out_dir, force)
    ensure_writable_dir(out_dir)
    _register_optional_steps()
    ctx = DemoContext(out=out_dir, timesteps=timesteps, epochs=epochs, device=device, progress=progress, echo=echo)
    t0 = time.perf_counter()
    for name, step in DEMO_STEPS:
        s0 = time.perf_counter()
        step(ctx)
        ctx.summary.setdefault("seconds", {})[name] = round(time.perf_counter() - s0, 2)
    ctx.summary["seconds"]["total"] = round(time.perf_counter() - t0, 2)
    atomic_write_text(out_dir / "summary.json", json.dumps(ctx.summary, indent=2, sort_keys=True) + "\n")
    atomic_write_text(out_dir / "summary.md", "\n".join(["# spikeport demo", "", *ctx.markdown]) + "\n")
    return ctx.summary
