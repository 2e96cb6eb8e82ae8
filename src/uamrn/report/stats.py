"""Statistics for the report: mean and spread over seeds, paired tests, calibration."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "MeanStd",
    "mean_std",
    "PairedTest",
    "paired_wilcoxon",
    "Reliability",
    "reliability",
    "ECE_BINS",
]

ECE_BINS = 15


@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (ddof 1) over ``n`` values; ``std`` is NaN for n < 2."""

    mean: float
    std: float
    n: int

    def format(self, digits: int = 3) -> str:
        if self.n == 0 or math.isnan(self.mean):
            return "n/a"
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def mean_std(values) -> MeanStd:
    """Mean and sample standard deviation of the finite values in ``values``."""
    array = np.asarray([v for v in values if v is not None], dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return MeanStd(float("nan"), float("nan"), 0)
    std = float(np.std(array, ddof=1)) if array.size > 1 else float("nan")
    return MeanStd(float(np.mean(array)), std, int(array.size))


@dataclass(frozen=True)
class PairedTest:
    """A Wilcoxon signed-rank test of per-subject scores, variant minus reference.

    Attributes:
        n: Subjects present in both (every seed of both variants).
        n_nonzero: Subjects whose difference is not zero; the test ranks only these.
        mean_diff: Mean per-subject difference, variant minus reference.
        statistic: The Wilcoxon statistic (NaN when no difference is non-zero).
        p: Two-sided p-value (NaN when no difference is non-zero).
    """

    n: int
    n_nonzero: int
    mean_diff: float
    statistic: float
    p: float


def paired_wilcoxon(reference: dict[str, float], variant: dict[str, float]) -> PairedTest:
    """Test per-subject scores of ``variant`` against ``reference`` on their shared subjects.

    Zero differences are dropped before ranking, so ``n_nonzero`` is the sample size the
    p-value rests on; ``mean_diff`` averages all shared subjects, zeros included.
    """
    subjects = sorted(set(reference) & set(variant))
    diffs = np.asarray([variant[s] - reference[s] for s in subjects], dtype=float)
    if diffs.size == 0:
        return PairedTest(0, 0, float("nan"), float("nan"), float("nan"))

    nonzero = diffs[diffs != 0]
    if nonzero.size == 0:
        return PairedTest(len(subjects), 0, 0.0, float("nan"), float("nan"))

    # Zeros are dropped here rather than by scipy so that its choice between the exact,
    # permutation and normal-approximation p-value depends on the non-zero count alone.
    result = stats.wilcoxon(nonzero, alternative="two-sided")
    return PairedTest(len(subjects), int(nonzero.size), float(np.mean(diffs)), float(result.statistic), float(result.pvalue))


@dataclass(frozen=True)
class Reliability:
    """Reliability-diagram bins over ``[0, 1]`` confidence and the expected calibration error.

    Attributes:
        edges: Bin edges, shape (n_bins + 1,).
        counts: Samples per bin, shape (n_bins,).
        confidence: Mean confidence per bin (NaN for empty bins), shape (n_bins,).
        accuracy: Fraction correct per bin (NaN for empty bins), shape (n_bins,).
        ece: Sum over bins of ``count / N * |accuracy - confidence|``.
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: float


def reliability(probabilities: np.ndarray, predicted: np.ndarray, target: np.ndarray, n_bins: int = ECE_BINS) -> Reliability:
    """Bin samples by confidence (the largest class probability) and compute the ECE.

    Args:
        probabilities: Class probabilities, shape (N, C).
        predicted: Predicted class per sample, shape (N,).
        target: True class per sample, shape (N,).
        n_bins: Equal-width confidence bins over [0, 1]; the last bin includes 1.0.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0:
        raise ValueError(f"probabilities must have shape (N, C) with N > 0, got {probabilities.shape}")
    confidence = probabilities.max(axis=1)
    correct = (np.asarray(predicted) == np.asarray(target)).astype(float)

    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    correct_sum = np.bincount(index, weights=correct, minlength=n_bins)

    with np.errstate(invalid="ignore", divide="ignore"):
        bin_conf = np.where(counts > 0, conf_sum / counts, np.nan)
        bin_acc = np.where(counts > 0, correct_sum / counts, np.nan)
    gaps = np.abs(np.nan_to_num(bin_acc) - np.nan_to_num(bin_conf))
    ece = float(np.sum(counts / counts.sum() * gaps))
    return Reliability(edges, counts, bin_conf, bin_acc, ece)
