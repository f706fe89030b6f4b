"""Loihi deployment of residual and pooled networks (issue 15): the measured figures of benchmarks/RESULTS.md.

Part A (``--digits CKPT ...``): trained digits checkpoints (e.g. ``spikeport train resnet_digits -T 4 --epochs 10
--seed 0 --out r.pt``). For each: the deployment (populations, relays, cores), float vs Loihi on the whole digits
test split (Loihi-exact reference: accuracy, prediction agreement, spike agreement), and Lava
``Loihi2SimCfg(fixed_pt)`` vs the reference spike for spike on the first ``--lava-samples`` test samples.

Part B (``--cifar NAME ...``): zoo models at CIFAR shape with seeded random weights (BatchNorm statistics calibrated
on random inputs, BN gain ``--bn-gain`` so that the layers fire): export (deploy + write) time, core estimate,
reference on one sample (T=2), Lava on one sample at T=1 with its wall time, or, when the estimate exceeds
``--lava-budget`` seconds, the measured time of a few steps.

    python benchmarks/loihi_graphs.py --digits r.pt d.pt v.pt --cifar resnet19 resnet20 vgg11
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _summary_row(dep) -> dict:
    from spikeport.targets.lava.cores import loihi_summary

    s = loihi_summary(dep)
    keys = ("format", "neurons", "synapses", "populations", "connections", "depth", "relay_populations",
            "relay_neurons", "relay_synapses", "or_neurons", "max_fan_in", "max_fan_out", "est_cores", "fits_one_chip")
    return {k: s[k] for k in keys}


def digits_part(ckpt: str, lava_samples: int, out_dir: Path) -> dict:
    from spikeport.checkpoint import load_checkpoint
    from spikeport.data.digits import load_digits_arrays
    from spikeport.targets.lava import LoihiRunner, deploy_graph, write_deployment
    from spikeport.targets.nir import to_graph
    from spikeport.targets.torch_runner import TorchRunner
    from spikeport.targets.verify import compare

    model, info = load_checkpoint(ckpt)
    model.eval()
    t = info.timesteps
    dep = deploy_graph(to_graph(model))
    path, _ = write_deployment(dep, out_dir / (Path(ckpt).stem + ".net"), timesteps=t)
    x, y = load_digits_arrays(False)
    xs = torch.from_numpy(x).unsqueeze(0).expand(t, *x.shape).contiguous()
    c = compare(TorchRunner(model), LoihiRunner(path), [(xs, torch.from_numpy(y))])
    row = {"checkpoint": ckpt, "model": info.model, "T": t, **_summary_row(dep),
           "float_acc": c.ref_accuracy, "loihi_acc": c.target_accuracy, "pred_agree": c.prediction_agreement,
           "test_samples": c.samples, "spike_agreement": 1 - c.spike_mismatches / sum(la.total for la in c.layers),
           "silent_layers": [la.name for la in c.layers if la.ref_spikes == 0]}
    runner = LoihiRunner(path, backend="both")
    t0 = time.perf_counter()
    runner.chip_spikes(xs[:, :lava_samples])  # raises ExportError on any differing spike
    row["lava_seconds"] = time.perf_counter() - t0
    row["lava_identical_samples"] = runner.lava_checked
    return row


def _calibrated(name: str, bn_gain: float, seed: int = 0) -> torch.nn.Module:
    from spikeport.models import create_model

    torch.manual_seed(seed)
    m = create_model(name)
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.momentum = None
        bn.reset_running_stats()
    m.train()
    with torch.no_grad():
        m(torch.rand(2, 16, *m.default_input_shape))
        for bn in bns:
            bn.weight.fill_(bn_gain)
    return m.eval()


def cifar_part(name: str, bn_gain: float, lava_budget: float, out_dir: Path) -> dict:
    from spikeport.targets.lava import deploy_graph, run_graph_reference, write_deployment
    from spikeport.targets.lava.lava_graph import LavaNetwork
    from spikeport.targets.nir import to_graph

    model = _calibrated(name, bn_gain)
    t0 = time.perf_counter()
    dep = deploy_graph(to_graph(model))
    path, _ = write_deployment(dep, out_dir / f"{name}.net", timesteps=2)
    row = {"model": name, "export_seconds": time.perf_counter() - t0, "file_mib": path.stat().st_size / 2 ** 20,
           **_summary_row(dep)}
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 17, (1, 1, *model.default_input_shape), generator=gen).float() / 16
    k2 = dep.encode_input(x.expand(2, *x.shape[1:]))
    t0 = time.perf_counter()
    ref2 = run_graph_reference(dep.graph, k2, input_message_bits=dep.input_message_bits)
    row["reference_T2_seconds"] = time.perf_counter() - t0
    row["reference_T2_firing_populations"] = f"{sum(int(v.sum() > 0) for v in ref2.values())}/{len(ref2)}"
    k1 = k2[:1]
    net = LavaNetwork(dep)
    steps = 1 + dep.graph.depth
    probe = min(3, steps)
    per_step = _lava_steps(net, k1, probe) / probe
    row["lava_probe_seconds_per_step"] = per_step
    row["lava_steps_T1"] = steps
    if per_step * steps <= lava_budget:
        ref1 = run_graph_reference(dep.graph, k1, input_message_bits=dep.input_message_bits)
        names = [p.name for p in dep.graph.populations]
        got, seconds = net.run_integer(k1.numpy(), names)
        row["lava_T1_seconds"] = seconds
        row["lava_T1_identical"] = all(np.array_equal(got[n], ref1[n].numpy()) for n in names)
        row["lava_T1_spikes"] = int(sum(int(ref1[n].sum()) for n in names))
    else:
        row["lava_T1_seconds"] = None
        row["lava_T1_estimate_seconds"] = per_step * steps
    return row


def _lava_steps(net, k: torch.Tensor, steps: int) -> float:
    """Wall time of ``steps`` Lava steps of the network on the first frames of ``k`` (build and compile excluded)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from spikeport.targets.lava.lava_sim import _abort

    pops, syns = net.build(reset_interval=k.shape[0])
    data = net.input.stream(k.numpy())
    net.input.connect(data, syns)
    anchor = next(iter(pops.values()))
    try:
        anchor.run(condition=RunSteps(num_steps=1), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))  # compile, 1 step
        t0 = time.perf_counter()
        anchor.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        seconds = time.perf_counter() - t0
    except Exception as e:  # Lava raises plain Exceptions; tear its workers down and re-raise
        raise RuntimeError(_abort(anchor) or str(e)) from e
    anchor.stop()
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits", nargs="*", default=[], metavar="CKPT")
    ap.add_argument("--cifar", nargs="*", default=[], metavar="NAME")
    ap.add_argument("--lava-samples", type=int, default=50)
    ap.add_argument("--bn-gain", type=float, default=3.0)
    ap.add_argument("--lava-budget", type=float, default=600.0, help="seconds allowed for one Lava T=1 run")
    ap.add_argument("--json", help="also write the rows as JSON")
    args = ap.parse_args()
    from spikeport.targets.lava import enable_lava

    enable_lava()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, torch {torch.__version__}, threads "
          f"{torch.get_num_threads()}, load {os.getloadavg()[0]:.2f}, {when}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for ckpt in args.digits:
            rows.append(digits_part(ckpt, args.lava_samples, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
        for name in args.cifar:
            rows.append(cifar_part(name, args.bn_gain, args.lava_budget, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
