"""`spikeport zoo`: list the registered models with tags and parameter counts."""

from __future__ import annotations

import argparse

from spikeport.commands._common import print_table


def add_parser(sub) -> None:
    p = sub.add_parser("zoo", help="list zoo models", description="List registered models, tags and parameter counts.")
    p.add_argument("--tag", help="only models with this tag (e.g. digits, cifar, paper:fsta)")
    p.add_argument("--no-params", action="store_true", help="skip instantiating models to count parameters")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spikeport.models import MODELS, create_model, list_models

    names = list_models(args.tag)
    if not names and args.tag is not None:
        from spikeport.errors import ConfigError

        tags = sorted({t for n in list_models() for t in MODELS.tags(n)})
        raise ConfigError(f"no model has tag '{args.tag}'; known tags: {', '.join(tags)}")
    rows = []
    for name in names:
        row = {"model": name, "tags": ",".join(sorted(MODELS.tags(name)))}
        if not args.no_params:
            m = create_model(name)
            row["params"] = f"{sum(p.numel() for p in m.parameters()):,}"
            shape = getattr(m, "default_input_shape", None)
            row["input"] = "x".join(map(str, shape)) if shape else "?"
        doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
        row["description"] = doc[0] if doc else ""
        rows.append(row)
    print(print_table(rows))
    return 0
