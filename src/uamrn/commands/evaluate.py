"""`uamrn evaluate`: leave-one-subject-out evaluation of UAMRN on a database."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from pydantic import ValidationError

from uamrn.cli import UsageError
from uamrn.config import PRESETS, RunConfig, format_validation_error

__all__ = ["build_config", "default_cache_dir", "format_summary", "register", "run"]

logger = logging.getLogger(__name__)

DATASETS = ("megc2019", "casme2", "samm", "smic", "casme3", "demo")
RAW_DATASETS = ("casme2", "samm", "smic", "casme3")

CPU_PRESET = {
    "model": {"d_model": 64, "mc_samples": 2},
    "train": {"epochs": 10, "lr_step": 7, "threads": 1},
}
"""Overrides of the ``cpu`` preset (the default) on top of ``uamrn.config.PRESETS["cpu"]``.

Width 64, 2 Monte-Carlo passes and 10 epochs (learning rate x0.1 after epoch 7) are sized so
that the 40-fold MEGC2019 LOSO needs well under 30 minutes of one CPU core. One thread per
process avoids the slowdown of two threads competing with other processes for two cores.
"""


MAX_SKIPPED_LINES = 5
"""Clips skipped in preprocessing that the summary table lists one per line; the rest are counted."""


def default_cache_dir() -> Path:
    """Return the feature cache folder: ``$XDG_CACHE_HOME/uamrn/features`` or ``~/.cache/uamrn/features``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "uamrn" / "features"


def split_option_list(text: str | None, option: str) -> list[str] | None:
    """Split a comma-separated option value; ``None`` (option not given) means all."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        # An empty value, e.g. from an unset shell variable, must not silently select everything.
        raise UsageError(f"{option} {text!r} names nothing; give comma-separated names, or leave {option} out to use all")
    return items


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="leave-one-subject-out evaluation on a database",
        description=(
            "Train one model per test subject (LOSO), write predictions, fold models and summary.json "
            "to --out, then train a final model on all samples. Rerunning the same command resumes."
        ),
    )
    parser.add_argument("--dataset", choices=DATASETS, default=None, help="database to read (default megc2019)")
    parser.add_argument("--root", type=Path, default=None, help="folder of the database files (required)")
    parser.add_argument("--databases", default=None, help="comma-separated parts of a composite set, e.g. casme2,smic")
    parser.add_argument("--out", type=Path, required=True, help="run directory for results; reuse it to resume")
    parser.add_argument(
        "--config", type=Path, default=None,
        help="YAML run config (groups data, sequence, frontend, model, train). With --config the cpu preset "
        "is not applied: unset values take the config defaults (e.g. d_model 128, 40 epochs) unless --preset "
        "is also given. Options given here override both",
    )
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default=None,
        help="model size and recipe (default cpu without --config); with --config it replaces the file's model "
        "group (cpu also sets epochs, lr_step and threads)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs per fold")
    parser.add_argument("--seed", type=int, default=None, help="base seed; each fold derives its own from it")
    parser.add_argument("--folds", default=None, help="comma-separated test subjects to run now (default all)")
    parser.add_argument("--no-uncertainty", action="store_true", help="plain cross-entropy instead of the uncertainty-weighted loss")
    parser.add_argument("--attention", choices=("sparse", "full"), default=None, help="LSH-sparse (default) or full attention")
    parser.add_argument("--no-magnification", action="store_true", help="one amplification factor (sequence length 1)")
    parser.add_argument("--input", choices=("flow", "apex+flow", "frames"), default=None, help="model input (default flow; frames for casme2, samm, smic, casme3)")
    parser.add_argument("--allow-missing", action="store_true", help="skip and report listed samples whose files are missing")
    parser.add_argument(
        "--classes", default=None,
        help="class set of a raw database: 5class (casme2, samm), 3class (smic), 6class (casme3) or composite "
        "(negative/positive/surprise); default: the UAMRN paper's set",
    )
    parser.add_argument(
        "--annotations", type=Path, default=None,
        help="coding sheet or class list of a raw database (default: searched in --root and its sub-folders)",
    )
    parser.add_argument(
        "--apex", choices=("auto", "middle", "spotted"), default=None,
        help="apex frame of a raw database: auto (annotated, else middle), middle, or spotted "
        "(largest difference from the onset); default auto",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"feature cache folder (default {default_cache_dir()})")
    parser.add_argument("--no-cache", action="store_true", help="compute features without reading or writing the cache")
    parser.add_argument("--no-final-model", action="store_true", help="skip the model trained on all samples (RUN_DIR/final)")
    parser.add_argument(
        "--jobs", type=int, default=1,
        help="folds trained at once in worker processes, each with cores // jobs torch threads (default 1)",
    )
    parser.add_argument(
        "--shard", default=None, metavar="I/N",
        help="run only shard I of N (1-based) of the folds, e.g. 2/4 or ${SLURM_ARRAY_TASK_ID}/4; "
        "join the shards' --out folders with uamrn merge",
    )
    parser.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> RunConfig:
    """Compose the run config: ``--config`` file (or defaults), then ``--preset``, then single options.

    Without ``--config`` the ``cpu`` preset applies unless ``--preset`` names another.

    Raises:
        UsageError: No data root is given, or an option value is invalid.
    """
    raw = RunConfig.from_yaml(args.config).model_dump(mode="json") if args.config else RunConfig().model_dump(mode="json")

    preset = args.preset or (None if args.config else "cpu")
    if preset:
        raw["model"] = PRESETS[preset]().model_dump(mode="json")
        if preset == "cpu":
            raw["model"].update(CPU_PRESET["model"])
            raw["train"].update(CPU_PRESET["train"])

    data = raw["data"]
    if args.dataset:
        data["dataset"] = args.dataset
    if args.root is not None:
        data["root"] = str(args.root)
    if args.databases is not None:
        data["databases"] = split_option_list(args.databases, "--databases")
    if args.allow_missing:
        data["allow_missing"] = True
    if args.input:
        data["input"] = args.input
    elif data["dataset"] in RAW_DATASETS and data["input"] == "flow":
        # Raw databases provide frames but no flow images, so they default to the frame input.
        data["input"] = "frames"
    if getattr(args, "classes", None):
        data["classes"] = args.classes
    if getattr(args, "annotations", None) is not None:
        data["annotations"] = str(args.annotations)
    if getattr(args, "apex", None):
        data["apex"] = args.apex
    if data.get("root") is None and data["dataset"] != "demo":
        raise UsageError(
            f"no data folder given for {data['dataset']}: pass --root PATH explicitly "
            "(for example --root ../shared/data/megc2019) or set data.root in --config"
        )

    if args.epochs is not None:
        raw["train"]["epochs"] = args.epochs
    if args.seed is not None:
        raw["train"]["seed"] = args.seed
    if args.no_uncertainty:
        raw["model"]["uncertainty"] = False
    if args.attention:
        raw["model"]["attention"] = args.attention
    if args.no_magnification:
        raw["sequence"]["length"] = 1

    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        source = f" with {args.config}" if args.config else ""
        raise UsageError(f"invalid evaluate options{source}: {format_validation_error(err)}") from None


def format_summary(summary: dict, out_dir: Path) -> str:
    """Format the main figures of a summary as a small text table."""
    skipped = summary.get("skipped_samples", {})
    lines = [
        f"{summary['dataset']}: {len(summary['folds_done'])}/{len(summary['folds_expected'])} folds, "
        f"{summary['n_predictions']} of {summary['n_samples']} samples predicted"
        + (f", {len(summary['missing_samples'])} listed samples missing on disk" if summary["missing_samples"] else "")
        + (f", {len(skipped)} skipped in preprocessing" if skipped else ""),
    ]
    for key, reason in list(skipped.items())[:MAX_SKIPPED_LINES]:
        lines.append(f"  {key} skipped in preprocessing: {reason}")
    if len(skipped) > MAX_SKIPPED_LINES:
        lines.append(f"  ... {len(skipped) - MAX_SKIPPED_LINES} more in {Path(out_dir) / 'preprocessing.csv'}")
    lines.append(f"{'':<22}{'UF1':>7}{'UAR':>7}{'acc':>7}{'n':>6}")
    if summary["pooled"] is not None:
        pooled = summary["pooled"]
        lines.append(f"{'pooled':<22}{pooled['uf1']:>7.3f}{pooled['uar']:>7.3f}{pooled['accuracy']:>7.3f}{summary['n_predictions']:>6}")
        for database, part in summary["per_database"].items():
            lines.append(f"{database:<22}{part['uf1']:>7.3f}{part['uar']:>7.3f}{part['accuracy']:>7.3f}{part['n_samples']:>6}")
        mean = summary["per_subject_mean"]
        lines.append(f"{'per-subject mean':<22}{mean['uf1']:>7.3f}{mean['uar']:>7.3f}{mean['accuracy']:>7.3f}{'':>6}")
    if summary["folds_missing"]:
        lines.append(f"folds not run yet: {', '.join(summary['folds_missing'])}")
    lines.append(f"results: {Path(out_dir) / 'summary.json'}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from uamrn.train.loso import evaluate_dataset
    from uamrn.train.parallel import parse_shard

    if args.epochs is not None and args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is an existing file; pass a folder for the run directory")
    folds = split_option_list(args.folds, "--folds")
    cfg = build_config(args)
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    shard = parse_shard(args.shard) if args.shard is not None else None

    summary = evaluate_dataset(
        cfg,
        args.out,
        folds=folds,
        cache_dir=cache_dir,
        final_model=not args.no_final_model,
        jobs=args.jobs,
        shard=shard,
    )
    print(format_summary(summary, args.out))
    return 0
