"""Section (e): full LOSO wall time on MEGC2019 (CASME II and SMIC parts): cache cold, warm, and no cache.

The third run recomputes the features in every fold, as a LOSO script without a cache
does. Its wall time over a cached run's is the cache's measured speed-up.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def evaluate_args(root: Path, out_dir: Path, epochs: int | None) -> list[str]:
    """Return the ``uamrn evaluate`` arguments of the measured run."""
    args = ["evaluate", "--dataset", "megc2019", "--root", str(root), "--databases", "casme2,smic", "--out", str(out_dir)]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    return args


def _run(root: Path, out_dir: Path, cache_dir: Path, epochs: int | None, jobs: int) -> tuple[dict, float]:
    from uamrn.cli import build_parser
    from uamrn.commands.evaluate import build_config
    from uamrn.train.loso import evaluate_dataset

    args = build_parser().parse_args(evaluate_args(root, out_dir, epochs))
    cfg = build_config(args)
    start = time.perf_counter()
    summary = evaluate_dataset(cfg, out_dir, cache_dir=cache_dir, final_model=False, jobs=jobs)
    return summary, time.perf_counter() - start


def _run_recomputing(root: Path, out_dir: Path, epochs: int | None) -> tuple[dict, float, float]:
    """Run every fold after computing all features again, without the cache.

    Returns:
        The summary, the wall seconds and the seconds spent on features over all folds.
    """
    from uamrn.cli import build_parser
    from uamrn.commands.evaluate import build_config
    from uamrn.data.registry import load_dataset
    from uamrn.train.features import compute_features
    from uamrn.train.loso import run_loso

    cfg = build_config(build_parser().parse_args(evaluate_args(root, out_dir, epochs)))
    start = time.perf_counter()
    sample_set = load_dataset(cfg.data)
    features_s = 0.0
    for subject in sample_set.subjects:
        features_start = time.perf_counter()
        features = compute_features(sample_set, cfg, None)
        features_s += time.perf_counter() - features_start
        summary = run_loso(sample_set, features, cfg, out_dir, folds=[subject])
    return summary, time.perf_counter() - start, features_s


def measure(data_dir: Path, *, epochs: int | None = None, jobs: int = 1, work_dir: Path | None = None) -> dict:
    """Run the LOSO three times: empty feature cache, the cache the first run filled, no cache.

    Returns:
        Dict with both runs' wall, feature and training seconds, the pooled metrics and the
        derived cost of recomputing the features in every fold.
    """
    root = data_dir / "megc2019"
    if not (root / "combined_3class_gt.csv").is_file():
        return {"skipped": f"MEGC2019 data not found under {root}"}

    work = Path(tempfile.mkdtemp(prefix="uamrn-bench-loso-", dir=work_dir))
    try:
        cache_dir = work / "cache"
        cold, cold_s = _run(root, work / "cold", cache_dir, epochs, jobs)
        warm, warm_s = _run(root, work / "warm", cache_dir, epochs, jobs)
        recomputed, recomputed_s, recomputed_features_s = _run_recomputing(root, work / "recompute", epochs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n_folds = len(cold["folds_done"])
    features_s = cold["timing"]["features_s"]
    train_s = cold["timing"]["train_s"]
    return {
        "command": "uamrn " + " ".join(evaluate_args(Path("../shared/data/megc2019"), Path("RUN_DIR"), epochs)) + (
            f" --jobs {jobs}" if jobs > 1 else "") + " --no-final-model",
        "epochs": cold["config"]["train"]["epochs"],
        "d_model": cold["config"]["model"]["d_model"],
        "jobs": jobs,
        "n_samples": cold["n_samples"],
        "n_folds": n_folds,
        "cold_wall_s": cold_s,
        "warm_wall_s": warm_s,
        "cold_features_s": features_s,
        "warm_features_s": warm["timing"]["features_s"],
        "train_s": train_s,
        "warm_train_s": warm["timing"]["train_s"],
        "recompute_wall_s": recomputed_s,
        "recompute_features_s": recomputed_features_s,
        "recompute_train_s": recomputed["timing"]["train_s"],
        "recompute_equals_cold": recomputed["pooled"] == cold["pooled"],
        "pooled": {key: cold["pooled"][key] for key in ("uf1", "uar", "accuracy")},
        "per_database": {db: {key: part[key] for key in ("uf1", "uar")} for db, part in cold["per_database"].items()},
        "warm_equals_cold": cold["pooled"] == warm["pooled"],
    }


def render(result: dict) -> str:
    if "skipped" in result:
        return f"not measured: {result['skipped']}\n"
    if "recompute_wall_s" not in result:
        return "not measured: this result predates the run without the cache; rerun `python bench/run_all.py --only e`\n"
    per_db = ", ".join(f"{db} {m['uf1']:.3f} / {m['uar']:.3f}" for db, m in result["per_database"].items())
    same = all(result[key] for key in ("warm_equals_cold", "recompute_equals_cold"))
    return "\n".join([
        f"Command: `{result['command']}`, run three times one after another: with an empty feature cache "
        "(cold), with the cache the first run filled (warm), and without a cache, computing the features of all "
        f"samples again before each fold as a LOSO script without a cache does (`bench/measure_loso.py`). "
        f"{result['n_samples']} samples, {result['n_folds']} folds, {result['epochs']} epochs per fold, "
        f"d_model {result['d_model']}, {result['jobs']} fold process(es).",
        "",
        "| run | wall time | features | training | no-cache wall time / this run's |",
        "|---|---|---|---|---|",
        f"| cache cold | {result['cold_wall_s']:.0f} s | {result['cold_features_s']:.1f} s | {result['train_s']:.0f} s "
        f"| {result['recompute_wall_s'] / result['cold_wall_s']:.2f}x |",
        f"| cache warm | {result['warm_wall_s']:.0f} s | {result['warm_features_s']:.1f} s | {result['warm_train_s']:.0f} s "
        f"| {result['recompute_wall_s'] / result['warm_wall_s']:.2f}x |",
        f"| no cache, features per fold | {result['recompute_wall_s']:.0f} s | {result['recompute_features_s']:.1f} s "
        f"| {result['recompute_train_s']:.0f} s | 1.00x |",
        "",
        "The last column is the cache's speed-up, measured: the wall time of the run without a cache over the "
        "wall time of the cached run. With the flow input the features are cheap (reading one flow image, "
        "magnifying it at the 32 factors and flattening the 28 x 28 pixels of each frame), so the cache saves "
        "little on this data; inputs that need the face crop, the "
        "magnification and a front end per frame cost far more per sample.",
        "",
        f"Pooled over all folds (model after the last epoch): UF1 {result['pooled']['uf1']:.3f}, "
        f"UAR {result['pooled']['uar']:.3f}, accuracy {result['pooled']['accuracy']:.3f}; per database UF1 / UAR: "
        f"{per_db}. The three runs gave {'the same' if same else 'DIFFERENT'} pooled metrics.",
        "",
    ])
