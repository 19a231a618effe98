"""The ``recogan`` command line: ``recogan <command> --help`` for each command.

Each command lives in its own module with a ``register(subparsers)`` function; add new ones
to ``COMMANDS``. Modules are imported only when the CLI runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: command name → module defining ``register(subparsers)``.
COMMANDS = {
    "info": "recogan.cli._info",
    "evaluate": "recogan.cli._evaluate",
}


def build_parser() -> argparse.ArgumentParser:
    from recogan import __version__

    parser = argparse.ArgumentParser(
        prog="recogan", description="GAN-augmented product recommendation engine."
    )
    parser.add_argument("--version", action="version", version=f"recogan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, KeyError, IndexError) as e:
        # errors a user can act on: one clear line, no traceback
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"recogan {args.command}: error: {msg}", file=sys.stderr)
        return 1
