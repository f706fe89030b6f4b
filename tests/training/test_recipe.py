"""Training recipes (configs/*.toml) and `spikeport train --config`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from spikeport.checkpoint import load_checkpoint
from spikeport.cli import build_parser, main
from spikeport.commands.train import resolve_options
from spikeport.errors import ConfigError
from spikeport.models import create_model, list_models
from spikeport.training import TrainConfig
from spikeport.training.losses import create_loss
from spikeport.training.recipe import load_recipe

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.toml"))
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "digits": 10}


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["train", *argv, "--out", "unused.pt"])


def test_the_paper_recipes_exist():
    names = {p.stem for p in CONFIGS}
    assert {"tssnn_cifar10", "tssnn_cifar100", "hta_kl_cifar100", "tser_cifar100", "staa_cifar100", "dalif_cifar10",
            "fsta_cifar10", "fsta_cifar100", "ann_resnet19_cifar100"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_recipe_is_valid(path):
    recipe = load_recipe(path)
    o = resolve_options(_args("--config", str(path)))
    assert o["model"] in list_models()
    assert recipe.paper.get("name"), "recipes name their paper in [paper]"
    loss = o["kd"] or o["loss"] or "ce"
    TrainConfig(epochs=o["epochs"], timesteps=o["timesteps"], batch_size=o["batch_size"], lr=o["lr"],
                weight_decay=o["weight_decay"], optimizer=o["optimizer"], momentum=o["momentum"], loss=loss,
                loss_options=o["loss_options"])
    create_loss(loss, **o["loss_options"])
    if "timesteps" in o["model_options"]:
        assert o["model_options"]["timesteps"] == o["timesteps"]
    if o["kd"]:
        assert o["teacher"]
    extra = {"neuron": "relu"} if o["ann"] else {}
    create_model(o["model"], num_classes=NUM_CLASSES[o["dataset"]], **o["model_options"], **extra)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.toml"
    p.write_text(text)
    return p


def test_malformed_toml_names_file_and_line(tmp_path):
    p = _write(tmp_path, '[train]\nmodel = "spiking_cnn_digits"\nepochs = = 3\n')
    with pytest.raises(ConfigError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert str(p) in msg and "malformed TOML" in msg and "line 3" in msg and "\n" not in msg


@pytest.mark.parametrize("text, msg", [
    ('[train]\nepoch = 3\n', "unknown key 'epoch' in [train]; did you mean 'epochs'?"),
    ('[trian]\nepochs = 3\n', "unknown section [trian]; did you mean 'train'?"),
    ('[paper]\nname = "x"\n', "missing [train] table"),
    ('[train]\nepochs = "3"\n', "[train] epochs = '3' must be int"),
    ('[train]\nepochs = 3.0\n', "[train] epochs = 3.0 must be int"),
    ('[train]\nann = 1\n', "[train] ann = 1 must be bool"),
    ('[train]\nlr = true\n', "[train] lr = True must be float or int"),
    ('[train]\nlr = nan\n', "must be finite"),
    ('[train]\nmodel_options = 3\n', "must be table"),
    ('[train]\ntimesteps = -3\n', "r.toml: [train] timesteps must be a positive integer, got -3"),
    ('[train]\nepochs = 0\n', "r.toml: [train] epochs must be a positive integer, got 0"),
    ('[train]\nweight_decay = -1\n', "r.toml: [train] weight decay must be a finite number >= 0, got -1.0"),
    ('[train]\nmomentum = -0.5\n', "r.toml: [train] momentum must be a finite number >= 0"),
    ('[train]\nseed = 4294967296\n', "r.toml: [train] seed must be an integer in [0, 4294967295]"),
    ('[train]\nencoder = "poisson"\n', "r.toml: [train] unknown encoder 'poisson'"),
])
def test_recipe_validation_errors(tmp_path, text, msg):
    with pytest.raises(ConfigError) as e:
        load_recipe(_write(tmp_path, text))
    assert msg in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_recipe(tmp_path / "nope.toml")


def test_command_line_overrides_the_recipe(tmp_path):
    p = _write(tmp_path, '[train]\nmodel = "staa_digits"\ntimesteps = 4\nepochs = 7\nlr = 1\n'
                         '[train.model_options]\ntimesteps = 4\nreduction = 2\n'
                         '[train.loss_options]\nlabel_smoothing = 0.1\n')
    o = resolve_options(_args("--config", str(p)))
    assert (o["model"], o["timesteps"], o["epochs"], o["lr"], o["batch_size"]) == ("staa_digits", 4, 7, 1.0, 64)
    assert isinstance(o["lr"], float)
    o = resolve_options(_args("fsta_digits", "--config", str(p), "-T", "2", "--epochs", "1", "--model-arg",
                              "reduction=1", "--loss-arg", "label_smoothing=0.0"))
    assert (o["model"], o["timesteps"], o["epochs"]) == ("fsta_digits", 2, 1)
    assert o["model_options"] == {"timesteps": 2, "reduction": 1}  # model T follows -T
    assert o["loss_options"] == {"label_smoothing": 0.0}
    o = resolve_options(_args("--config", str(p), "-T", "2", "--model-arg", "timesteps=3"))
    assert o["model_options"]["timesteps"] == 3


def test_train_with_config_end_to_end(tmp_path, capsys):
    p = _write(tmp_path, '[paper]\nname = "smoke"\n[train]\nmodel = "spiking_mlp_digits"\ntimesteps = 3\n'
                         'epochs = 2\nbatch_size = 128\noptimizer = "sgd"\nlr = 0.05\n'
                         '[train.model_options]\nhidden = [32]\n')
    out = tmp_path / "m.pt"
    assert main(["train", "--config", str(p), "-T", "2", "--no-progress", "--out", str(out)]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    _, info = load_checkpoint(out)
    assert rec["timesteps"] == info.timesteps == 2 and info.model == "spiking_mlp_digits"
    assert list(info.model_kwargs["hidden"]) == [32]
    bad = _write(tmp_path, "[train\n")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "n.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "line 1" in err
