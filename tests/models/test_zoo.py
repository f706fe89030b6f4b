"""Zoo entries: registration, tags, parameter counts, forward + backward on tiny batches."""

from __future__ import annotations

import pytest
import torch

from spikeport.errors import ConfigError
from spikeport.models import MODELS, create_model, list_models

# sum(p.numel()) at default arguments (what `spikeport zoo` lists); see test_backbones for the formulas
PARAMS = {
    "resnet18": 11_173_962,
    "resnet19": 12_569_226,
    "resnet20": 11_247_946,
    "vgg11": 9_228_362,
    "tssnn_resnet19": 12_569_226 + 16,  # 8 blocks x 2 temporal shifts x 1 alpha
    "dalif_resnet19": 12_569_226 + 34,  # 17 neurons x 2 decays
    "staa_resnet19": 12_969_300,
    # 17 FSTA modules at T=2, wired as the official ResNet19: the stem's with reduction 1 (one 49 -> 1 7x7 conv),
    # the 16 blocks' with reduction 16 (49 -> 3 -> 1)
    "fsta_resnet19": 12_569_226 + (2401 + 4 + 4) + 16 * (49 * 3 * 49 + 3 * 49 + 4 + 4),
    "fsta_resnet20": 11_247_946 + 19 * (2401 + 4 + 4),  # 3 stem + 8 blocks x 2
    "resnet_digits": 24_506,
    "tssnn_digits": 24_506 + 4,
    "dalif_digits": 24_506 + 10,
    "staa_digits": 25_410,
    "fsta_digits": 24_506 + 5 * (2401 + 4 + 4),
    "vgg_digits": 144 + 4608 + 9216 + 18432 + 2 * (16 + 32 + 32 + 64) + 64 * 10 + 10,  # convs, BNs, head
}
TAGS = {
    "resnet18": {"cifar"}, "resnet19": {"cifar"}, "resnet20": {"cifar"}, "vgg11": {"cifar"},
    "tssnn_resnet19": {"cifar", "paper:ts"}, "dalif_resnet19": {"cifar", "paper:dalif"},
    "staa_resnet19": {"cifar", "paper:staa"}, "fsta_resnet19": {"cifar", "paper:fsta"},
    "fsta_resnet20": {"cifar", "paper:fsta"}, "resnet_digits": {"digits"}, "tssnn_digits": {"digits", "paper:ts"},
    "dalif_digits": {"digits", "paper:dalif"}, "staa_digits": {"digits", "paper:staa"},
    "fsta_digits": {"digits", "paper:fsta"}, "vgg_digits": {"digits"},
}
TIME_DEPENDENT = {"staa_resnet19": 4, "fsta_resnet19": 2, "fsta_resnet20": 2, "staa_digits": 2, "fsta_digits": 2}
# Heavy CIFAR seed variants run forward/backward at 16x16 (same code path; the plain
# backbones below cover the default 32x32 shape).
SMALL_INPUT = {"tssnn_resnet19", "dalif_resnet19", "staa_resnet19", "fsta_resnet19", "fsta_resnet20"}


def test_registered_names_and_tags():
    names = set(list_models())
    assert set(PARAMS) <= names
    for name, tags in TAGS.items():
        assert MODELS.tags(name) == frozenset(tags), name
        assert (MODELS.get(name).__doc__ or "").strip(), f"{name} needs a one-line description"
    assert set(list_models("paper:fsta")) >= {"fsta_resnet19", "fsta_resnet20", "fsta_digits"}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_counts(name):
    m = create_model(name)
    assert sum(p.numel() for p in m.parameters()) == PARAMS[name]
    assert m.num_classes == 10
    assert m.default_input_shape == ((1, 8, 8) if "digits" in name else (3, 32, 32))
    assert m.timesteps == TIME_DEPENDENT.get(name)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_forward_backward_tiny_batch(name):
    torch.manual_seed(0)
    digits = "digits" in name
    kw = {"timesteps": 2 if digits else 1} if name in TIME_DEPENDENT else {}
    if name in SMALL_INPUT:
        kw["input_shape"] = (3, 16, 16)
    m = create_model(name, **kw).train()
    t, b = (2, 4) if digits else (1, 2 if name in SMALL_INPUT else 1)
    x = torch.rand(t, b, *m.default_input_shape)
    y = m(x)
    assert y.shape == (t, b, 10) and torch.isfinite(y).all()
    y.mean(0).logsumexp(-1).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    assert not missing, missing[:5]
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize("name", ["staa_digits", "fsta_digits"])
def test_time_dependent_models_check_t(name):
    m = create_model(name, timesteps=3)
    assert m.timesteps == 3
    assert m(torch.rand(3, 1, 1, 8, 8)).shape == (3, 1, 10)
    with pytest.raises(ConfigError, match="built for T=3"):
        m(torch.rand(2, 1, 1, 8, 8))


def test_bad_zoo_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="freq_num=64"):
        create_model("fsta_digits", freq_num=64)
    with pytest.raises(ConfigError, match="tssnn_digits"):
        create_model("tssnn_digits", no_such_option=1)
