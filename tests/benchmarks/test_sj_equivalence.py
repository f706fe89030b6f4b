"""spikeport's resnet19 and its SpikingJelly twin (benchmarks/sj_models.py) compute the same function.

Tiny shape (3x8x8 input, batch 2, T=2): weights are copied through the state-dict name map,
then train-mode logits, every parameter gradient, BN running statistics and eval-mode logits
are compared, for spikeport's eager and fused LIF. Skipped without SpikingJelly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("spikingjelly.activation_based.neuron")
from spikingjelly.activation_based import functional as sj_functional

from spikeport.models import create_model

T, B, SHAPE = 2, 2, (3, 8, 8)


def _load_sj_models():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "sj_models.py"
    spec = importlib.util.spec_from_file_location("_spikeport_bench_sj_models", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclass/typing lookups need the module registered
    spec.loader.exec_module(mod)
    return mod


sjm = _load_sj_models()


def _pair(backend: str, seed: int = 0):
    torch.manual_seed(seed)
    ours = create_model("resnet19", input_shape=SHAPE, neuron_kw={"backend": backend})
    # non-trivial BN affine parameters, so a mis-mapped BN would show
    with torch.no_grad():
        for m in ours.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.4)
    theirs = sjm.SJResNet19(num_classes=ours.num_classes, in_channels=SHAPE[0])
    sjm.load_spikeport_weights(theirs, ours)
    return ours, theirs


def _input(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, *SHAPE, generator=g) * 2.0


def test_state_dict_map_covers_every_key():
    ours, theirs = _pair("eager")
    mapped = sjm.map_spikeport_state_dict(ours.state_dict())
    assert set(mapped) == set(theirs.state_dict())
    assert len(mapped) == len(ours.state_dict())
    assert mapped["layer2.0.downsample.0.weight"].shape == (256, 128, 1, 1)
    assert "layer1.0.downsample.0.weight" not in mapped  # stage 1 keeps width and stride: identity shortcut
    with pytest.raises(KeyError, match="no SpikingJelly counterpart"):
        sjm.map_spikeport_state_dict({"stages.0.0.pre1.alpha": torch.zeros(1)})


@pytest.mark.parametrize("backend", ["eager", "fused"])
def test_train_mode_logits_and_grads_match(backend):
    ours, theirs = _pair(backend)
    x = _input()
    target = torch.tensor([3, 7])
    a = ours(x)
    b = theirs(x)
    sj_functional.reset_net(theirs)
    assert a.shape == b.shape == (T, B, 10)
    # same float ops in the same order (1/tau = 0.5 is exact): identical logits and spikes
    assert torch.equal(a, b), f"max abs diff {(a - b).abs().max().item()}"
    assert a.abs().sum() > 0
    torch.nn.functional.cross_entropy(a.mean(0), target).backward()
    torch.nn.functional.cross_entropy(b.mean(0), target).backward()
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        q = theirs_params[next(iter(sjm.map_spikeport_state_dict({name: p})))]
        assert p.grad is not None and q.grad is not None, name
        scale = q.grad.abs().max().clamp_min(1e-12)
        assert ((p.grad - q.grad).abs().max() / scale).item() < 1e-4, name
    # BN running statistics were updated identically
    assert torch.equal(ours.stem[1].running_mean, theirs.bn1.running_mean)
    assert torch.equal(ours.stages[2][1].bn2.running_var, theirs.layer3[1].bn2.running_var)

    # eval mode (running statistics), and SpikingJelly's state really is reset between calls
    ours.eval()
    theirs.eval()
    x2 = _input(seed=2)
    with torch.no_grad():
        a = ours(x2)
        b1 = theirs(x2)
        sj_functional.reset_net(theirs)
        b2 = theirs(x2)
        sj_functional.reset_net(theirs)
    assert torch.equal(a, b1) and torch.equal(b1, b2)
