"""Shared helpers for the adversarial suite: in-process CLI runs, clean-failure checks, tiny fixtures.

A *clean failure* is what every bad input must produce: a non-zero exit code,
exactly one line on stderr of the form ``spikeport <cmd>: error: ...`` (no
traceback, no "internal error"), and nothing new in the working folders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from spikeport.checkpoint import CheckpointInfo, save_checkpoint
from spikeport.cli import main

REPO = Path(__file__).resolve().parents[2]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_main(capsys, args: list[str]) -> CliResult:
    """``spikeport.cli.main(args)`` in-process; argparse's ``SystemExit`` becomes the exit code."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse usage errors
        code = e.code if isinstance(e.code, int) else 1
    cap = capsys.readouterr()
    return CliResult(code, cap.out, cap.err)


def listing(*dirs: Path) -> list[tuple[str, int]]:
    """Every path (hidden temp files included) under ``dirs`` with its size, for before/after comparisons."""
    out = []
    for d in dirs:
        for root, subdirs, files in os.walk(d):
            for name in sorted(subdirs + files):
                p = Path(root) / name
                out.append((str(p), p.stat().st_size if p.is_file() else -1))
    return sorted(out)


def assert_clean_failure(res: CliResult, *must_contain: str, argparse_error: bool = False) -> None:
    """Exit code != 0, one stderr line ``spikeport <cmd>: error: ...`` containing every ``must_contain``."""
    assert res.code != 0, f"exit code 0 for a bad input; stderr={res.err!r}"
    assert "Traceback" not in res.err, res.err
    lines = [ln for ln in res.err.strip().splitlines() if ln.strip()]
    assert lines, "no error message on stderr"
    if argparse_error:  # argparse prints its usage block, then one error line
        msg = lines[-1]
    else:
        assert len(lines) == 1, f"expected one line, got {len(lines)}: {res.err!r}"
        msg = lines[0]
    assert "internal error" not in msg, f"unhandled exception: {msg}"
    assert msg.startswith("spikeport") and ": error: " in msg, msg
    for text in must_contain:
        assert text in msg, f"{text!r} not in {msg!r}"


def assert_bad_input(capsys, args: list[str], *must_contain: str, dirs: tuple[Path, ...] = (),
                     argparse_error: bool = False) -> CliResult:
    """Run ``args``; require a clean failure that writes nothing under ``dirs``."""
    before = listing(*dirs)
    res = run_main(capsys, args)
    assert_clean_failure(res, *must_contain, argparse_error=argparse_error)
    assert listing(*dirs) == before, "a failed command changed the output folder"
    return res


def tiny_payload(ckpt: Path) -> dict:
    """The plain dict stored in a checkpoint (to build malformed variants of it)."""
    return torch.load(ckpt, map_location="cpu", weights_only=True)


def write_variant(ckpt: Path, dest: Path, **changes) -> Path:
    """Save a copy of ``ckpt``'s payload with top-level keys replaced (``None`` deletes a key)."""
    payload = tiny_payload(ckpt)
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    torch.save(payload, dest)
    return dest


class Evil:
    """Pickles to ``os.system("touch <marker>")``: loading it with plain pickle would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="session")
def assets(tmp_path_factory) -> Path:
    """A read-only folder of inputs: a tiny valid checkpoint and hostile variants of it.

    ``tiny.pt`` is an untrained ``spiking_mlp_digits`` (hidden 8, weights x4 so it
    spikes) saved as if trained on digits at T=2, so eval/energy on it take well
    under a second.
    """
    d = tmp_path_factory.mktemp("assets")
    torch.manual_seed(0)
    from spikeport.models import create_model

    model = create_model("spiking_mlp_digits", hidden=(8,))
    with torch.no_grad():  # larger weights than the init so that the hidden layer fires (~10-40 %)
        for prm in model.parameters():
            prm.mul_(4.0)
    info = CheckpointInfo(model="spiking_mlp_digits", model_kwargs={"hidden": [8]}, timesteps=2,
                          input_shape=(1, 8, 8), encoder="direct", dataset="digits", metrics={"test_acc": 0.1})
    ck = save_checkpoint(d / "tiny.pt", model, info)
    raw = ck.read_bytes()
    (d / "empty.pt").write_bytes(b"")
    (d / "trunc.pt").write_bytes(raw[: len(raw) // 2])
    (d / "garbage.pt").write_bytes(bytes(range(256)) * 4)
    (d / "text.pt").write_text("not a checkpoint\n")
    (d / "adir.pt").mkdir()
    torch.save({"features.0.weight": torch.zeros(3)}, d / "bare_state_dict.pt")
    torch.save({"format": "spikeport-checkpoint", "payload": Evil(d / "PWNED")}, d / "evil.pt")
    sd = tiny_payload(ck)["state_dict"]
    first = next(iter(sd))
    nan_sd = {k: v.clone() for k, v in sd.items()}
    nan_sd[first].view(-1)[0] = float("nan")
    inf_sd = {k: v.clone() for k, v in sd.items()}
    inf_sd[first].view(-1)[-1] = float("inf")
    write_variant(ck, d / "nan.pt", state_dict=nan_sd)
    write_variant(ck, d / "inf.pt", state_dict=inf_sd)
    write_variant(ck, d / "shape.pt", state_dict={k: v[..., :1].clone() for k, v in sd.items()})
    write_variant(ck, d / "missing_key.pt", state_dict=dict(list(sd.items())[1:]))
    write_variant(ck, d / "sd_list.pt", state_dict=[1, 2])
    write_variant(ck, d / "no_format.pt", format=None)
    write_variant(ck, d / "version.pt", version=99)
    write_variant(ck, d / "no_timesteps.pt", timesteps=None)
    write_variant(ck, d / "t_zero.pt", timesteps=0)
    write_variant(ck, d / "t_str.pt", timesteps="4")
    write_variant(ck, d / "t_huge.pt", timesteps=10**12)
    write_variant(ck, d / "shape_neg.pt", input_shape=[1, -8, 8])
    write_variant(ck, d / "shape_other.pt", input_shape=[3, 32, 32])
    write_variant(ck, d / "model_unknown.pt", model="nosuchmodel")
    write_variant(ck, d / "kwargs_bad.pt", model_kwargs={"hidden": "abc"})
    write_variant(ck, d / "kwargs_list.pt", model_kwargs=[1])
    write_variant(ck, d / "encoder_bad.pt", encoder="bogus")
    write_variant(ck, d / "dataset_unknown.pt", dataset="mnist")
    write_variant(ck, d / "dataset_none.pt", dataset="")
    for p in d.iterdir():
        if p.is_file():
            p.chmod(0o444)
    return d


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """An empty working folder (also the cwd) for command outputs."""
    w = tmp_path / "work"
    w.mkdir()
    monkeypatch.chdir(w)
    return w


_GUARD = textwrap.dedent("""
    import contextlib, io, json, resource, signal, sys, time, warnings
    warnings.filterwarnings("ignore")
    limit = int(sys.argv[1]) << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    class Hang(BaseException):
        pass

    def on_alarm(*_):
        raise Hang()

    signal.signal(signal.SIGALRM, on_alarm)
    from spikeport.cli import main
    results = []
    for argv in json.loads(sys.argv[3]):
        err, t0 = io.StringIO(), time.time()
        signal.alarm(int(sys.argv[2]))
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        except Hang:
            code = "hang"
        except SystemExit as e:
            code = e.code
        finally:
            signal.alarm(0)
        results.append({"code": code, "err": err.getvalue(), "seconds": round(time.time() - t0, 2)})
    print(json.dumps(results))
""")


def guarded_cli(argvs: list[list[str]], cwd: Path, mem_gib: int = 5, per_run_s: int = 15) -> list[dict]:
    """Run several CLI invocations in ONE child process under a memory cap and a per-run alarm.

    Used for inputs that could exhaust memory or run forever (huge T): the
    child's address space is capped at ``mem_gib`` GiB so a missing guard shows
    up as an allocation failure ("internal error") instead of the OOM killer,
    and a run longer than ``per_run_s`` seconds is reported as ``"hang"``.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-c", _GUARD, str(mem_gib), str(per_run_s), json.dumps(argvs)],
                       cwd=cwd, capture_output=True, text=True, timeout=per_run_s * len(argvs) + 60, env=env)
    assert p.returncode == 0, f"guard process died (rc {p.returncode}): {p.stderr[-2000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_subprocess(args: list[str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    """``python -m spikeport.cli ARGS`` for real exit codes."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "spikeport.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


class Adv:
    """The helpers above, bound to one test's ``capsys`` (test modules cannot import conftest)."""

    Evil = Evil
    listing = staticmethod(listing)
    write_variant = staticmethod(write_variant)
    tiny_payload = staticmethod(tiny_payload)
    guarded_cli = staticmethod(guarded_cli)
    run_subprocess = staticmethod(run_subprocess)
    assert_clean_failure = staticmethod(assert_clean_failure)

    def __init__(self, capsys) -> None:
        self.capsys = capsys

    def run(self, args: list) -> CliResult:
        return run_main(self.capsys, args)

    def bad(self, args: list, *must_contain: str, dirs: tuple[Path, ...] = (), argparse_error: bool = False):
        return assert_bad_input(self.capsys, args, *must_contain, dirs=dirs, argparse_error=argparse_error)


@pytest.fixture
def adv(capsys) -> Adv:
    return Adv(capsys)


@pytest.fixture(scope="session")
def guarded():
    """:func:`guarded_cli`, for module-scoped fixtures."""
    return guarded_cli
