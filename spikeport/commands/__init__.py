"""CLI sub-commands; each module provides ``add_parser(subparsers)`` and ``run(args)``."""
