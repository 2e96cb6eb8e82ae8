"""`uamrn demo`: the whole pipeline on the bundled demo set, with and without magnification.

The demo generates synthetic onset/apex pairs from the bundled FRLL faces
(``uamrn.data.demo``) and runs the full pipeline with LOSO over subjects: face crop,
magnified sequence (32 factors from 2 to 13), frozen mini_xception features and UAMRN. It
then runs the same with one factor of 0, which leaves the apex frame as it is. It prints UF1
and UAR of both and writes the run directories and a report under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

from uamrn.cli import UsageError
from uamrn.config import DataConfig, ModelConfig, RunConfig, SequenceConfig, TrainConfig

__all__ = ["DEMO_VARIANTS", "demo_configs", "register", "run"]

log = logging.getLogger(__name__)

# Variant name -> sequence settings. "unmagnified" is one frame with amplification factor
# 0, which the linear magnifier returns as the apex frame unchanged.
DEMO_VARIANTS: dict[str, SequenceConfig] = {
    "magnified": SequenceConfig(),
    "unmagnified": SequenceConfig(factor_start=0.0, factor_stop=0.0, length=1),
}

FULL = {"subjects": 12, "samples_per_subject": 8, "epochs": 12}
QUICK = {"subjects": 6, "samples_per_subject": 6, "epochs": 6}
DEFAULT_JOBS = max(1, min(4, os.cpu_count() or 1))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on the bundled demo set (synthetic motions), offline",
        description=(
            "Generate synthetic onset/apex pairs from the bundled Face Research Lab London faces, "
            "run LOSO over subjects with and without magnification, print UF1 and UAR, and write "
            "the run directories and a report."
        ),
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run: {QUICK['subjects']} subjects, {QUICK['samples_per_subject']} pairs each, "
                             f"{QUICK['epochs']} epochs")
    parser.add_argument("--subjects", type=int, help=f"number of FRLL identities, one LOSO fold each (default {FULL['subjects']})")
    parser.add_argument("--samples-per-subject", type=int,
                        help=f"onset/apex pairs generated per identity (default {FULL['samples_per_subject']})")
    parser.add_argument("--epochs", type=int, help=f"training epochs per fold (default {FULL['epochs']})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator and of training (default 0)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help=f"LOSO folds trained at once in worker processes (default {DEFAULT_JOBS}: CPU cores, at most 4)")
    parser.set_defaults(func=run)


def demo_configs(data_root: Path, epochs: int, seed: int) -> dict[str, RunConfig]:
    """Build the run config of each demo variant; they differ only in the sequence.

    The model and recipe are those of ``uamrn evaluate``'s ``cpu`` preset (width 64, 4
    Monte-Carlo passes, one torch thread per fold), with ``epochs`` and the learning-rate
    decay after two thirds of them.
    """
    from uamrn.commands.evaluate import CPU_PRESET

    data = DataConfig(dataset="demo", root=data_root, input="frames")
    model = ModelConfig(**CPU_PRESET["model"])
    train = TrainConfig(**{**CPU_PRESET["train"], "epochs": epochs, "lr_step": max(1, (epochs * 2) // 3), "seed": seed})
    return {
        name: RunConfig(data=data, sequence=sequence, model=model, train=train)
        for name, sequence in DEMO_VARIANTS.items()
    }


def _sizes(args: argparse.Namespace) -> dict[str, int]:
    sizes = dict(QUICK if args.quick else FULL)
    for key in sizes:
        value = getattr(args, key)
        if value is not None:
            sizes[key] = value
    return sizes


def _check_spec(data_root: Path, spec) -> None:
    saved = json.loads((data_root / "spec.json").read_text())
    if saved != spec.__dict__:
        raise UsageError(
            f"{data_root} contains a demo set generated with other settings ({saved}); "
            "pass a new --out folder, or repeat the options of the first run to resume it"
        )


def format_table(rows: list[dict]) -> str:
    """Format the demo results as a plain-text table."""
    lines = [f"{'variant':<12} {'factors':<14} {'UF1':>6} {'UAR':>6} {'acc':>6} {'time s':>7}"]
    for row in rows:
        lines.append(
            f"{row['variant']:<12} {row['factors']:<14} {row['uf1']:>6.3f} {row['uar']:>6.3f} "
            f"{row['accuracy']:>6.3f} {row['wall_s']:>7.0f}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from uamrn.data.demo import DemoSpec, generate, load
    from uamrn.report.write import write_report
    from uamrn.train.loso import evaluate_dataset
    from uamrn.train.runio import write_json

    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    sizes = _sizes(args)
    out = args.out
    spec = DemoSpec(n_subjects=sizes["subjects"], samples_per_subject=sizes["samples_per_subject"], seed=args.seed)
    data_root = out / "data"
    if (data_root / "labels.csv").is_file():
        _check_spec(data_root, spec)
        log.info("reusing the generated demo set in %s", data_root)
    else:
        generate(data_root, spec)

    rows, run_dirs = [], []
    for name, cfg in demo_configs(data_root, sizes["epochs"], args.seed).items():
        log.info("demo variant %s: %d factor(s)", name, cfg.sequence.length)
        start = time.perf_counter()
        run_dir = out / name
        summary = evaluate_dataset(cfg, run_dir, cache_dir=out / "cache", jobs=args.jobs)
        pooled = summary["pooled"]
        sequence = cfg.sequence
        rows.append({
            "variant": name,
            "factors": f"{sequence.length} x {sequence.factor_start:g}..{sequence.factor_stop:g}",
            "uf1": pooled["uf1"],
            "uar": pooled["uar"],
            "accuracy": pooled["accuracy"],
            "wall_s": time.perf_counter() - start,
            "run_dir": str(run_dir),
        })
        run_dirs.append(run_dir)

    write_json(out / "demo.json", {"spec": spec.__dict__, "epochs": sizes["epochs"], "results": rows})
    report = write_report(run_dirs, out / "report", title="uamrn demo (synthetic motions)").markdown

    print("uamrn demo: LOSO over", sizes["subjects"], "subjects, synthetic motions on FRLL faces")
    print(format_table(rows))
    print(f"report: {report}")
    # A sample of the first subject with the fold model that never saw that subject.
    example = load(DataConfig(dataset="demo", root=data_root)).samples[0]
    fold_model = out / "magnified" / "folds" / example.subject
    print(f"try: uamrn predict --model {fold_model} --onset {example.onset} --apex {example.apex}")
    return 0
