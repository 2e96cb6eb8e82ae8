"""Merge the run directories of a sharded LOSO run into one run directory and summarise it.

Each shard (``uamrn evaluate --shard I/N``) writes an ordinary run directory that holds
only its own folds. Merging checks that every shard ran the same config on the same
dataset, copies each finished fold folder into the output, and rebuilds ``summary.json``
with :func:`uamrn.train.loso.summarize`, so the result equals that of a single
unsharded run apart from timing.
"""

from __future__ import annotations

import filecmp
import json
import logging
import shutil
from pathlib import Path

from uamrn.config import RunConfig
from uamrn.train.loso import DATASET_FILE, FINAL_DIR, PREDICTIONS_FILE, fold_dir, fold_done, summarize
from uamrn.train.runio import CONFIG_FILE, check_run_config, write_json

__all__ = ["merge_runs"]

logger = logging.getLogger(__name__)

# dataset.json keys that must agree between shards; features_s is per machine and is summed.
_DATASET_KEYS = ("dataset", "class_names", "n_samples", "subjects", "class_counts", "missing_samples", "feature_shape")


def _read_shard(shard_dir: Path) -> tuple[RunConfig, dict]:
    """Read the config and dataset record of one shard's run directory."""
    config_path, dataset_path = shard_dir / CONFIG_FILE, shard_dir / DATASET_FILE
    for path in (config_path, dataset_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: {shard_dir} is not a run directory written by uamrn evaluate; "
                "pass the --out folders of the shard runs"
            )
    return RunConfig.from_yaml(config_path), json.loads(dataset_path.read_text())


def _check_same_run(shard_dirs: list[Path]) -> tuple[RunConfig, dict, float | None]:
    """Check that all shards share one config and dataset; return them and the summed feature time."""
    first_cfg, first_dataset = _read_shard(shard_dirs[0])
    features_s: float | None = first_dataset.get("features_s")

    for shard_dir in shard_dirs[1:]:
        cfg, dataset = _read_shard(shard_dir)
        if cfg.model_dump(mode="json") != first_cfg.model_dump(mode="json"):
            raise ValueError(
                f"{shard_dir / CONFIG_FILE} differs from {shard_dirs[0] / CONFIG_FILE}: "
                "shards of one run must use the same config; rerun the odd shard with the same options"
            )
        for key in _DATASET_KEYS:
            if dataset.get(key) != first_dataset.get(key):
                raise ValueError(
                    f"{shard_dir / DATASET_FILE} has another {key!r} than {shard_dirs[0] / DATASET_FILE}: "
                    "the shards read different data; rerun them on the same dataset"
                )
        if dataset.get("features_s") is not None:
            features_s = (features_s or 0.0) + dataset["features_s"]
    return first_cfg, first_dataset, features_s


def _same_fold(left: Path, right: Path) -> bool:
    """Return whether two finished fold folders hold the same predictions."""
    return filecmp.cmp(left / PREDICTIONS_FILE, right / PREDICTIONS_FILE, shallow=False)


def _copy_folder(source: Path, target: Path) -> None:
    """Copy a folder next to ``target`` under a temporary name, then rename it into place."""
    temporary = target.with_name(f".{target.name}.merging")
    shutil.rmtree(temporary, ignore_errors=True)
    shutil.copytree(source, temporary)
    shutil.rmtree(target, ignore_errors=True)
    temporary.rename(target)


def merge_runs(shard_dirs: list[Path], out_dir: Path) -> dict:
    """Combine the finished folds of several shard run directories into ``out_dir``.

    Rerunning with more shards finished adds their folds. A fold finished in several shards
    is taken from the first one listed, after checking that their predictions are equal.
    The final model (``RUN_DIR/final``) is copied from the first shard that has one.

    Args:
        shard_dirs: Run directories of the shards (``--out`` of each ``uamrn evaluate --shard``).
        out_dir: The merged run directory; created when absent, and must not be a shard.

    Returns:
        The summary written to ``out_dir/summary.json``.

    Raises:
        FileNotFoundError: A shard directory contains no run.
        ValueError: No shards given, the shards' configs or datasets differ, two shards
            hold different predictions for one fold, or ``out_dir`` holds another run.
    """
    shard_dirs = [Path(path) for path in shard_dirs]
    out_dir = Path(out_dir)
    if not shard_dirs:
        raise ValueError("no shard directories given: pass the --out folders of the shard runs")
    resolved_out = out_dir.resolve()
    for shard_dir in shard_dirs:
        if shard_dir.resolve() == resolved_out:
            raise ValueError(f"--out {out_dir} is one of the shard directories; merge into a new folder")

    cfg, dataset, features_s = _check_same_run(shard_dirs)
    check_run_config(out_dir, cfg)
    write_json(out_dir / DATASET_FILE, {**dataset, "features_s": features_s})

    copied = 0
    for subject in dataset["subjects"]:
        sources = [shard_dir for shard_dir in shard_dirs if fold_done(shard_dir, subject)]
        if not sources:
            continue
        for other in sources[1:]:
            if not _same_fold(fold_dir(sources[0], subject), fold_dir(other, subject)):
                raise ValueError(
                    f"fold {subject} finished in both {sources[0]} and {other} with different predictions; "
                    "remove it from one shard directory and merge again"
                )
        if fold_done(out_dir, subject) and _same_fold(fold_dir(out_dir, subject), fold_dir(sources[0], subject)):
            continue
        _copy_folder(fold_dir(sources[0], subject), fold_dir(out_dir, subject))
        copied += 1

    final_sources = [shard_dir / FINAL_DIR for shard_dir in shard_dirs if (shard_dir / FINAL_DIR / "model.yaml").is_file()]
    if final_sources and not (out_dir / FINAL_DIR / "model.yaml").is_file():
        _copy_folder(final_sources[0], out_dir / FINAL_DIR)

    summary = summarize(out_dir)
    logger.info(
        "merged %d shard directories into %s: %d folds copied, %d of %d folds finished",
        len(shard_dirs), out_dir, copied, len(summary["folds_done"]), len(summary["folds_expected"]),
    )
    if summary["folds_missing"]:
        logger.warning("folds not finished in any shard: %s", ", ".join(summary["folds_missing"]))
    return summary
