"""Report tables, every cell computed from the runs' ``summary.json`` and ``predictions.csv``.

Cells over seeds read ``mean ± std`` (sample standard deviation, ddof 1) and just the mean
when one seed finished. A dagger marks a cell built from a run with missing folds or from
fewer seeds than the ablation planned. The completeness table names what is missing.
"""

from __future__ import annotations

from typing import Any, Callable

from uamrn.report.document import Table
from uamrn.report.runs import RunCollection, RunResult, VariantGroup, config_diff
from uamrn.report.stats import PairedTest, mean_std, paired_wilcoxon, reliability

__all__ = [
    "PARTIAL",
    "format_p",
    "is_partial",
    "databases",
    "variants_table",
    "results_table",
    "per_subject_mean_table",
    "uncertainty_table",
    "attention_table",
    "paired_tests_table",
    "recall_table",
    "gamma_table",
    "calibration_table",
    "completeness_table",
    "subject_scores",
    "shared_seeds",
    "paired_test",
    "ablation_partner",
]

PARTIAL = "†"
PARTIAL_NOTE = f"{PARTIAL} built from a run with missing folds or from fewer seeds than planned; see the completeness table."
DATABASE_NAMES = {"casme2": "CASME II", "smic": "SMIC-HS", "samm": "SAMM", "casme3": "CAS(ME)^3"}


def _get(summary: dict[str, Any], *keys: str) -> float | None:
    value: Any = summary
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return None if value is None else float(value)


def is_partial(group: VariantGroup) -> bool:
    return bool(group.missing) or any(not r.complete for r in group.runs)


def _cell(group: VariantGroup, extract: Callable[[RunResult], float | None], digits: int = 3) -> str:
    text = mean_std(extract(r) for r in group.runs).format(digits)
    return text + (f" {PARTIAL}" if is_partial(group) and text != "n/a" else "")


def _partial_notes(coll: RunCollection) -> list[str]:
    return [PARTIAL_NOTE] if any(is_partial(g) for g in coll.groups) else []


def _finished(coll: RunCollection) -> list[VariantGroup]:
    return [g for g in coll.groups if g.runs]


def databases(coll: RunCollection) -> list[str]:
    """Database keys in the order they first appear in the runs' summaries."""
    seen: dict[str, None] = {}
    for run in coll.runs:
        for name in run.summary.get("per_database") or {}:
            seen.setdefault(name, None)
    return list(seen)


def _db_name(key: str) -> str:
    return DATABASE_NAMES.get(key, key)


def _describe_diff(diff: dict[str, tuple[Any, Any]]) -> str:
    if not diff:
        return "reference"
    return ", ".join(f"`{k}` {a} → {b}" for k, (a, b) in diff.items())


def _seed_cell(group: VariantGroup) -> str:
    finished = len(group.runs)
    planned = finished + len(group.missing)
    partial = any(not r.complete for r in group.runs)
    text = f"{finished}" if planned == finished else f"{finished} of {planned}"
    return text + (f" {PARTIAL}" if group.missing or partial else "")


def variants_table(coll: RunCollection) -> Table:
    reference = coll.group(coll.reference)
    rows = []
    for group in coll.groups:
        diff = config_diff(reference.config, group.config) if group.runs else {}
        seeds = ", ".join(str(s) for s in group.seeds) or "none"
        rows.append([group.label, _describe_diff(diff) if group.runs else "no finished run", _seed_cell(group), seeds])
    return Table(
        "variants",
        f"Variants and their settings relative to the reference `{coll.reference}`",
        ["variant", "setting changed", "runs", "seeds"],
        rows,
    )


def results_table(coll: RunCollection) -> Table:
    """Accuracy and macro F1 per database, then pooled accuracy, UF1 and UAR over all folds."""
    dbs = databases(coll)
    header = ["variant"]
    for db in dbs:
        header += [f"{_db_name(db)} Acc", f"{_db_name(db)} F1"]
    header += ["All Acc", "All UF1", "All UAR", "runs"]

    rows = []
    for group in _finished(coll):
        row = [group.label]
        for db in dbs:
            row.append(_cell(group, lambda r, db=db: _get(r.summary, "per_database", db, "accuracy")))
            row.append(_cell(group, lambda r, db=db: _get(r.summary, "per_database", db, "macro_f1")))
        row.append(_cell(group, lambda r: _get(r.summary, "pooled", "accuracy")))
        row.append(_cell(group, lambda r: _get(r.summary, "pooled", "uf1")))
        row.append(_cell(group, lambda r: _get(r.summary, "pooled", "uar")))
        row.append(_seed_cell(group))
        rows.append(row)
    return Table(
        "results",
        "Accuracy and F1 per database (predictions of all folds pooled), mean ± std over seeds",
        header,
        rows,
        _partial_notes(coll),
    )


def per_subject_mean_table(coll: RunCollection) -> Table:
    """Per-subject means, the averaging the UAMRN paper uses, beside the pooled MEGC figures."""
    # Per subject, UF1 is the same number as macro F1, so it is not repeated.
    metrics = [("accuracy", "Acc"), ("macro_f1", "F1"), ("uar", "UAR")]
    rows = []
    for group in _finished(coll):
        row = [group.label]
        for key, _ in metrics:
            row.append(_cell(group, lambda r, key=key: _get(r.summary, "per_subject_mean", key)))
        rows.append(row)
    return Table(
        "per_subject_mean",
        "Metrics averaged over test subjects (each fold scored alone), mean ± std over seeds",
        ["variant"] + [name for _, name in metrics],
        rows,
        _partial_notes(coll),
    )


def ablation_partner(coll: RunCollection, key: str) -> VariantGroup | None:
    """Find the finished variant that differs from the reference in exactly the setting ``key``."""
    reference = coll.group(coll.reference)
    for group in _finished(coll):
        if set(config_diff(reference.config, group.config)) == {key}:
            return group
    return None


def uncertainty_table(coll: RunCollection) -> Table | None:
    """Deterministic (plain cross-entropy) against uncertainty-aware training, per database."""
    partner = ablation_partner(coll, "model.uncertainty")
    if partner is None:
        return None
    reference = coll.group(coll.reference)
    pairs = [(reference, "uncertainty-aware"), (partner, "deterministic")]
    if not reference.config.get("model", {}).get("uncertainty", True):
        pairs.reverse()

    dbs = databases(coll)
    header = ["training"] + [f"{_db_name(db)} {m}" for db in dbs for m in ("Acc", "F1")] + ["All Acc", "All UF1"]
    rows = []
    for group, name in pairs:
        row = [f"{name} (`{group.label}`)"]
        for db in dbs:
            row.append(_cell(group, lambda r, db=db: _get(r.summary, "per_database", db, "accuracy")))
            row.append(_cell(group, lambda r, db=db: _get(r.summary, "per_database", db, "macro_f1")))
        row.append(_cell(group, lambda r: _get(r.summary, "pooled", "accuracy")))
        row.append(_cell(group, lambda r: _get(r.summary, "pooled", "uf1")))
        rows.append(row)
    return Table(
        "uncertainty", "Deterministic vs uncertainty-aware training, mean ± std over seeds", header, rows, _partial_notes(coll)
    )


def attention_table(coll: RunCollection) -> Table | None:
    """Full softmax attention against LSH sparse attention, with the measured training time."""
    partner = ablation_partner(coll, "model.attention")
    if partner is None:
        return None
    reference = coll.group(coll.reference)
    dbs = databases(coll)
    header = ["attention"] + [f"{_db_name(db)} Acc" for db in dbs] + ["All Acc", "All UF1", "train time (s)", "run time (s)"]
    rows = []
    for group in (reference, partner):
        kind = group.config.get("model", {}).get("attention", "?")
        row = [f"{kind} (`{group.label}`)"]
        for db in dbs:
            row.append(_cell(group, lambda r, db=db: _get(r.summary, "per_database", db, "accuracy")))
        row.append(_cell(group, lambda r: _get(r.summary, "pooled", "accuracy")))
        row.append(_cell(group, lambda r: _get(r.summary, "pooled", "uf1")))
        row.append(_cell(group, lambda r: _get(r.summary, "timing", "train_s"), digits=1))
        row.append(_cell(group, lambda r: _get(r.summary, "timing", "wall_s"), digits=1))
        rows.append(row)
    return Table(
        "attention",
        "Full vs sparse (LSH) attention: accuracy and measured time per LOSO run, mean ± std over seeds",
        header,
        rows,
        ["Times are wall-clock seconds from each run's `summary.json` (`timing`), measured on a shared machine, so other jobs add noise."]
        + _partial_notes(coll),
    )


def subject_scores(group: VariantGroup, metric: str, seeds: list[int] | None = None) -> dict[str, float]:
    """Per-subject ``metric`` averaged over the group's runs, for subjects every run tested.

    Args:
        group: The variant.
        metric: A key of ``summary.json``'s ``per_subject`` entries (``accuracy``, ``macro_f1`` ...).
        seeds: Use only the runs with these seeds; None uses every run.
    """
    runs = [r for r in group.runs if seeds is None or r.seed in seeds]
    per_run = [r.summary.get("per_subject") or {} for r in runs]
    shared = set(per_run[0]).intersection(*per_run[1:]) if per_run else set()
    scores = {}
    for subject in shared:
        values = [_get(p, subject, metric) for p in per_run]
        if all(v is not None for v in values):
            scores[subject] = sum(values) / len(values)
    return scores


def shared_seeds(reference: VariantGroup, group: VariantGroup) -> list[int] | None:
    """Seeds finished by both variants, or None when they share none (then all runs are used)."""
    other = set(group.seeds)
    common = [s for s in reference.seeds if s is not None and s in other]
    return common or None


def paired_test(reference: VariantGroup, group: VariantGroup, metric: str) -> tuple[PairedTest, list[int] | None]:
    """Wilcoxon test of ``group`` against ``reference`` on the seeds both finished."""
    seeds = shared_seeds(reference, group)
    test = paired_wilcoxon(subject_scores(reference, metric, seeds), subject_scores(group, metric, seeds))
    return test, seeds


def format_p(p: float) -> str:
    return "n/a" if p != p else f"{p:.3g}"


def paired_tests_table(coll: RunCollection) -> Table | None:
    """Wilcoxon signed-rank tests of each variant against the reference over subjects."""
    reference = coll.group(coll.reference)
    others = [g for g in _finished(coll) if g.label != coll.reference]
    if not others:
        return None
    rows = []
    for group in others:
        row = [group.label]
        for metric in ("accuracy", "macro_f1"):
            test, seeds = paired_test(reference, group, metric)
            diff = "n/a" if test.mean_diff != test.mean_diff else f"{test.mean_diff:+.3f}"
            row += [f"{test.n} ({test.n_nonzero})", diff, format_p(test.p)]
        row.append("all" if seeds is None else ", ".join(map(str, seeds)))
        rows.append(row)
    return Table(
        "paired",
        f"Paired tests over test subjects: each variant minus `{coll.reference}` (Wilcoxon signed-rank, two-sided)",
        ["variant", "n (non-zero) Acc", "mean Δ Acc", "p Acc", "n (non-zero) F1", "mean Δ F1", "p F1", "seeds"],
        rows,
        [
            "Per-subject accuracy and macro F1 are averaged over the seeds that both variants finished (column seeds) "
            "before pairing. n counts subjects tested by every one of those runs, and the test ranks only the non-zero differences."
        ],
    )


def recall_table(coll: RunCollection) -> Table:
    rows = []
    for group in _finished(coll):
        row = [group.label]
        for name in coll.class_names:
            row.append(_cell(group, lambda r, name=name: _get(r.summary, "pooled", "per_class_recall", name)))
        rows.append(row)
    return Table(
        "recall",
        "Recall per class (pooled predictions), mean ± std over seeds",
        ["variant"] + coll.class_names,
        rows,
        _partial_notes(coll),
    )


def gamma_table(coll: RunCollection) -> Table:
    """Class frequency beside the mean uncertainty gamma each variant gives that class."""
    first = coll.runs[0].summary
    counts = {name: int(first["class_counts"].get(name, 0)) for name in coll.class_names}
    total = sum(counts.values()) or 1
    groups = _finished(coll)

    rows = []
    for name in sorted(coll.class_names, key=lambda c: counts[c]):
        row = [name, str(counts[name]), f"{100 * counts[name] / total:.1f}"]
        for group in groups:
            row.append(_cell(group, lambda r, name=name: _get(r.summary, "mean_gamma_per_class", name), digits=4))
        rows.append(row)
    return Table(
        "gamma",
        "Mean uncertainty gamma per true class against class frequency (rarest class first), mean ± std over seeds",
        ["class", "samples", "share (%)"] + [f"gamma `{g.label}`" for g in groups],
        rows,
        _partial_notes(coll),
    )


def run_ece(run: RunResult) -> float:
    """Expected calibration error (15 bins) of one run's pooled predictions."""
    frame = run.predictions
    return reliability(run.probabilities(), frame["pred_label"].to_numpy(), frame["true_label"].to_numpy()).ece


def calibration_table(coll: RunCollection) -> Table:
    rows = []
    for group in _finished(coll):
        rows.append(
            [
                group.label,
                _cell(group, run_ece),
                _cell(group, lambda r: float(r.probabilities().max(axis=1).mean())),
                _cell(group, lambda r: float((r.predictions["pred_label"] == r.predictions["true_label"]).mean())),
            ]
        )
    return Table(
        "calibration",
        "Calibration of the predicted probabilities (15 equal-width confidence bins), mean ± std over seeds",
        ["variant", "ECE", "mean confidence", "accuracy"],
        rows,
        _partial_notes(coll),
    )


def completeness_table(coll: RunCollection) -> Table:
    rows = []
    for group in coll.groups:
        for run in group.runs:
            planned = run.folds_planned
            done = [s for s in run.folds_done if s in planned]
            missing = ", ".join(run.folds_missing) or "none"
            rows.append([group.label, str(run.seed), f"{len(done)} of {len(planned)}", missing, f"`{run.path}`"])
        for gap in group.missing:
            rows.append([group.label, str(gap.seed), "0", gap.reason, f"`{gap.path}`"])
    return Table(
        "completeness",
        "Runs and planned folds behind every figure (a fold is a test subject)",
        ["variant", "seed", "folds done", "folds missing", "run directory"],
        rows,
    )
