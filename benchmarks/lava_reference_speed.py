"""Speed of spikeport's Loihi-exact reference vs Lava's CPU simulation on the same network and samples.

Both run the exported ``.net`` on the same digits test samples through :class:`LoihiRunner` (the path
``spikeport verify`` uses): ``reference`` is the integer torch executor, ``lava`` is Lava
``Loihi2SimCfg(select_tag='fixed_pt')`` on the runtime contract's stream (netx for chains, standard Lava
processes for graphs), process start-up and compilation included. Their spikes are compared first (they must be
identical); the script prints both wall times and the ratio (goal: the reference >= 20x faster).

    python benchmarks/lava_reference_speed.py                       # resnet_digits and vgg_digits, trained briefly
    python benchmarks/lava_reference_speed.py --checkpoint r.pt --samples 100
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch


def _model(args: argparse.Namespace, spec: str) -> tuple[str, torch.nn.Module, int]:
    if spec.endswith(".pt"):
        from spikeport.checkpoint import load_checkpoint

        model, info = load_checkpoint(spec)
        return Path(spec).stem, model.eval(), info.timesteps
    from spikeport.data import get_dataset
    from spikeport.models import create_model
    from spikeport.training.trainer import TrainConfig, train

    torch.manual_seed(0)
    model = create_model(spec)
    train(model, get_dataset("digits", train=True), None,
          TrainConfig(epochs=args.epochs, timesteps=args.timesteps, seed=0, progress=False, amp=False))
    return spec, model.eval(), args.timesteps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", default=[], help="trained checkpoint(s) (.pt)")
    ap.add_argument("--zoo", nargs="*", default=None, help="zoo models trained briefly here (default: resnet_digits "
                                                           "vgg_digits when no --checkpoint)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--timesteps", "-T", type=int, default=4)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3, help="reference runs (median)")
    args = ap.parse_args()
    from spikeport.data.digits import load_digits_arrays
    from spikeport.targets.lava import LoihiRunner, deploy_graph, enable_lava, write_deployment
    from spikeport.targets.nir import to_graph

    enable_lava()
    specs = args.checkpoint + (args.zoo if args.zoo is not None else ([] if args.checkpoint else
                                                                      ["resnet_digits", "vgg_digits"]))
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), load {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'network':<16} {'format':<22} {'samples':>7} {'T':>3} {'reference s':>12} {'lava s':>9} "
          f"{'ratio':>7}  spikes")
    x, _ = load_digits_arrays(False)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            name, model, t = _model(args, spec)
            dep = deploy_graph(to_graph(model))
            path, _ = write_deployment(dep, Path(tmp) / f"{name}.net", timesteps=t)
            xs = torch.from_numpy(x[:args.samples]).unsqueeze(0).expand(t, args.samples, *x.shape[1:]).contiguous()
            ref_runner, lava_runner = LoihiRunner(path), LoihiRunner(path, backend="lava")
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                ref = ref_runner.run(xs)
                times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            lava = lava_runner.run(xs)
            lava_s = time.perf_counter() - t0
            same = all(torch.equal(ref.spikes[n], lava.spikes[n]) for n in ref.spikes)
            fired = sum(int(s.sum()) for s in ref.spikes.values())
            ref_s = statistics.median(times)
            fmt = "netx chain" if dep.is_chain else "spikeport graph"
            print(f"{name:<16} {fmt:<22} {args.samples:>7} {t:>3} {ref_s:>12.3f} {lava_s:>9.2f} "
                  f"{lava_s / ref_s:>6.1f}x  {'identical' if same else 'DIFFER'} ({fired} spikes)", flush=True)
            if not same:
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
