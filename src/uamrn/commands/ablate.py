"""`uamrn ablate`: LOSO runs of UAMRN variants over several seeds, then the report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from uamrn.cli import UsageError
from uamrn.commands.evaluate import split_option_list
from uamrn.config import PRESETS

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from uamrn.commands.evaluate import DATASETS
    from uamrn.train.ablation import DEFAULT_VARIANTS, VARIANTS

    variant_help = "; ".join(f"{v.name}: {v.description}" for v in VARIANTS.values())
    parser = subparsers.add_parser(
        "ablate",
        help="ablation study: LOSO runs of each variant with several seeds, then a report",
        description=(
            "Run every variant x seed as a LOSO run in OUT/<variant>/seed<k>/ (the same runs as "
            "`uamrn evaluate`, resumed fold by fold when the command is repeated), then write the "
            f"report to OUT/report. Variants: {variant_help}."
        ),
    )
    parser.add_argument("--dataset", choices=DATASETS, default=None, help="database to read (default megc2019)")
    parser.add_argument("--root", type=Path, default=None, help="folder of the database files (required)")
    parser.add_argument("--databases", default=None, help="comma-separated parts of a composite set, e.g. casme2,smic")
    parser.add_argument("--out", type=Path, required=True, help="ablation folder; reuse it to resume")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds per variant (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="first seed; the seeds are SEED, SEED+1, ... (default 0)")
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated variants (default {','.join(DEFAULT_VARIANTS)}); full is always run",
    )
    parser.add_argument("--config", type=Path, default=None, help="YAML run config of the full model")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="model size and recipe (default cpu)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs per fold")
    parser.add_argument("--folds", default=None, help="comma-separated test subjects to run (default all)")
    parser.add_argument("--input", choices=("flow", "apex+flow", "frames"), default=None, help="model input (default flow)")
    parser.add_argument("--allow-missing", action="store_true", help="skip and report listed samples whose files are missing")
    parser.add_argument("--classes", default=None, help="class set of a raw database, as for uamrn evaluate")
    parser.add_argument("--annotations", type=Path, default=None, help="coding sheet of a raw database, as for uamrn evaluate")
    parser.add_argument("--apex", choices=("auto", "middle", "spotted"), default=None, help="apex rule of a raw database, as for uamrn evaluate")
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache folder (default: as uamrn evaluate)")
    parser.add_argument(
        "--jobs", type=int, default=1,
        help="folds trained at once in worker processes, as for uamrn evaluate (default 1)",
    )
    parser.add_argument("--no-report", action="store_true", help="run the variants without writing the report")
    parser.add_argument(
        "--sample",
        metavar="DATABASE/SUBJECT/CLIP",
        help="sample drawn in the report's per-sample figures (default: the first test sample)",
    )
    parser.set_defaults(func=run)


def _base_config(args: argparse.Namespace):
    """Build the full model's config with the same rules as ``uamrn evaluate``."""
    from uamrn.commands.evaluate import build_config

    evaluate_args = argparse.Namespace(
        config=args.config,
        preset=args.preset,
        dataset=args.dataset,
        root=args.root,
        databases=args.databases,
        allow_missing=args.allow_missing,
        input=args.input,
        classes=args.classes,
        annotations=args.annotations,
        apex=args.apex,
        epochs=args.epochs,
        seed=args.seed,
        no_uncertainty=False,
        attention=None,
        no_magnification=False,
    )
    return build_config(evaluate_args)


def run(args: argparse.Namespace) -> int:
    from uamrn.commands.evaluate import default_cache_dir
    from uamrn.train.ablation import parse_variants, run_ablation

    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    try:
        variants = parse_variants(args.variants)
    except ValueError as err:
        raise UsageError(f"--variants: {err}") from err

    base = _base_config(args)
    seeds = list(range(args.seed, args.seed + args.seeds))
    run_ablation(
        base,
        args.out,
        variants,
        seeds,
        folds=split_option_list(args.folds, "--folds"),
        cache_dir=args.cache_dir or default_cache_dir(),
        final_model=False,
        jobs=args.jobs,
    )

    if not args.no_report:
        from uamrn.report.write import write_report

        files = write_report([args.out], args.out / "report", sample=args.sample)
        print(f"report: {files.markdown}")
    return 0
