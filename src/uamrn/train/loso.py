"""Leave-one-subject-out (LOSO) evaluation: one training per test subject, results on disk.

Run directory layout::

    RUN_DIR/config.yaml              the run config; a rerun with another config is rejected
    RUN_DIR/dataset.json             subjects, class names and counts, missing samples, and
                                     the sample labels and file-content hash a rerun must match
    RUN_DIR/folds/<subject>/         predictions.csv, model.safetensors, model.yaml, fold.json
    RUN_DIR/predictions.csv          every finished fold's predictions, in subject order
    RUN_DIR/summary.json             metrics over the pooled predictions and per subject
    RUN_DIR/final/                   model.safetensors, model.yaml of a model trained on all samples

``fold.json`` is written last, so a fold counts as finished only when all its files are in
place. A rerun skips finished folds and retrains any fold that was interrupted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from uamrn.config import RunConfig
from uamrn.data.sample import Sample, SampleSet
from uamrn.train.fit import TrainedModel, derive_seed, predict, train_model
from uamrn.train.metrics import classification_metrics, per_subject_mean, subject_metrics
from uamrn.train.parallel import map_folds, select_shard
from uamrn.train.runio import CONFIG_FILE, ModelMeta, check_run_config, save_model, write_csv, write_json

__all__ = [
    "check_dataset",
    "dataset_identity",
    "evaluate_dataset",
    "fold_done",
    "run_loso",
    "summarize",
    "train_final",
    "train_fold",
]

logger = logging.getLogger(__name__)

DATASET_FILE = "dataset.json"
FOLDS_DIR = "folds"
FINAL_DIR = "final"
FOLD_FILE = "fold.json"
PREDICTIONS_FILE = "predictions.csv"
SUMMARY_FILE = "summary.json"
_ID_COLUMNS = {"database": str, "subject": str, "clip": str}


def fold_dir(run_dir: Path, subject: str) -> Path:
    """Return the folder of the fold whose test subject is ``subject``."""
    return Path(run_dir) / FOLDS_DIR / subject


def fold_done(run_dir: Path, subject: str) -> bool:
    """Return whether the fold of ``subject`` finished (its ``fold.json`` exists)."""
    return (fold_dir(run_dir, subject) / FOLD_FILE).is_file()


def _labels(sample_set: SampleSet) -> np.ndarray:
    return np.array([sample.label for sample in sample_set.samples], dtype=np.int64)


def _prediction_table(sample_set: SampleSet, indices: np.ndarray, prediction) -> pd.DataFrame:
    names = sample_set.class_names
    samples = [sample_set.samples[i] for i in indices]
    table = pd.DataFrame(
        {
            "database": [s.database for s in samples],
            "subject": [s.subject for s in samples],
            "clip": [s.clip for s in samples],
            "true_label": [s.label for s in samples],
            "true_name": [names[s.label] for s in samples],
            "pred_label": prediction.labels.astype(int),
            "pred_name": [names[i] for i in prediction.labels],
        }
    )
    for c, name in enumerate(names):
        table[f"prob_{name}"] = prediction.probabilities[:, c]
    table["gamma"] = prediction.gamma
    return table


def _save_trained(
    folder: Path,
    trained: TrainedModel,
    sample_set: SampleSet,
    features: np.ndarray,
    cfg: RunConfig,
    test_subject: str | None = None,
) -> None:
    """Save a trained model with the metadata that rebuilds it (see :class:`ModelMeta`)."""
    meta = ModelMeta(
        config=cfg,
        in_features=features.shape[-1],
        class_names=tuple(sample_set.class_names),
        feature_mean=trained.feature_mean,
        feature_std=trained.feature_std,
        test_subject=test_subject,
    )
    save_model(folder, trained.model, meta)


def train_fold(subject: str, sample_set: SampleSet, features: np.ndarray, cfg: RunConfig, out_dir: Path) -> dict:
    """Train on every subject but ``subject``, predict ``subject``, and write the fold folder.

    Module-level and free of shared state, so folds can run in separate processes.

    Args:
        subject: The test subject.
        sample_set: All samples of the dataset.
        features: ``(N, L, F)`` float32 features, rows aligned with ``sample_set.samples``.
        cfg: Run config.
        out_dir: The run directory.

    Returns:
        The fold record also written to ``fold.json``.

    Raises:
        ValueError: No sample belongs to ``subject``, or every sample does.
    """
    subjects = np.array([sample.subject for sample in sample_set.samples])
    test = np.flatnonzero(subjects == subject)
    train = np.flatnonzero(subjects != subject)
    if len(test) == 0:
        raise ValueError(f"subject {subject!r} has no samples in {sample_set.name}; known subjects: {', '.join(sample_set.subjects)}")
    if len(train) == 0:
        raise ValueError(f"subject {subject!r} contains every sample of {sample_set.name}; LOSO needs at least two subjects")

    start = time.perf_counter()
    labels = _labels(sample_set)
    seed = derive_seed(cfg.train.seed, subject)
    trained = train_model(features[train], labels[train], cfg, len(sample_set.class_names), seed)
    prediction = predict(trained.model, features[test], trained.feature_mean, trained.feature_std)

    folder = fold_dir(out_dir, subject)
    write_csv(folder / PREDICTIONS_FILE, _prediction_table(sample_set, test, prediction))
    _save_trained(folder, trained, sample_set, features, cfg, test_subject=subject)

    record = {
        "subject": subject,
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "seed": seed,
        "epochs": cfg.train.epochs,
        "final_loss": trained.losses[-1],
        "accuracy": float(np.mean(prediction.labels == labels[test])),
        "train_s": trained.train_s,
        "wall_s": time.perf_counter() - start,
    }
    write_json(folder / FOLD_FILE, record)
    return record


def train_final(sample_set: SampleSet, features: np.ndarray, cfg: RunConfig, out_dir: Path) -> Path:
    """Train one model on every sample with the LOSO recipe and save it to ``RUN_DIR/final``.

    Skipped when ``final/model.yaml`` already exists (it is written last).

    Returns:
        The ``final`` folder.
    """
    folder = Path(out_dir) / FINAL_DIR
    if (folder / "model.yaml").is_file():
        logger.info("final model already in %s; skipped", folder)
        return folder

    logger.info("training the final model on all %d samples", len(sample_set.samples))
    trained = train_model(features, _labels(sample_set), cfg, len(sample_set.class_names), derive_seed(cfg.train.seed, "final-model:all"))
    _save_trained(folder, trained, sample_set, features, cfg)
    return folder


def _input_files(sample: Sample, data_input: str) -> list[Path]:
    """Return the files the features of ``sample`` are computed from (as in the feature cache)."""
    if data_input == "flow":
        paths = (sample.flow,)
    elif data_input == "apex+flow":
        paths = (sample.flow, sample.apex)
    else:
        paths = (sample.onset, sample.apex, *sample.frames)
    return [Path(path) for path in paths if path is not None]


def dataset_identity(sample_set: SampleSet, data_input: str) -> dict:
    """Describe the data of a run: every sample's label and one SHA-256 of all input files.

    A resumed run must see the same description, or its finished folds were trained on other
    data. Hashing reads each input file once, the same files the feature cache hashes.

    Returns:
        ``{"sample_labels": {key: label}, "content_sha256": hex digest}``.
    """
    digest = hashlib.sha256()
    for sample in sample_set.samples:
        digest.update(f"{sample.key}\0{sample.label}\0".encode())
        for path in _input_files(sample, data_input):
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return {
        "sample_labels": {sample.key: int(sample.label) for sample in sample_set.samples},
        "content_sha256": digest.hexdigest(),
    }


def check_dataset(run_dir: Path, identity: dict) -> None:
    """Check ``identity`` (from :func:`dataset_identity`) against the run's ``dataset.json``.

    A run directory without ``dataset.json``, or with one written before these fields
    existed, passes.

    Raises:
        ValueError: The saved run was made on other samples, labels or file contents, so
            resuming into it would mix folds trained on different data.
    """
    path = Path(run_dir) / DATASET_FILE
    if not path.is_file():
        return
    saved = json.loads(path.read_text())
    if "sample_labels" not in saved or "content_sha256" not in saved:
        return

    old, new = saved["sample_labels"], identity["sample_labels"]
    differences = [f"{key} removed" for key in old if key not in new]
    differences += [f"{key} added" for key in new if key not in old]
    differences += [f"{key} label saved {old[key]}, now {new[key]}" for key in old if key in new and old[key] != new[key]]
    if not differences and saved["content_sha256"] != identity["content_sha256"]:
        differences.append("the contents of the input files changed")
    if differences:
        shown = "; ".join(differences[:5]) + (f"; and {len(differences) - 5} more" if len(differences) > 5 else "")
        raise ValueError(
            f"{run_dir} contains a run made on different data ({shown}); pass a new --out directory, "
            "or restore the original data to resume that run"
        )


def _write_dataset_record(
    run_dir: Path, sample_set: SampleSet, features: np.ndarray, features_s: float | None, data_input: str
) -> None:
    path = Path(run_dir) / DATASET_FILE
    identity = dataset_identity(sample_set, data_input)
    check_dataset(run_dir, identity)
    previous = json.loads(path.read_text()) if path.is_file() else {}
    record = {
        "dataset": sample_set.name,
        "class_names": list(sample_set.class_names),
        "n_samples": len(sample_set.samples),
        "subjects": sample_set.subjects,
        "class_counts": sample_set.class_counts(),
        "missing_samples": list(sample_set.missing),
        "skipped_samples": dict(sample_set.skipped),
        "feature_shape": list(features.shape[1:]),
        "features_s": features_s if features_s is not None else previous.get("features_s"),
        **identity,
    }
    write_json(path, record)


def _resolve_folds(sample_set: SampleSet, folds: list[str] | None) -> list[str]:
    known = sample_set.subjects
    if not folds:
        return known
    unknown = [subject for subject in folds if subject not in known]
    if unknown:
        raise ValueError(
            f"subject {unknown[0]!r} given in --folds has no samples in {sample_set.name}; "
            f"known subjects: {', '.join(known)}"
        )
    return list(dict.fromkeys(folds))


def run_loso(
    sample_set: SampleSet,
    features: np.ndarray,
    cfg: RunConfig,
    out_dir: Path,
    folds: list[str] | None = None,
    jobs: int = 1,
    shard: tuple[int, int] | None = None,
    features_s: float | None = None,
) -> dict:
    """Run (or resume) the LOSO folds of ``sample_set`` into ``out_dir`` and summarise them.

    Args:
        sample_set: All samples; every subject is a fold unless ``folds`` restricts them.
        features: ``(N, L, F)`` float32 features aligned with ``sample_set.samples``.
        cfg: Run config, saved as ``config.yaml`` (or checked against the saved one).
        out_dir: The run directory, created when absent.
        folds: Test subjects to run now; ``None`` runs all.
        jobs: Folds trained at once, each in a worker process with ``cores // jobs``
            torch threads; 1 trains them one after another in this process.
        shard: ``(index, count)``, 1-based: run only this shard of the folds, as chosen by
            :func:`uamrn.train.parallel.select_shard`; ``uamrn merge`` joins the shards.
        features_s: Seconds the features took, recorded in the summary's timing.

    Returns:
        The summary, as written to ``summary.json``.

    Raises:
        ValueError: ``out_dir`` contains a run with another config or on other data (samples,
            labels or file contents), or a subject in ``folds`` has no samples.
    """
    if len(features) != len(sample_set.samples):
        raise ValueError(f"{len(features)} feature rows for {len(sample_set.samples)} samples; recompute the features")

    out_dir = Path(out_dir)
    subjects = _resolve_folds(sample_set, folds)
    if shard is not None:
        subjects = select_shard(subjects, *shard)
    check_run_config(out_dir, cfg)
    _write_dataset_record(out_dir, sample_set, features, features_s, cfg.data.input)

    todo = [subject for subject in subjects if not fold_done(out_dir, subject)]
    if len(todo) < len(subjects):
        logger.info("%d of %d folds already finished in %s; skipped", len(subjects) - len(todo), len(subjects), out_dir)
    for subject, record in map_folds(train_fold, todo, jobs, shared_args=(sample_set, features, cfg, out_dir)):
        logger.info(
            "fold %s: %d test samples, accuracy %.3f, %.1f s",
            subject, record["n_test"], record["accuracy"], record["wall_s"],
        )
    return summarize(out_dir)


def _read_fold_predictions(run_dir: Path, subjects: list[str]) -> tuple[pd.DataFrame | None, list[dict]]:
    tables, records = [], []
    for subject in subjects:
        if not fold_done(run_dir, subject):
            continue
        folder = fold_dir(run_dir, subject)
        tables.append(pd.read_csv(folder / PREDICTIONS_FILE, dtype=_ID_COLUMNS))
        records.append(json.loads((folder / FOLD_FILE).read_text()))
    return (pd.concat(tables, ignore_index=True) if tables else None), records


def summarize(run_dir: Path) -> dict:
    """Build ``summary.json`` and the pooled ``predictions.csv`` from the finished folds.

    The metrics use only the fold files, so the summary of a resumed run equals that of an
    uninterrupted one. Mean gamma is grouped by true class.

    Args:
        run_dir: A run directory holding ``config.yaml`` and ``dataset.json``.

    Returns:
        The summary (see the module docstring for the files; keys as in ``summary.json``).
        Metric groups are ``None`` while no fold has finished.

    Raises:
        FileNotFoundError: ``run_dir`` contains no run.
    """
    run_dir = Path(run_dir)
    dataset_path = run_dir / DATASET_FILE
    if not dataset_path.is_file() or not (run_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"no LOSO run found in {run_dir} ({DATASET_FILE} or {CONFIG_FILE} missing); run uamrn evaluate first")
    dataset = json.loads(dataset_path.read_text())
    cfg = RunConfig.from_yaml(run_dir / CONFIG_FILE)
    class_names = dataset["class_names"]
    subjects = dataset["subjects"]

    table, records = _read_fold_predictions(run_dir, subjects)
    done = [record["subject"] for record in records]
    summary = {
        "dataset": dataset["dataset"],
        "class_names": class_names,
        "n_samples": dataset["n_samples"],
        "n_subjects": len(subjects),
        "n_predictions": 0 if table is None else len(table),
        "missing_samples": dataset["missing_samples"],
        # Absent from dataset.json files written before preprocessing failures were kept apart.
        "skipped_samples": dataset.get("skipped_samples", {}),
        "folds_expected": subjects,
        "folds_done": done,
        "folds_missing": [subject for subject in subjects if subject not in done],
        "pooled": None,
        "per_subject_mean": per_subject_mean({}),
        "per_database": {},
        "per_subject": {},
        "mean_gamma_per_class": {},
        "class_counts": dataset["class_counts"],
        "timing": {
            "wall_s": (dataset["features_s"] or 0.0) + sum(record["wall_s"] for record in records),
            "train_s": sum(record["train_s"] for record in records),
            "features_s": dataset["features_s"],
        },
        "config": cfg.model_dump(mode="json"),
    }

    if table is not None:
        write_csv(run_dir / PREDICTIONS_FILE, table)
        summary["pooled"] = classification_metrics(table["true_label"], table["pred_label"], class_names)
        for database, part in table.groupby("database", sort=False):
            summary["per_database"][database] = {
                "n_samples": len(part),
                **classification_metrics(part["true_label"], part["pred_label"], class_names),
            }
        for subject, part in table.groupby("subject", sort=False):
            summary["per_subject"][subject] = subject_metrics(part["true_label"], part["pred_label"])
        summary["per_subject_mean"] = per_subject_mean(summary["per_subject"])
        gamma = table.groupby("true_label")["gamma"].mean()
        summary["mean_gamma_per_class"] = {
            name: (float(gamma[c]) if c in gamma.index else None) for c, name in enumerate(class_names)
        }

    write_json(run_dir / SUMMARY_FILE, summary)
    return summary


def evaluate_dataset(
    cfg: RunConfig,
    out_dir: Path,
    folds: list[str] | None = None,
    cache_dir: Path | None = None,
    final_model: bool = True,
    jobs: int = 1,
    shard: tuple[int, int] | None = None,
) -> dict:
    """Read the dataset of ``cfg``, compute its features, run LOSO, and train the final model.

    The entry point shared by ``uamrn evaluate``, ``uamrn ablate`` and ``uamrn demo``.

    Args:
        cfg: Run config (``data`` chooses the dataset).
        out_dir: The run directory.
        folds: Test subjects to run now; ``None`` runs all.
        cache_dir: Feature cache folder; ``None`` disables the cache.
        final_model: Also train one model on all samples into ``RUN_DIR/final``.
        jobs: Folds trained at once in worker processes (see :func:`run_loso`).
        shard: ``(index, count)``, 1-based: run only this shard of the folds. Only shard 1
            trains the final model, so the shards do not repeat that work.

    Returns:
        The summary written to ``summary.json``.
    """
    from uamrn.data.registry import load_dataset
    from uamrn.train.features import compute_features

    sample_set = load_dataset(cfg.data)
    _resolve_folds(sample_set, folds)
    check_run_config(Path(out_dir), cfg)
    if cfg.data.input == "frames":
        from uamrn.sequence import preprocess

        # Clips without a detectable face or with unreadable frames are listed in
        # RUN_DIR/preprocessing.csv and left out; the other clips go on.
        sample_set = preprocess(sample_set, cfg, Path(out_dir), cache_dir)
    # Checked before the features are computed, so that changed data fails fast; run_loso
    # checks again before it writes dataset.json.
    check_dataset(Path(out_dir), dataset_identity(sample_set, cfg.data.input))

    start = time.perf_counter()
    features = compute_features(sample_set, cfg, cache_dir)
    features_s = time.perf_counter() - start
    logger.info("features %s in %.1f s", tuple(features.shape), features_s)

    summary = run_loso(sample_set, features, cfg, out_dir, folds=folds, jobs=jobs, shard=shard, features_s=features_s)
    if final_model and (shard is None or shard[0] == 1):
        train_final(sample_set, features, cfg, out_dir)
    return summary
