"""`spikeport train` against bad options, malformed recipes, hostile teachers and failing writes.

Every case must fail cleanly (exit != 0, one line naming the option/file and
the fix, no traceback) and write nothing. Almost all of them must fail before
any training starts, so the file runs in a few seconds.
"""

from __future__ import annotations

import pytest
import torch

MLP = ["spiking_mlp_digits", "--model-arg", "hidden=(4,)"]
FAST = ["--epochs", "1", "-T", "1", "--no-progress"]


@pytest.mark.parametrize("opts,text", [
    (["nosuchmodel"], "unknown model 'nosuchmodel'"),
    ([*MLP, "-T", "0"], "timesteps must be a positive integer, got 0"),
    ([*MLP, "-T", "-1"], "got -1"),
    ([*MLP, "-T", str(10**9), "--epochs", "1", "--no-progress"], "GiB"),
    ([*MLP, "--epochs", "0"], "epochs must be a positive integer"),
    ([*MLP, "--epochs", "-1"], "epochs must be a positive integer"),
    ([*MLP, "--batch-size", "0", *FAST], "batch size must be positive"),
    ([*MLP, "--batch-size", "-3", *FAST], "batch size must be positive"),
    ([*MLP, "--lr", "nan", *FAST], "learning rate must be positive"),
    ([*MLP, "--lr", "-1", *FAST], "learning rate must be positive"),
    ([*MLP, "--lr", "inf", *FAST], "learning rate must be positive"),
    ([*MLP, "--optimizer", "rmsprop", *FAST], "unknown optimizer 'rmsprop'"),
    ([*MLP, "--encoder", "bogus", *FAST], "unknown encoder 'bogus'"),
    ([*MLP, "--loss", "bogus", *FAST], "unknown loss 'bogus'"),
    ([*MLP, "--loss-arg", "tau", *FAST], "--loss-arg 'tau': expected KEY=VALUE"),
    ([*MLP, "--loss-arg", "nope=1", *FAST], "bad options ['nope']"),
    (["spiking_mlp_digits", "--model-arg", "nope=1", *FAST], "bad arguments"),
    (["spiking_mlp_digits", "--model-arg", "neuron=bogus", *FAST], "unknown neuron 'bogus'"),
    (["spiking_mlp_digits", "--model-arg", "hidden=-5", *FAST], "bad arguments"),
    (["spiking_mlp_digits", "--model-arg", "__import__('os').system('x')", *FAST], "expected KEY=VALUE"),
    ([*MLP, "--kd", "kl", *FAST], "--teacher"),
    ([*MLP, "--kd", "kl", "--loss", "tet", "--teacher", "{assets}/tiny.pt", *FAST], "conflicts"),
    ([*MLP, "--kd", "kl", "--teacher", "{assets}/missing.pt", *FAST], "missing.pt: no such checkpoint file"),
    ([*MLP, "--kd", "kl", "--teacher", "{assets}/garbage.pt", *FAST], "garbage.pt: not a spikeport checkpoint"),
    ([*MLP, "--kd", "kl", "--teacher", "{assets}/trunc.pt", *FAST], "trunc.pt: truncated or corrupt"),
    ([*MLP, "--kd", "kl", "--teacher", "{assets}/nan.pt", *FAST], "nan.pt: weight"),
    ([*MLP, "--kd", "kl", "--teacher", "{assets}/evil.pt", *FAST], "evil.pt: refused"),
    ([*MLP, "--kd", "kl", "--teacher", "spiking_mlp_digits", *FAST], "must be a trained checkpoint"),
    ([*MLP, "--dataset", "mnist", *FAST], "unknown dataset 'mnist'"),
    ([*MLP, "--dataset", "cifar10", *FAST], "pass data_dir"),
    ([*MLP, "--dataset", "cifar10", "--data-dir", "/nonexistent/x", *FAST], "/nonexistent/x"),
    ([*MLP, "--dataset", "cifar10dvs", "--data-dir", "{assets}", *FAST], "class folders"),
    ([*MLP, "--dataset", "dvs128gesture", "--data-dir", "{assets}", *FAST], "DvsGesture"),
    ([*MLP, "--device", "bogus", *FAST], "unknown device 'bogus'"),
])
def test_bad_options(adv, assets, work, opts, text):
    args = ["train", *[o.replace("{assets}", str(assets)) for o in opts], "--out", work / "o.pt"]
    adv.bad(args, text, dirs=(work, assets))
    assert not (assets / "PWNED").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu(adv, work):
    adv.bad(["train", *MLP, "--device", "cuda", *FAST, "--out", work / "o.pt"], "no CUDA GPU", "--device cpu",
            dirs=(work,))


@pytest.mark.parametrize("content,text", [
    (None, "no such config file"),
    ("[train\nmodel = 'x'\n", "malformed TOML"),
    ("[train]\nmodel = 5\n", "model = 5 must be str"),
    ("[train]\nmodle = 'spiking_mlp_digits'\n", "did you mean 'model'"),
    (b"\xff\xfe[train]\n", "not UTF-8"),
    ("[foo]\n", "unknown section [foo]"),
    ("[train]\nlr = nan\n", "must be finite"),
    ("[train]\nlr = inf\n", "must be finite"),
    ("[train]\nepochs = 1.5\n", "epochs = 1.5 must be int"),
    ("[train]\nann = 1\n", "must be bool"),
    ("train = 5\n", "missing [train] table"),
    ("", "missing [train] table"),
    ("[train]\nmodel_options = 3\n", "must be table"),
    ("[paper]\nname = 'x'\n", "missing [train] table"),
])
def test_malformed_recipe(adv, work, content, text):
    cfg = work / "recipe.toml"
    if isinstance(content, bytes):
        cfg.write_bytes(content)
    elif content is not None:
        cfg.write_text(content)
    adv.bad(["train", "--config", cfg, "--out", work / "o.pt"], "recipe.toml", text, dirs=(work,))


def test_malformed_toml_names_line_and_column(adv, work):
    cfg = work / "r.toml"
    cfg.write_text("[train]\nmodel = 'spiking_mlp_digits'\nlr = = 3\n")
    adv.bad(["train", "--config", cfg, "--out", work / "o.pt"], "r.toml", "line 3", dirs=(work,))


def test_recipe_is_a_directory(adv, work):
    (work / "cfg.toml").mkdir()
    adv.bad(["train", "--config", work / "cfg.toml", "--out", work / "o.pt"], "cfg.toml", dirs=(work,))


def test_recipe_value_error_names_file(adv, work):
    cfg = work / "r.toml"
    cfg.write_text("[train]\nmodel = 'spiking_mlp_digits'\ntimesteps = -3\n")
    adv.bad(["train", "--config", cfg, "--out", work / "o.pt"], "r.toml",
            "timesteps must be a positive integer, got -3", dirs=(work,))


@pytest.mark.parametrize("line,text", [
    ("weight_decay = -0.5", "weight decay must be a finite number >= 0"),
    ("momentum = -1", "momentum must be a finite number >= 0"),
    ("seed = -1", "seed must be an integer"),
    ("batch_size = 0", "batch size must be positive"),
    ("optimizer = 'rmsprop'", "unknown optimizer 'rmsprop'"),
])
def test_recipe_range_errors_name_file(adv, work, line, text):
    cfg = work / "r.toml"
    cfg.write_text(f"[train]\nmodel = 'spiking_mlp_digits'\n{line}\n")
    adv.bad(["train", "--config", cfg, "--out", work / "o.pt"], "r.toml", text, dirs=(work,))


# ------------------------------------------------------------------ output paths


def test_existing_output_needs_force(adv, work):
    out = work / "o.pt"
    out.write_bytes(b"keep me")
    adv.bad(["train", *MLP, *FAST, "--out", out], "o.pt", "--force", dirs=(work,))
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("out,text", [
    ("{work}/afile/o.pt", "exists and is not a directory"),
    ("/proc/nope/o.pt", "cannot create output directory"),
    ("{work}/adir", "adir"),
])
def test_unwritable_output(adv, work, out, text):
    (work / "afile").write_text("x")
    (work / "adir").mkdir()
    adv.bad(["train", *MLP, *FAST, "--out", out.replace("{work}", str(work))], text, dirs=(work,))


def test_output_directory_with_force_is_refused_cleanly(adv, work):
    (work / "adir").mkdir()
    adv.bad(["train", *MLP, *FAST, "--force", "--out", work / "adir"], "adir", "is a directory", dirs=(work,))


def test_failure_mid_write_leaves_no_file(adv, work, monkeypatch):
    """torch.save dies after writing half of the archive: no checkpoint, no temp file, old file kept."""
    real_save = torch.save

    def half_save(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)
        if hasattr(f, "truncate"):
            f.flush()
            f.truncate(100)
        else:
            with open(f, "r+b") as fh:
                fh.truncate(100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_save)
    out = work / "o.pt"
    out.write_bytes(b"previous")
    res = adv.run(["train", *MLP, *FAST, "--force", "--out", out])
    adv.assert_clean_failure(res, "No space left on device")
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in work.iterdir()) == ["o.pt"]


def test_interrupt_leaves_no_file(adv, work, monkeypatch):
    import spikeport.training.session as session

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(session, "train", interrupted)
    res = adv.run(["train", *MLP, *FAST, "--out", work / "o.pt"])
    assert res.code == 130 and res.err.strip() == "spikeport train: interrupted"
    assert list(work.iterdir()) == []


# ------------------------------------------------------------------ values torch would choke on


@pytest.mark.parametrize("opts,text", [
    pytest.param([*MLP, "--weight-decay", "-1", *FAST], "weight decay must be a finite number >= 0, got -1.0",
                 id="weight_decay_negative"),
    pytest.param([*MLP, "--weight-decay", "nan", *FAST], "weight decay", id="weight_decay_nan"),
    pytest.param([*MLP, "--optimizer", "sgd", "--momentum", "-3", *FAST], "momentum must be a finite number >= 0",
                 id="momentum_negative"),
    pytest.param([*MLP, "--seed", str(2**64), *FAST], f"seed must be an integer in [0, {2**32 - 1}]",
                 id="seed_overflow"),
    pytest.param([*MLP, "--seed", "-1", *FAST], "got -1", id="seed_negative"),
    pytest.param(["spiking_cnn_digits", "--model-arg", "input_shape=(3,32,32)", *FAST],
                 "input_shape=(3, 32, 32) does not match dataset 'digits' samples (1, 8, 8)",
                 id="input_shape_mismatch"),
    pytest.param(["spiking_cnn_digits", "--model-arg", "num_classes=3", *FAST],
                 "num_classes=3 is too small for dataset 'digits' (10 classes)", id="num_classes_too_small"),
])
def test_unvalidated_options_crash(adv, work, opts, text):
    adv.bad(["train", *opts, "--out", work / "o.pt"], text, dirs=(work,))
