"""The ``spikeport`` command line: a thin dispatcher over library code.

Each sub-command lives in :mod:`spikeport.commands.<name>` and provides
``add_parser(subparsers)`` (which sets ``func=run``) and ``run(args) -> int``.
User errors (:class:`spikeport.errors.SpikeportError`) print one line and exit
non-zero; ``--debug`` (anywhere on the line) shows tracebacks instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from spikeport import __version__
from spikeport._imports import optional_import
from spikeport.errors import SpikeportError

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = ("zoo", "ops", "train", "eval", "demo", "inspect", "energy", "compare", "export", "verify", "run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikeport",
        description="Trace, analyse and export spiking neural networks (Lava/Loihi, ONNX, NIR).",
        epilog="Add --debug anywhere to see full tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"spikeport {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        mod = optional_import(f"spikeport.commands.{name}")
        if mod is not None:  # None: a command not present in this build
            mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except SpikeportError as e:
        if debug:
            raise
        print(f"spikeport {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"spikeport {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `spikeport zoo | head`: stop quietly, as other Unix tools do
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
        return 141
    except OSError as e:
        if debug:
            raise
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"spikeport {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug: keep it to one line unless --debug
        if debug:
            raise
        print(f"spikeport {args.command}: internal error: {type(e).__name__}: {e} (rerun with --debug for the "
              "traceback and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
