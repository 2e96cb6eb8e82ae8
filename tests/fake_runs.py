"""Write small but valid LOSO run directories for report and ablation tests.

The layout and the ``summary.json`` schema follow what ``uamrn evaluate`` writes. Metrics
are computed with scikit-learn from random predictions, so the report code can be tested
without training anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from uamrn.config import RunConfig

CLASSES = ("negative", "positive", "surprise")
SUBJECTS = {"casme2": ["sub01", "sub02", "sub03", "sub04", "sub05"], "smic": ["s01", "s02", "s03", "s04"]}


def _metrics(true: np.ndarray, pred: np.ndarray, n_classes: int) -> dict:
    labels = list(range(n_classes))
    return {
        "n_samples": int(len(true)),
        "accuracy": float(accuracy_score(true, pred)),
        "macro_f1": float(f1_score(true, pred, labels=labels, average="macro", zero_division=0)),
        "uf1": float(f1_score(true, pred, labels=labels, average="macro", zero_division=0)),
        "uar": float(recall_score(true, pred, labels=labels, average="macro", zero_division=0)),
    }


def _with_details(metrics: dict, true: np.ndarray, pred: np.ndarray) -> dict:
    labels = list(range(len(CLASSES)))
    recall = recall_score(true, pred, labels=labels, average=None, zero_division=0)
    metrics["per_class_recall"] = {name: float(r) for name, r in zip(CLASSES, recall)}
    metrics["confusion_matrix"] = confusion_matrix(true, pred, labels=labels).tolist()
    return metrics


def make_predictions(seed: int, skill: float) -> pd.DataFrame:
    """Random predictions for every subject; ``skill`` is the chance of a correct prediction."""
    rng = np.random.default_rng(seed)
    rows = []
    for database, subjects in SUBJECTS.items():
        for subject in subjects:
            for clip in range(int(rng.integers(3, 7))):
                true = int(rng.choice(3, p=[0.55, 0.25, 0.2]))
                pred = true if rng.random() < skill else int(rng.integers(0, 3))
                logits = rng.normal(0, 1, 3)
                logits[pred] += 2.0
                prob = np.exp(logits) / np.exp(logits).sum()
                row = {
                    "database": database,
                    "subject": subject,
                    "clip": f"clip{clip:02d}",
                    "true_label": true,
                    "true_name": CLASSES[true],
                    "pred_label": pred,
                    "pred_name": CLASSES[pred],
                }
                row.update({f"prob_{c}": float(p) for c, p in zip(CLASSES, prob)})
                row["gamma"] = float(rng.gamma(2.0, 0.05 * (1 + true)))
                rows.append(row)
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame, all_subjects: list[str], class_counts: dict, config: dict) -> dict:
    """A ``summary.json`` dict for the finished folds in ``frame``, as the LOSO runner builds it."""
    true, pred = frame["true_label"].to_numpy(), frame["pred_label"].to_numpy()
    done = list(dict.fromkeys(frame["subject"]))
    per_subject = {}
    for subject, part in frame.groupby("subject", sort=False):
        per_subject[subject] = _metrics(part["true_label"].to_numpy(), part["pred_label"].to_numpy(), 3)
    per_database = {}
    for database, part in frame.groupby("database", sort=False):
        t, p = part["true_label"].to_numpy(), part["pred_label"].to_numpy()
        per_database[database] = _with_details(_metrics(t, p, 3), t, p)
    keys = ("accuracy", "macro_f1", "uf1", "uar")
    gamma = frame.groupby("true_label")["gamma"].mean()
    return {
        "dataset": "megc2019",
        "class_names": list(CLASSES),
        "n_samples": int(len(frame)),
        "n_subjects": len(done),
        "n_predictions": int(len(frame)),
        "missing_samples": [],
        "folds_expected": list(all_subjects),
        "folds_done": done,
        "folds_missing": [s for s in all_subjects if s not in done],
        "pooled": _with_details(_metrics(true, pred, 3), true, pred),
        "per_subject_mean": {k: float(np.mean([m[k] for m in per_subject.values()])) for k in keys},
        "per_database": per_database,
        "per_subject": per_subject,
        "mean_gamma_per_class": {c: float(gamma.get(i, float("nan"))) for i, c in enumerate(CLASSES)},
        "class_counts": class_counts,
        "timing": {"wall_s": 60.0 + len(frame), "train_s": 50.0 + len(frame) / 2, "features_s": 3.0},
        "config": config,
    }


def write_run(run_dir: Path, cfg: RunConfig, skill: float, missing_folds: tuple[str, ...] = ()) -> dict:
    """Write a run directory; folds in ``missing_folds`` are left out as if never trained."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(cfg.to_yaml())

    full = make_predictions(cfg.train.seed * 7 + int(skill * 100), skill)
    class_counts = {c: int((full["true_label"] == i).sum()) for i, c in enumerate(CLASSES)}
    frame = full[~full["subject"].isin(missing_folds)].reset_index(drop=True)
    for subject, part in frame.groupby("subject", sort=False):
        fold = run_dir / "folds" / subject
        fold.mkdir(parents=True, exist_ok=True)
        part.to_csv(fold / "predictions.csv", index=False)
        (fold / "fold.json").write_text(json.dumps({"subject": subject, "n_test": len(part)}))
    frame.to_csv(run_dir / "predictions.csv", index=False)

    subjects = [s for group in SUBJECTS.values() for s in group]
    summary = summarize(frame, subjects, class_counts, cfg.model_dump(mode="json"))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


VARIANT_SKILL = {"full": 0.75, "no_uncertainty": 0.6, "full_attention": 0.7, "no_magnification": 0.5}


def variant_config(variant: str, seed: int) -> RunConfig:
    cfg = RunConfig()
    cfg.train.seed = seed
    if variant == "no_uncertainty":
        cfg.model.uncertainty = False
    elif variant == "full_attention":
        cfg.model.attention = "full"
    elif variant == "no_magnification":
        cfg.sequence.length = 1
    return cfg


def write_ablation(root: Path, variants: list[str], seeds: list[int], skip: tuple[tuple[str, int], ...] = (), missing_folds: dict | None = None) -> Path:
    """Write ``root/<variant>/seed<k>/`` runs and the ``ablation.json`` manifest."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "ablation.json").write_text(json.dumps({"variants": variants, "seeds": seeds, "reference": "full"}))
    for variant in variants:
        for seed in seeds:
            if (variant, seed) in skip:
                continue
            gaps = (missing_folds or {}).get((variant, seed), ())
            write_run(root / variant / f"seed{seed}", variant_config(variant, seed), VARIANT_SKILL[variant], gaps)
    return root
