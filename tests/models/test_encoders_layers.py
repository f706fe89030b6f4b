import pytest
import torch
from torch import nn

from spikeport.errors import ConfigError
from spikeport.models import create_model, list_models
from spikeport.models import layers as L
from spikeport.models.encoders import encode


def test_direct_encoding_repeats():
    x = torch.rand(3, 1, 8, 8)
    e = encode(x, 4, "direct")
    assert e.shape == (4, 3, 1, 8, 8) and all(torch.equal(e[t], x) for t in range(4))


def test_rate_encoding_is_seeded_and_unbiased():
    x = torch.full((2000,), 0.3)
    a = encode(x, 50, "rate", torch.Generator().manual_seed(1))
    b = encode(x, 50, "rate", torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert float(a.mean()) == pytest.approx(0.3, abs=0.01)


def test_latency_encoding_times():
    x = torch.tensor([1.0, 0.5, 0.0])
    e = encode(x, 5, "latency")
    assert e[:, 0].tolist() == [1, 0, 0, 0, 0]
    assert e[:, 1].tolist() == [0, 0, 1, 0, 0]
    assert e[:, 2].sum() == 0


@pytest.mark.parametrize("t", [0, -1, 2.5, True])
def test_bad_timesteps(t):
    with pytest.raises(ConfigError, match="positive integer"):
        encode(torch.rand(2, 3), t)


def test_absurd_timesteps_refused_before_allocating():
    with pytest.raises(ConfigError, match="GiB"):
        encode(torch.rand(64, 3, 32, 32), 10**7)


def test_multistep_layers_fold_time_into_batch():
    conv = L.Conv2d(2, 3, 3, padding=1)
    x = torch.rand(4, 5, 2, 6, 6)
    ref = torch.stack([nn.functional.conv2d(x[t], conv.weight, conv.bias, padding=1) for t in range(4)])
    assert torch.allclose(conv(x), ref)
    assert isinstance(conv, nn.Conv2d)
    with pytest.raises(ConfigError, match="5-D"):
        conv(torch.rand(5, 2, 6, 6))
    assert L.Flatten()(x).shape == (4, 5, 72)


def test_registry_lists_close_matches():
    assert {"spiking_cnn_digits", "spiking_mlp_digits"} <= set(list_models("digits"))
    with pytest.raises(ConfigError, match="did you mean 'spiking_cnn_digits'"):
        create_model("spiking_cnn_digit")
    with pytest.raises(ConfigError, match="bad arguments"):
        create_model("spiking_cnn_digits", nonsense=1)


@pytest.mark.parametrize("name", ["spiking_cnn_digits", "spiking_mlp_digits"])
def test_digits_models_forward_backward(name):
    m = create_model(name)
    x = torch.rand(4, 2, 1, 8, 8)
    y = m(x)
    assert y.shape == (4, 2, 10)
    y.mean().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
