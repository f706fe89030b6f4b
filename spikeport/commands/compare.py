"""`spikeport compare`: firing rates and energy totals of several `spikeport energy` reports."""

from __future__ import annotations

import argparse

from spikeport.commands._common import add_out_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare energy reports",
        description="Compare reports written by `spikeport energy` (models, or one model at several T): firing "
                    "rates across layers on one figure and a table of per-sample totals with ratios to the first.")
    p.add_argument("reports", nargs="+", metavar="DIR", help="report directories (at least two)")
    p.add_argument("--label", action="append", help="label per report, in order (default: directory names)")
    add_out_args(p, "output directory for the comparison files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spikeport.commands._common import print_table
    from spikeport.energy import compare_reports

    table = compare_reports(args.reports, args.out, force=args.force, labels=args.label)
    cols = ["report", "model", "timesteps", "firing_rate", "syn_acs", "syn_macs", "energy_pj", "energy_pj_ratio"]
    rows = [{c: (f"{v:.4g}" if isinstance(v, float) else v) for c, v in r.items() if c in cols}
            for r in table.to_dict(orient="records")]
    print(print_table(rows, cols))
    print(f"wrote comparison to {args.out}")
    return 0
