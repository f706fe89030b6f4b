"""Top-level CLI, `spikeport zoo` and `spikeport demo` against bad arguments and output folders."""

from __future__ import annotations

import pytest

from spikeport.cli import build_parser


def _commands() -> list[str]:
    return list(build_parser()._subparsers._group_actions[0].choices)


def test_no_command_prints_help_and_fails(adv):
    res = adv.run([])
    assert res.code == 2 and "usage: spikeport" in res.err


@pytest.mark.parametrize("args,text", [
    (["nosuchcommand"], "invalid choice"),
    (["--nosuchflag"], "unrecognized arguments"),
    (["zoo", "--nosuchflag"], "unrecognized arguments"),
])
def test_unknown_command_or_flag(adv, work, args, text):
    adv.bad(args, text, dirs=(work,), argparse_error=True)


@pytest.mark.parametrize("command", _commands())
def test_every_command_rejects_unknown_flags_and_writes_nothing(adv, work, command):
    adv.bad([command, "--definitely-not-a-flag"], dirs=(work,), argparse_error=True)


def test_debug_flag_reraises(assets, work):
    from spikeport.cli import main
    from spikeport.errors import CheckpointError

    with pytest.raises(CheckpointError, match="refused"):
        main(["eval", str(assets / "evil.pt"), "--debug"])
    assert not (assets / "PWNED").exists()


# ------------------------------------------------------------------ zoo


@pytest.mark.parametrize("tag", ["nosuchtag", ""])
def test_zoo_unknown_tag(adv, work, tag):
    adv.bad(["zoo", "--tag", tag, "--no-params"], f"no model has tag '{tag}'", "known tags", dirs=(work,))


def test_zoo_known_tag_still_works(adv):
    res = adv.run(["zoo", "--tag", "digits", "--no-params"])
    assert res.code == 0 and "spiking_cnn_digits" in res.out


# ------------------------------------------------------------------ demo


@pytest.mark.parametrize("opts,text", [
    (["-T", "0"], "timesteps must be a positive integer, got 0"),
    (["-T", "-4"], "got -4"),
    (["-T", str(10**9)], "GiB"),
    (["--epochs", "0"], "epochs must be a positive integer"),
    (["--epochs", "-2"], "epochs must be a positive integer"),
])
def test_demo_bad_values_write_nothing(adv, work, opts, text):
    adv.bad(["demo", "--out", work / "d", "--no-progress", *opts], text, dirs=(work,))
    assert not (work / "d").exists()


@pytest.mark.parametrize("opts,text", [
    (["--device", "bogus"], "unknown device 'bogus'"),
    (["-T", "abc"], "invalid int value"),
])
def test_demo_argparse_errors(adv, work, opts, text):
    adv.bad(["demo", "--out", work / "d", *opts], text, dirs=(work,), argparse_error=True)


def test_demo_output_folders(adv, work):
    (work / "full").mkdir()
    (work / "full" / "keep.txt").write_text("mine")
    (work / "afile").write_text("x")
    adv.bad(["demo", "--out", work / "full", "--no-progress"], "full", "--force", dirs=(work,))
    assert (work / "full" / "keep.txt").read_text() == "mine"
    adv.bad(["demo", "--out", work / "afile", "--no-progress"], "afile", dirs=(work,))
    adv.bad(["demo", "--out", work / "afile" / "sub", "--no-progress"], "afile/sub", dirs=(work,))
    adv.bad(["demo", "--out", "/proc/spikeport-demo", "--no-progress"], "/proc/spikeport-demo", dirs=(work,))
