"""`spikeport eval` against hostile checkpoints, options and dataset folders.

Every case must fail cleanly: exit != 0, one line naming the file and the fix,
no traceback, nothing written. A pickled-code checkpoint must be refused
without running it (a marker file proves nothing ran).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

# (checkpoint in assets, text the one-line message must contain besides the file name)
BAD_CHECKPOINTS = [
    ("missing.pt", "no such checkpoint file"),
    ("empty.pt", "empty file"),
    ("trunc.pt", "truncated or corrupt"),
    ("garbage.pt", "not a spikeport checkpoint"),
    ("text.pt", "not a spikeport checkpoint"),
    ("adir.pt", "no such checkpoint file"),
    ("bare_state_dict.pt", "--weights"),
    ("evil.pt", "refused"),
    ("nan.pt", "NaN or Inf"),
    ("inf.pt", "NaN or Inf"),
    ("shape.pt", "do not fit"),
    ("missing_key.pt", "do not fit"),
    ("sd_list.pt", "not a dict of tensors"),
    ("no_format.pt", "missing format tag"),
    ("version.pt", "version 99"),
    ("no_timesteps.pt", "missing keys ['timesteps']"),
    ("t_zero.pt", "timesteps=0"),
    ("t_str.pt", "timesteps='4'"),
    ("shape_neg.pt", "input_shape"),
    ("shape_other.pt", "(3, 32, 32)"),
    ("model_unknown.pt", "unknown model 'nosuchmodel'"),
    ("kwargs_bad.pt", "cannot rebuild model"),
    ("kwargs_list.pt", "model_kwargs is not a dict"),
    ("encoder_bad.pt", "encoder='bogus'"),
    ("dataset_none.pt", "pass --dataset"),
]


@pytest.mark.parametrize("name,text", BAD_CHECKPOINTS, ids=[c[0] for c in BAD_CHECKPOINTS])
def test_bad_checkpoint(adv, assets, work, name, text):
    adv.bad(["eval", assets / name], name, text, dirs=(assets, work))
    assert not (assets / "PWNED").exists()


def test_pickled_code_never_runs(adv, assets, work):
    import torch

    marker = work / "marker"
    evil = work / "evil2.pt"
    torch.save({"format": "spikeport-checkpoint", "version": 1, "state_dict": {"w": adv.Evil(marker)}}, evil)
    res = adv.bad(["eval", evil], "evil2.pt", "refused", "could run code")
    assert not marker.exists(), "loading the checkpoint executed pickled code"
    assert res.code == 2


def test_unknown_dataset_in_checkpoint_names_dataset(adv, assets, work):
    adv.bad(["eval", assets / "dataset_unknown.pt"], "unknown dataset 'mnist'", dirs=(work,))


@pytest.mark.parametrize("opts,text", [
    (["-T", "0"], "timesteps must be a positive integer, got 0"),
    (["-T", "-7"], "got -7"),
    (["-T", str(10**9)], "GiB"),
    (["--batch-size", "0"], "--batch-size must be positive"),
    (["--batch-size", "-5"], "--batch-size must be positive"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["--dataset", "cifar10"], "pass data_dir"),
    (["--dataset", "cifar10", "--data-dir", "/nonexistent/cifar"], "/nonexistent/cifar"),
])
def test_bad_options(adv, assets, work, opts, text):
    adv.bad(["eval", assets / "tiny.pt", *opts], text, dirs=(assets, work))


@pytest.mark.parametrize("opts,text", [
    (["--device", "bogus"], "unknown device 'bogus'"),
    (["--device", "meta"], "not supported"),
    (["-T", "abc"], "invalid int value"),
    (["--batch-size", "1.5"], "invalid int value"),
    ([], "required"),
])
def test_argparse_level_errors(adv, assets, work, opts, text):
    args = ["eval", *opts] if not opts else ["eval", assets / "tiny.pt", *opts]
    adv.bad(args, text, dirs=(work,), argparse_error=True)


# ------------------------------------------------------------------ hostile dataset folders


def _cifar_dir(root, test_batch: bytes):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    (d / "test_batch").write_bytes(test_batch)
    return root


def _rgb_checkpoint(adv, assets, work):
    return adv.write_variant(assets / "tiny.pt", work / "rgb.pt", input_shape=[3, 32, 32], dataset="cifar10")


@pytest.mark.parametrize("kind", ["empty", "garbage", "truncated", "evil", "wrong_dtype", "wrong_labels"])
def test_hostile_cifar_batch(adv, assets, work, tmp_path, kind):
    marker = tmp_path / "cifar_pwned"
    good = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    blobs = {
        "empty": b"",
        "garbage": bytes(range(256)),
        "truncated": pickle.dumps(good, protocol=2)[:100],
        "evil": pickle.dumps({b"data": adv.Evil(marker)}, protocol=2),
        "wrong_dtype": pickle.dumps({b"data": np.zeros((2, 3072), np.float64), b"labels": [0, 1]}, protocol=2),
        "wrong_labels": pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 99]}, protocol=2),
    }
    data_dir = _cifar_dir(tmp_path / "data", blobs[kind])
    ck = _rgb_checkpoint(adv, assets, work)
    adv.bad(["eval", ck, "--data-dir", data_dir], "test_batch", dirs=(data_dir, work))
    assert not marker.exists(), "the CIFAR reader executed pickled code"


def test_dataset_shape_mismatch_is_named(adv, assets, work, tmp_path):
    good = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    data_dir = _cifar_dir(tmp_path / "data", pickle.dumps(good, protocol=2))
    adv.bad(["eval", assets / "tiny.pt", "--dataset", "cifar10", "--data-dir", data_dir],
            "tiny.pt", "(1, 8, 8)", "(3, 32, 32)", dirs=(work,))
