"""Real processes: exit codes, a closed stdout pipe, and huge T under a memory cap.

Kept to three child processes (the rest of the suite runs ``main`` in-process):
torch's import dominates each one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_real_exit_code_and_single_line(adv, assets, work):
    p = adv.run_subprocess(["eval", assets / "evil.pt"], work)
    assert p.returncode == 2
    evil = assets / "evil.pt"
    assert p.stderr.strip().splitlines() == [
        f"spikeport eval: error: {evil}: refused: the file holds pickled Python objects, not plain weights (loading "
        "it could run code); if it is a whole model you saved yourself (torch.save(model)) and you trust it, re-save "
        f"its weights once, in Python where its classes import: `m = torch.load(\"{evil}\", weights_only=False)` "
        "then `torch.save(m.state_dict(), \"evil.weights.pt\")`; then pass file.py:factory --weights evil.weights.pt"]
    assert p.stdout == ""
    assert not (assets / "PWNED").exists() and list(work.iterdir()) == []


def test_closed_stdout_pipe_is_quiet(work):
    """`spikeport zoo | head -0`: no 'Broken pipe' error and no 'Exception ignored' noise."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-c", "import sys, spikeport.cli as c; "
                             "sys.stdout.flush(); sys.exit(c.main(['zoo', '--tag', 'digits']))"],
                            cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader goes away before anything is written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""


# ------------------------------------------------------------------ huge T in one capped child process

HUGE = [
    ("eval_1e9", ["eval", "{assets}/tiny.pt", "-T", str(10**9)]),
    ("energy_1e9", ["energy", "{assets}/tiny.pt", "-T", str(10**9), "--samples", "2", "--no-progress", "--out",
                    "rep_a"]),
    ("eval_1e5", ["eval", "{assets}/tiny.pt", "-T", "100000"]),
    ("train_1e5", ["train", "spiking_mlp_digits", "--model-arg", "hidden=(4,)", "-T", "100000", "--epochs", "1",
                   "--no-progress", "--out", "big.pt"]),
    # a batch of 64 at T=1e5 holds ~1e5 x 64 x 154 activations (~7 GiB when recorded); with 2 samples the same
    # run needs ~0.1 GiB and is legitimate (its old 21.7 GB OOM was the heatmap figure growing 0.6 inch per step)
    ("energy_1e5", ["energy", "{assets}/tiny.pt", "-T", "100000", "--samples", "64", "--no-progress", "--out",
                    "rep_b"]),
]


@pytest.fixture(scope="module")
def huge_t(assets, guarded, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("huge_t")
    argvs = [[a.replace("{assets}", str(assets)) for a in argv] for _, argv in HUGE]
    results = guarded(argvs, cwd, mem_gib=4, per_run_s=10)
    return {name: res for (name, _), res in zip(HUGE, results, strict=False)}, cwd


@pytest.mark.parametrize("name", ["eval_1e9", "energy_1e9"])
def test_absurd_t_refused_with_memory_estimate(huge_t, name):
    results, cwd = huge_t
    res = results[name]
    assert res["code"] == 2, res
    assert "GiB" in res["err"] and "T=1000000000" in res["err"] and res["err"].count("\n") == 1
    assert res["seconds"] < 60
    assert not (cwd / "rep_a").exists()


@pytest.mark.parametrize("name", ["eval_1e5", "train_1e5", "energy_1e5"])
def test_large_t_refused_with_memory_estimate(huge_t, name):
    results, cwd = huge_t
    res = results[name]
    assert res["code"] == 2, res
    assert "GiB" in res["err"] and "internal error" not in res["err"]
    assert not (cwd / "big.pt").exists() and not (cwd / "rep_b").exists()
