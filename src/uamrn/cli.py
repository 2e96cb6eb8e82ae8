"""The ``uamrn`` command: one sub-command per module in ``uamrn.commands``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pydantic import ValidationError

from uamrn import __version__
from uamrn.config import format_validation_error

# Each module defines ``register(subparsers)``, which adds its parser and sets
# ``func`` to a callable taking the parsed namespace and returning an exit code.
COMMANDS = ("evaluate", "demo", "predict", "magnify", "ablate", "report", "merge")


class UsageError(Exception):
    """Invalid user input: printed as one line with its fix, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uamrn",
        description="Micro-expression recognition with UAMRN: LOSO evaluation, demo and inference.",
    )
    parser.add_argument("--version", action="version", version=f"uamrn {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"uamrn.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args) or 0)
    except ValidationError as err:
        # Checked before ValueError, its base class, so that the pydantic dump becomes one
        # line per invalid value.
        print(f"uamrn {args.command}: error: invalid settings: {format_validation_error(err)}", file=sys.stderr)
        return 2
    except (UsageError, FileNotFoundError, ValueError) as err:
        # Input problems get one readable line; programming errors keep their traceback.
        print(f"uamrn {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
        # A path given by the user has the wrong kind or permissions, e.g. --out names a file.
        path = err.filename if err.filename is not None else "a path"
        print(
            f"uamrn {args.command}: error: {err.strerror or err}: {path}; check the paths given "
            "(an output folder must not be an existing file, and must be writable)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"uamrn {args.command}: interrupted; finished folds are kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
