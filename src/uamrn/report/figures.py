"""Report figures drawn with matplotlib (Agg backend), each saved as one PNG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import PowerNorm  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from uamrn.report.runs import RunCollection  # noqa: E402
from uamrn.report.stats import ECE_BINS, reliability  # noqa: E402

__all__ = [
    "results_figure",
    "confusion_figure",
    "reliability_figure",
    "gamma_figure",
    "paired_figure",
    "sequence_figure",
    "attention_figure",
]

DPI = 110


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def results_figure(coll: RunCollection, path: Path) -> Path:
    """Plot pooled accuracy, UF1 and UAR per variant: bars at the seed mean, dots for each seed."""
    groups = [g for g in coll.groups if g.runs]
    metrics = [("accuracy", "accuracy"), ("uf1", "UF1"), ("uar", "UAR")]
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(groups) + 2), 4.0), layout="constrained")

    for m, (key, name) in enumerate(metrics):
        x = np.arange(len(groups)) + (m - (len(metrics) - 1) / 2) * width
        per_seed = [[float(r.summary["pooled"][key]) for r in g.runs] for g in groups]
        means = [np.mean(v) for v in per_seed]
        ax.bar(x, means, width * 0.9, label=name)
        for xi, values in zip(x, per_seed):
            ax.scatter([xi] * len(values), values, color="black", s=10, zorder=3)

    ax.set_xticks(np.arange(len(groups)), [g.label for g in groups])
    ax.set_ylabel("score (fraction, pooled over all folds)")
    ax.set_xlabel("variant")
    ax.set_ylim(0, 1)
    ax.set_title("Pooled LOSO scores per variant (bars: mean over seeds; dots: single seeds)")
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def confusion_figure(coll: RunCollection, path: Path) -> Path:
    """Draw one confusion matrix per variant, counts summed over its seeds."""
    groups = [g for g in coll.groups if g.runs]
    fig, axes = plt.subplots(1, len(groups), figsize=(3.9 * len(groups), 4.0), squeeze=False, layout="constrained")
    for i, (ax, group) in enumerate(zip(axes[0], groups)):
        matrix = sum(np.asarray(r.summary["pooled"]["confusion_matrix"], dtype=int) for r in group.runs)
        display = ConfusionMatrixDisplay(matrix, display_labels=coll.class_names)
        display.plot(ax=ax, colorbar=False, cmap="Blues", values_format="d")
        seeds = len(group.runs)
        ax.set_title(f"{group.label}\n(summed over {seeds} seed{'s' if seeds > 1 else ''})")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class" if i == 0 else "")
        ax.tick_params(axis="x", labelrotation=30)
    fig.suptitle("Confusion matrices (sample counts, pooled over all folds)")
    return _save(fig, path)


def reliability_figure(coll: RunCollection, path: Path) -> Path:
    """Draw a reliability diagram per variant from the pooled predictions of all its seeds."""
    groups = [g for g in coll.groups if g.runs]
    fig, axes = plt.subplots(1, len(groups), figsize=(3.8 * len(groups), 4.0), squeeze=False, sharey=True, layout="constrained")
    for ax, group in zip(axes[0], groups):
        probabilities = np.concatenate([r.probabilities() for r in group.runs])
        predicted = np.concatenate([r.predictions["pred_label"].to_numpy() for r in group.runs])
        target = np.concatenate([r.predictions["true_label"].to_numpy() for r in group.runs])
        bins = reliability(probabilities, predicted, target)

        centres = (bins.edges[:-1] + bins.edges[1:]) / 2
        width = bins.edges[1] - bins.edges[0]
        filled = bins.counts > 0
        ax.bar(centres[filled], bins.accuracy[filled], width * 0.95, color="tab:blue", label="accuracy")
        gap_low = np.minimum(bins.accuracy[filled], bins.confidence[filled])
        gap = np.abs(bins.confidence[filled] - bins.accuracy[filled])
        ax.bar(
            centres[filled],
            gap,
            width * 0.95,
            bottom=gap_low,
            fill=False,
            edgecolor="tab:red",
            hatch="///",
            label="gap to mean confidence",
        )
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (max class probability)")
        ax.set_title(f"{group.label}\nECE {bins.ece:.3f}, n = {int(bins.counts.sum())}")
    axes[0][0].set_ylabel("accuracy in bin (fraction)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
    fig.suptitle(f"Reliability diagrams ({ECE_BINS} bins, predictions of all seeds pooled)")
    return _save(fig, path)


def gamma_figure(coll: RunCollection, path: Path) -> Path:
    """Plot mean gamma per true class against the class's sample count, one series per variant."""
    groups = [g for g in coll.groups if g.runs]
    counts = coll.runs[0].summary["class_counts"]
    x = np.asarray([counts[name] for name in coll.class_names], dtype=float)
    order = np.argsort(x)
    fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")

    for group in groups:
        values = np.asarray([[r.summary["mean_gamma_per_class"][c] for c in coll.class_names] for r in group.runs], dtype=float)
        mean = values.mean(axis=0)
        std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
        ax.errorbar(x[order], mean[order], yerr=std[order], marker="o", capsize=3, label=group.label)

    ax.set_xticks(x[order], [f"{coll.class_names[i]}\n{int(x[i])}" for i in order])
    ax.set_xlabel("true class and its number of samples in the dataset (count)")
    ax.set_ylabel("mean gamma of its test samples (unitless)")
    ax.set_title("Do rare classes get more uncertainty? (error bars: std over seeds)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def paired_figure(coll: RunCollection, path: Path, metric: str = "accuracy") -> Path | None:
    """Scatter each subject's score under the reference against its score under each variant.

    Scores are averaged over the seeds both variants finished, as in the paired tests.
    Returns None when there is no variant besides the reference.
    """
    from uamrn.report.tables import shared_seeds, subject_scores

    reference = coll.group(coll.reference)
    others = [g for g in coll.groups if g.runs and g.label != coll.reference]
    if not others:
        return None
    fig, axes = plt.subplots(1, len(others), figsize=(3.6 * len(others), 3.8), squeeze=False, layout="constrained")
    for ax, group in zip(axes[0], others):
        seeds = shared_seeds(reference, group)
        ref_scores = subject_scores(reference, metric, seeds)
        var_scores = subject_scores(group, metric, seeds)
        subjects = sorted(set(ref_scores) & set(var_scores))
        x = [ref_scores[s] for s in subjects]
        y = [var_scores[s] for s in subjects]
        ax.plot([0, 1], [0, 1], "k--", linewidth=1)
        ax.scatter(x, y, alpha=0.7)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_aspect("equal")
        ax.set_xlabel(f"{coll.reference}: {metric} per subject (fraction)")
        ax.set_ylabel(f"{group.label}: {metric} per subject (fraction)")
        ax.set_title(f"{group.label} vs {coll.reference} (n = {len(subjects)})")
    fig.suptitle(f"Per-subject {metric}, one dot per test subject (above the diagonal: the variant is better)")
    return _save(fig, path)


def sequence_figure(frames: np.ndarray, factors: list[float], title: str, path: Path, columns: int = 8) -> Path:
    """Draw the magnified sequence as a grid, one panel per amplification factor.

    Args:
        frames: Magnified frames, shape (L, H, W, 3) uint8 RGB, ordered by factor.
        factors: The L amplification factors.
    """
    count = len(frames)
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.75 * rows + 0.6), squeeze=False, layout="constrained")
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < count:
            ax.imshow(frames[i], interpolation="nearest")
            ax.set_title(f"a = {factors[i]:.2f}", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def attention_figure(attention: list[np.ndarray], factors: list[float], title: str, path: Path) -> Path:
    """Draw attention weights per block and head, query and key frames ordered by factor.

    Args:
        attention: One array per block, shape (n_heads, L, L), rows are queries.
        factors: The L amplification factors, ascending.
    """
    n_blocks, n_heads = len(attention), attention[0].shape[0]
    fig, axes = plt.subplots(n_heads, n_blocks, figsize=(3.4 * n_blocks, 3.2 * n_heads + 0.6), squeeze=False, layout="constrained")
    length = len(factors)
    ticks = sorted({0, length // 2, length - 1})
    labels = [f"{factors[t]:.1f}" for t in ticks]
    vmax = max(max(float(w.max()) for w in attention), 1e-6)
    # A square-root scale keeps small weights visible beside a query with a single allowed key (weight 1).
    norm = PowerNorm(0.5, vmin=0.0, vmax=vmax)
    image = None
    for b, weights in enumerate(attention):
        for h in range(n_heads):
            ax = axes[h][b]
            image = ax.imshow(weights[h], cmap="viridis", norm=norm)
            ax.set_title(f"block {b + 1}, head {h + 1}", fontsize=9)
            ax.set_xticks(ticks, labels)
            ax.set_yticks(ticks, labels)
            ax.set_xlabel("key frame (factor a)")
            ax.set_ylabel("query frame (factor a)")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="attention weight (square-root scale)")
    fig.suptitle(title)
    return _save(fig, path)
