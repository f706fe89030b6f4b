"""The framework x command matrix with its measured figures (Markdown on stdout, optionally to a file).

Trains the fixture models of ``tests/frameworks/fixture_models.py`` (SpikingJelly, snnTorch, Norse, sinabs,
lava-dl SLAYER; seeded, a few seconds each) and runs every command on each as its user would
(``tests/frameworks/matrix.py``): inspect, energy (per-layer rates against plain forward hooks on the framework's
own neurons, synaptic ops against NeuroBench's SynapticOperations), export onnx / nir / lava (each checked against
the traced IR and the original model), verify. ``tests/frameworks/test_matrix.py`` asserts the same cells.

    python benchmarks/frameworks_matrix.py [--out docs/frameworks-matrix.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _short(text: str, n: int = 110) -> str:
    text = text.replace("|", "/")
    return text if len(text) <= n else text[: n - 3] + "..."


def _export(cell: dict) -> str:
    if "refused" in cell:
        return f"refused: {_short(cell['refused'])}"
    chk, orig = cell["check"], cell["original"]
    if chk.verdict == "quantized":
        total = sum(layer.total for layer in chk.layers)
        head = (f"quantized: {100 * (1 - chk.spike_mismatches / total):.2f}% spikes, predictions "
                f"{chk.pred_agree}/{chk.samples}")
    else:
        head = f"{chk.verdict} ({chk.spike_mismatches}/{sum(layer.total for layer in chk.layers)} spikes differ)"
    return f"{head}; model vs IR {orig[0].verdict}, model vs file {orig[1].verdict}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write the Markdown here")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import warnings

    warnings.filterwarnings("ignore")
    from tests.frameworks import fixture_models as M
    from tests.frameworks.matrix import row
    from tests.frameworks.training import one_thread, train

    lines = ["| model | layout | test acc | inspect | energy: layer rates (spikeport = hooks) | syn ops/sample "
             "ACs, MACs, dense: spikeport / NeuroBench | export onnx | export nir | export lava | verify onnx |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp, one_thread():
        work = Path(tmp)
        for name in M.LAYOUTS:
            tr = train(name, work)
            r = row(tr, work)
            e = r["energy"]
            rates = ", ".join(f"{k} {s / n:.4f}" for k, (s, n) in e["hooks"].items())
            same = "equal" if e["ours"] == e["hooks"] else "DIFFER"
            how = "IR" if e["recorded_on"].startswith("IR") else "hooks"
            ops = " / ".join(f"{e[src]['Effective_ACs']:.1f}, {e[src]['Effective_MACs']:.1f}, {e[src]['Dense']:.0f}"
                             for src in ("synops", "neurobench"))
            ins = r["inspect"]
            inspect = f"refused: {_short(ins['refused'], 60)}" if "refused" in ins else \
                f"{ins['nodes']} nodes ({', '.join(o for o in ins['ops'] if o not in ('Input', 'Output'))})"
            v = r["verify"]
            verify = f"refused: {_short(v['refused'], 60)}" if isinstance(v, dict) else \
                ", ".join(c.verdict for c in v)
            lines.append(f"| {name} | {tr.layout} | {tr.accuracy:.3f} | {inspect} | {same} ({how}): {rates} | {ops} "
                         f"| {_export(r['onnx'])} | {_export(r['nir'])} | {_export(r['lava'])} | {verify} |")
            print(lines[-1], file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
