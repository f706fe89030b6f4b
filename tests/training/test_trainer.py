"""Trainer: config validation, determinism, optimizers, distillation through train() and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import Subset

from spikeport.checkpoint import load_checkpoint
from spikeport.cli import main
from spikeport.data import DatasetSplit, get_dataset
from spikeport.errors import ConfigError
from spikeport.models import create_model
from spikeport.runtime import to_sequence
from spikeport.training import TrainConfig, evaluate, train


def _subset(n: int, train_split: bool = True) -> DatasetSplit:
    full = get_dataset("digits", train=train_split)
    return DatasetSplit(Subset(full.dataset, range(n)), full.input_shape, full.num_classes, False, "digits")


def _cfg(**kw) -> TrainConfig:
    base = {"epochs": 2, "timesteps": 2, "batch_size": 32, "lr": 1e-2, "progress": False}
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("kw, msg", [
    ({"epochs": 0}, "epochs must be a positive integer"), ({"epochs": True}, "epochs must be a positive integer"),
    ({"lr": 0.0}, "learning rate must be positive"), ({"lr": float("nan")}, "learning rate must be positive"),
    ({"batch_size": 0}, "batch size must be positive"), ({"timesteps": 0}, "timesteps must be a positive integer"),
    ({"optimizer": "adam"}, "unknown optimizer 'adam'; use one of adamw, sgd"),
    ({"encoder": "poisson"}, "unknown encoder 'poisson'"),
    ({"weight_decay": -1e-4}, "weight decay must be a finite number >= 0"),
    ({"weight_decay": float("inf")}, "weight decay must be a finite number >= 0"),
    ({"momentum": -0.1}, "momentum must be a finite number >= 0"),
    ({"seed": -1}, r"seed must be an integer in \[0, 4294967295\], got -1"),
    ({"seed": 2**32}, "seed must be an integer"), ({"seed": 1.5}, "seed must be an integer"),
])
def test_train_config_validation(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        TrainConfig(**kw)


def test_same_seed_same_weights_other_seed_differs():
    tr = _subset(128)
    states = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        m = create_model("spiking_mlp_digits")
        train(m, tr, None, _cfg(seed=seed, epochs=1))
        states.append(m.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_both_optimizers_reduce_the_loss(optimizer):
    tr, te = _subset(256), _subset(100, train_split=False)
    torch.manual_seed(0)
    m = create_model("spiking_cnn_digits")
    lr = 0.3 if optimizer == "sgd" else 1e-2  # sgd 0.1 is too slow for 4 epochs with avg pooling (loss x0.62)
    res = train(m, tr, te, _cfg(optimizer=optimizer, lr=lr, epochs=4))
    assert res.history[-1]["train_loss"] < 0.6 * res.history[0]["train_loss"]
    assert 0.0 <= res.test_acc <= 1.0 and res.metrics["train_seconds"] > 0
    ev = evaluate(m, te, timesteps=2)
    assert ev["n"] == 100 and ev["acc"] == pytest.approx(res.test_acc)


@pytest.mark.parametrize("loss", ["kl", "hta_kl", "tser"])
def test_distillation_through_train(loss):
    tr = _subset(128)
    torch.manual_seed(0)
    teacher = create_model("spiking_cnn_digits", neuron="relu")
    train(teacher, tr, None, _cfg(timesteps=1, epochs=2))
    student = create_model("spiking_cnn_digits")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    res = train(student, tr, None, _cfg(loss=loss, epochs=2), teacher=teacher)
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in res.history)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # teacher frozen
    with pytest.raises(ConfigError, match=f"loss '{loss}' is a distillation loss and needs a teacher"):
        train(create_model("spiking_cnn_digits"), tr, None, _cfg(loss=loss))


def test_encoder_none_needs_temporal_data():
    with pytest.raises(ConfigError, match="encoder 'none' needs a temporal dataset"):
        to_sequence(torch.zeros(2, 1, 8, 8), False, 2, "none")


def test_cli_ann_teacher_then_hta_kl_student(tmp_path, capsys):
    t, s = tmp_path / "t.pt", tmp_path / "s.pt"
    assert main(["train", "spiking_cnn_digits", "--ann", "--epochs", "3", "--no-progress", "--out", str(t)]) == 0
    assert main(["train", "spiking_cnn_digits", "-T", "2", "--teacher", str(t), "--kd", "hta_kl", "--epochs", "3",
                 "--loss-arg", "tau=4", "--no-progress", "--out", str(s)]) == 0
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert [r["timesteps"] for r in lines] == [1, 2] and lines[1]["world_size"] == 1
    _, t_info = load_checkpoint(t)
    student, s_info = load_checkpoint(s)
    assert t_info.model_kwargs["neuron"] == "relu" and s_info.timesteps == 2
    assert s_info.metrics["test_acc"] > 0.85 and t_info.metrics["test_acc"] > 0.9
    assert s_info.metrics["test_acc"] == pytest.approx(lines[1]["test_acc"], abs=1e-6)


def test_cli_kd_option_errors(tmp_path, capsys):
    out = str(tmp_path / "x.pt")
    assert main(["train", "spiking_cnn_digits", "--kd", "kl", "--out", out]) == 2
    assert "loss 'kl' needs --teacher CKPT" in capsys.readouterr().err
    assert main(["train", "spiking_cnn_digits", "--kd", "ce", "--teacher", out, "--out", out]) == 2
    assert "--kd ce is not a distillation loss" in capsys.readouterr().err
    assert main(["train", "spiking_cnn_digits", "--kd", "kl", "--loss", "ce", "--teacher", out, "--out", out]) == 2
    assert "--kd kl conflicts with --loss ce" in capsys.readouterr().err
    assert main(["train", "--out", out]) == 2
    assert "no model given" in capsys.readouterr().err
    assert main(["train", "spiking_cnn_digits", "--kd", "hta-kl", "--teacher", out, "--out", out]) == 2
    assert "did you mean 'hta_kl'" in capsys.readouterr().err
