"""`spikeport ops`: what the toolchain can do with each op type (the op registry as a table)."""

from __future__ import annotations

import argparse

from spikeport.commands._common import print_table


def add_parser(sub) -> None:
    p = sub.add_parser(
        "ops", help="list op types and their capabilities",
        description="List every registered IR op type with what spikeport can do with it: trace (torch modules "
                    "recognised), execute (reference executor), energy (op-count rule), nir, onnx, loihi. A "
                    "capability an op lacks is shown with the reason. With OP, show one op in full.")
    p.add_argument("op", nargs="?", metavar="OP", help="one op type (e.g. LIF) to describe in full")
    p.add_argument("--refusals", action="store_true", help="list every refused capability with its reason")
    p.set_defaults(func=run)


def _cell(spec, cap: str) -> str:
    from spikeport.ops import refusal

    return "no" if refusal(spec, cap) else "yes"


def _modules(spec) -> str:
    """The module classes recognised as the op: its own adapters and other frameworks' (named by string)."""
    from spikeport.ops import Refused
    from spikeport.ops.spec import builtin_adapters, qualified_name

    own = [] if isinstance(spec.modules, Refused) else list(spec.modules)
    more = [a for a in builtin_adapters().values() if a is not None and a.op is spec.node and a not in own]
    return ", ".join(a.module if isinstance(a.module, str) else qualified_name(a.module) for a in own + more)


def _nir_reading(spec, cap: str) -> str:
    """``": LIF (--nir-from snntorch), ..."``: the NIR node types that import as the op, and under which presets."""
    from spikeport.ops import NirMapping

    if cap != "nir_import" or not isinstance(spec.nir, NirMapping) or not spec.nir.imports:
        return ""
    parts = []
    for t in spec.nir.imports:
        dialects = spec.nir.dialects_of(t)
        parts.append(f"{t} ({'--nir-from ' + '|'.join(dialects) if dialects else 'default reading'})")
    return ": " + ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    from spikeport.errors import ConfigError
    from spikeport.ops import CAPABILITIES, LoihiMapping, all_specs, refusal

    specs = all_specs()
    if args.op:
        match = [s for s in specs if s.name.lower() == args.op.lower()]
        if not match:
            raise ConfigError(f"unknown op '{args.op}' (known: {', '.join(s.name for s in specs)})")
        spec = match[0]
        print(f"{spec.name}: {spec.summary}")
        mods = _modules(spec)
        if mods:
            print(f"  modules: {mods}")
        for cap in CAPABILITIES:
            why = refusal(spec, cap)
            role = f" (role: {spec.loihi.role})" if cap == "loihi" and isinstance(spec.loihi, LoihiMapping) else ""
            print(f"  {cap:8s} {'refused: ' + why if why else 'yes' + _nir_reading(spec, cap)}{role}")
        return 0
    if args.refusals:
        rows = [{"op": s.name, "capability": cap, "reason": why} for s in specs for cap in CAPABILITIES
                if (why := refusal(s, cap))]
        print(print_table(rows))
        return 0
    rows = [{"op": s.name, **{cap: _cell(s, cap) for cap in CAPABILITIES}, "description": s.summary}
            for s in specs]
    print(print_table(rows))
    print("\n'no' = refused with a reason: spikeport ops --refusals, or spikeport ops OP")
    return 0
