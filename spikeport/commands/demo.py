"""`spikeport demo`: the end-to-end job on the embedded digits data."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from spikeport.commands._common import add_device_arg


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo on digits",
                       description="Train the spiking CNN on sklearn digits (T=4) and its ANN reference, then "
                                   "analyse energy and export/verify every target; writes everything to --out.")
    p.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    p.add_argument("--force", action="store_true", help="reuse a non-empty output folder")
    p.add_argument("--timesteps", "-T", type=int, default=4)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--no-progress", action="store_true")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spikeport.demo import run_demo
    from spikeport.models.encoders import check_timesteps

    check_timesteps(args.timesteps)
    out = Path(args.out)
    created = not out.exists()
    try:
        run_demo(args.out, force=args.force, timesteps=args.timesteps, epochs=args.epochs, device=args.device,
                 progress=not args.no_progress, echo=print)
    except BaseException:
        if created:  # a failed first step leaves no empty output folder behind
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    print(f"[demo] done: see {args.out}/summary.md")
    return 0
