"""`uamrn merge`: join the run directories of a sharded LOSO run into one."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="merge the run directories of sharded LOSO runs (uamrn evaluate --shard I/N)",
        description=(
            "Copy the finished folds of each shard's run directory into --out, check that all "
            "shards used the same config and data, and write summary.json as a single run would. "
            "Rerun it as more shards finish."
        ),
    )
    parser.add_argument("shard_dirs", nargs="+", type=Path, metavar="SHARD_DIR", help="--out folder of one shard run")
    parser.add_argument("--out", type=Path, required=True, help="merged run directory (created when absent)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from uamrn.commands.evaluate import format_summary
    from uamrn.train.merge import merge_runs

    summary = merge_runs(args.shard_dirs, args.out)
    print(format_summary(summary, args.out))
    return 0
