"""LOSO metrics: scikit-learn figures checked against a hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from uamrn.train.metrics import classification_metrics, per_subject_mean, subject_metrics

NAMES = ("negative", "positive", "surprise")
# Confusion matrix by hand (rows true, columns predicted):
#   negative  [3, 0, 0]
#   positive  [1, 1, 0]
#   surprise  [1, 1, 2]
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 0, 0, 0, 1, 2, 2, 1, 0]


def test_confusion_matrix_by_hand():
    result = classification_metrics(Y_TRUE, Y_PRED, NAMES)
    assert result["confusion_matrix"] == [[3, 0, 0], [1, 1, 0], [1, 1, 2]]


def test_recall_by_hand():
    recall = classification_metrics(Y_TRUE, Y_PRED, NAMES)["per_class_recall"]
    assert recall["negative"] == pytest.approx(3 / 3)
    assert recall["positive"] == pytest.approx(1 / 2)
    assert recall["surprise"] == pytest.approx(2 / 4)


def test_uar_by_hand():
    assert classification_metrics(Y_TRUE, Y_PRED, NAMES)["uar"] == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_uf1_by_hand():
    # Precision per column: 3/5, 1/2, 2/2; F1 = 2PR / (P + R).
    f1 = [2 * 0.6 * 1 / 1.6, 2 * 0.5 * 0.5 / 1.0, 2 * 1 * 0.5 / 1.5]
    result = classification_metrics(Y_TRUE, Y_PRED, NAMES)
    assert result["uf1"] == pytest.approx(np.mean(f1))
    assert result["macro_f1"] == result["uf1"]


def test_accuracy_by_hand():
    assert classification_metrics(Y_TRUE, Y_PRED, NAMES)["accuracy"] == pytest.approx(6 / 9)


def test_pooled_counts_unpredicted_class():
    result = classification_metrics([0, 1, 2], [0, 1, 1], NAMES)
    assert result["per_class_recall"]["surprise"] == 0.0
    assert result["uar"] == pytest.approx(2 / 3)


def test_subject_uar_ignores_absent_class():
    # One subject shows only negative and positive; surprise must not count as a 0 recall.
    result = subject_metrics([0, 0, 1], [0, 0, 1])
    assert result["uar"] == 1.0
    assert result["uf1"] == 1.0


def test_subject_f1_counts_false_class():
    result = subject_metrics([0, 0], [0, 2])
    assert result["uf1"] == pytest.approx((2 / 3 + 0.0) / 2)


def test_per_subject_mean_weights_subjects_equally():
    mean = per_subject_mean({"a": subject_metrics([0], [0]), "b": subject_metrics([0, 1, 1, 1], [1, 1, 1, 1])})
    assert mean["accuracy"] == pytest.approx((1.0 + 0.75) / 2)


def test_per_subject_mean_empty():
    assert per_subject_mean({})["uf1"] is None
