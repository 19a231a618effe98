"""The ``recogan`` command line: ``recogan <command> --help`` for each command.

Each command lives in its own module with a ``register(subparsers)`` function; add new ones
to ``COMMANDS``. This package is the top layer: it imports every other one (``import recogan``
itself stays cheap).
"""

from __future__ import annotations

import argparse
import logging
import sys

from recogan import __version__
from recogan.cli import _batch, _catalog, _evaluate, _info, _recommend, _train

#: command name → module defining ``register(subparsers)``.
COMMANDS = {
    "info": _info,
    "evaluate": _evaluate,
    "train": _train,
    "recommend": _recommend,
    "batch-score": _batch,
    "catalog": _catalog,
}


#: Failures a user can act on (bad input, missing files, permissions, a full disk, a missing
#: optional dependency); each command raises them with a message naming the problem.
USER_ERRORS = (ValueError, KeyError, IndexError, TypeError, OSError, RuntimeError, ImportError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recogan", description="GAN-augmented product recommendation engine."
    )
    parser.add_argument("--version", action="version", version=f"recogan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        module.register(sub)
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
    except KeyboardInterrupt:
        print(f"recogan {args.command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        # errors a user can act on: one clear line, no traceback
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"recogan {args.command}: error: {_one_line(msg)}", file=sys.stderr)
        if args.verbose:
            logging.getLogger("recogan.cli").exception("details")
        return 1
    except Exception as e:
        # a bug or an unforeseen failure: still one line; the traceback with --verbose
        print(
            f"recogan {args.command}: internal error: {type(e).__name__}: {_one_line(e)} "
            "(re-run with --verbose for the traceback)",
            file=sys.stderr,
        )
        if args.verbose:
            logging.getLogger("recogan.cli").exception("traceback")
        return 2


def _one_line(msg) -> str:
    return " ".join(str(msg).split())
