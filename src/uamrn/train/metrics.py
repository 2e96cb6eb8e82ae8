"""Classification metrics for LOSO results, computed with scikit-learn.

UF1 (unweighted F1) is the macro F1 and UAR (unweighted average recall) the macro recall,
both on the predictions pooled over all folds, as the MEGC challenges define them. Accuracy
and macro F1 are what the UAMRN paper reports; its figures average over subjects, so the
per-subject means are reported as well.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

__all__ = ["classification_metrics", "per_subject_mean", "subject_metrics"]


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> dict:
    """Compute the pooled metrics of a set of predictions over a fixed class list.

    Every class of ``class_names`` counts in the macro averages, so a class that is never
    predicted contributes an F1 of 0 and a class absent from ``y_true`` a recall of 0.

    Args:
        y_true: True class indices, ``(N,)``.
        y_pred: Predicted class indices, ``(N,)``.
        class_names: Names of classes ``0 .. C-1``.

    Returns:
        ``accuracy``, ``macro_f1``, ``uf1`` (same value as ``macro_f1``), ``uar``,
        ``per_class_recall`` ({name: recall}) and ``confusion_matrix`` (C x C nested list,
        rows true, columns predicted).
    """
    labels = list(range(len(class_names)))
    recalls = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    macro_f1 = float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": macro_f1,
        "uf1": macro_f1,
        "uar": float(np.mean(recalls)),
        "per_class_recall": {name: float(r) for name, r in zip(class_names, recalls)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def subject_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict:
    """Compute the metrics of one test subject over the classes it shows.

    A subject rarely shows every class, so absent classes are not counted as zeros. Macro F1
    averages over the classes present in ``y_true`` or ``y_pred`` (scikit-learn's default
    label set), so a wrongly predicted class still costs an F1 of 0. UAR averages over the
    classes present in ``y_true``.

    Returns:
        ``n_samples``, ``accuracy``, ``macro_f1``, ``uf1`` (same as ``macro_f1``) and ``uar``.
    """
    macro_f1 = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
    return {
        "n_samples": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": macro_f1,
        "uf1": macro_f1,
        "uar": float(recall_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)),
    }


def per_subject_mean(per_subject: dict[str, dict]) -> dict:
    """Average the per-subject ``accuracy``, ``macro_f1``, ``uf1`` and ``uar`` with equal weight per subject."""
    keys = ("accuracy", "macro_f1", "uf1", "uar")
    if not per_subject:
        return {key: None for key in keys}
    return {key: float(np.mean([m[key] for m in per_subject.values()])) for key in keys}
