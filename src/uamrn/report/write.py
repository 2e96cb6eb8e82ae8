"""Assemble the report from run directories and write it as Markdown, HTML and PNG figures."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from uamrn.fileio import atomic_write_text
from uamrn.report import figures, tables
from uamrn.report.document import BulletList, Figure, Heading, Paragraph, Report, to_markdown
from uamrn.report.html import to_html
from uamrn.report.runs import RunCollection, load_runs
from uamrn.report.stats import mean_std

__all__ = ["ReportFiles", "build_report", "write_report", "findings"]

log = logging.getLogger(__name__)

ALPHA = 0.05


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path | None
    figures: list[Path]


def _metric_finding(name: str, test) -> str:
    if test.p != test.p:
        return f"per-subject {name}: no non-zero difference (n = {test.n})"
    if test.p < ALPHA:
        verdict = "significantly lower" if test.mean_diff < 0 else "significantly higher"
    else:
        verdict = "no significant difference"
    return f"per-subject {name} Δ {test.mean_diff:+.3f}, p = {tables.format_p(test.p)} (n = {test.n_nonzero}): {verdict}"


def findings(coll: RunCollection) -> list[str]:
    """Summarise each variant in one line: the change in pooled UF1 and the paired tests.

    A test is called significant at p < 0.05, uncorrected for the number of comparisons.
    """
    reference = coll.group(coll.reference)
    lines = []
    for group in coll.groups:
        if group.label == coll.reference or not group.runs:
            continue
        seeds = tables.shared_seeds(reference, group)
        ref_uf1 = mean_std(float(r.summary["pooled"]["uf1"]) for r in reference.runs if seeds is None or r.seed in seeds)
        uf1 = mean_std(float(r.summary["pooled"]["uf1"]) for r in group.runs if seeds is None or r.seed in seeds)
        parts = []
        for metric, name in (("accuracy", "accuracy"), ("macro_f1", "F1")):
            test, _ = tables.paired_test(reference, group, metric)
            parts.append(_metric_finding(name, test))
        partial = " (partial runs)" if tables.is_partial(group) or tables.is_partial(reference) else ""
        seed_text = "all seeds" if seeds is None else f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        lines.append(
            f"`{group.label}` vs `{coll.reference}`{partial}, {seed_text}: pooled UF1 {uf1.mean:.3f} vs {ref_uf1.mean:.3f} "
            f"(Δ {uf1.mean - ref_uf1.mean:+.3f}); " + "; ".join(parts) + "."
        )
    return lines


def _setup_text(coll: RunCollection) -> list[str]:
    """Describe the reference run's configuration, read from its summary's ``config``."""
    cfg = coll.group(coll.reference).runs[0].summary.get("config") or {}
    data, seq, model, train = (cfg.get(k) or {} for k in ("data", "sequence", "model", "train"))
    if not model:
        return []
    return [
        f"Data: `{data.get('dataset')}` parts {', '.join(data.get('databases') or ['all'])}, input `{data.get('input')}`.",
        f"Sequence: L = {seq.get('length')} frames, amplification factors {seq.get('factor_start')} to {seq.get('factor_stop')}.",
        f"Model: d_model {model.get('d_model')}, {model.get('n_blocks')} blocks, {model.get('n_heads')} heads, "
        f"{model.get('attention')} attention with {model.get('n_tables')} hash tables of {model.get('n_hyperplanes')} hyperplanes, "
        f"dropout {model.get('dropout')}, M = {model.get('mc_samples')} Monte-Carlo passes.",
        f"Training: {train.get('epochs')} epochs, Adam lr {train.get('lr')} x{train.get('lr_decay')} every "
        f"{train.get('lr_step')} epochs, batch {train.get('batch_size')}; the model after the last epoch is tested.",
    ]


def _completeness_text(coll: RunCollection) -> list[str]:
    items = []
    for run in coll.runs:
        if run.folds_missing:
            items.append(f"`{run.path}` is missing folds {', '.join(run.folds_missing)}; its figures cover the finished folds only.")
    for gap in coll.missing_runs:
        items.append(f"`{gap.path}` ({gap.label}, seed {gap.seed}): {gap.reason}; it is left out of every mean.")
    return items


def build_report(
    paths: list[Path],
    out_dir: Path,
    sample: str | None = None,
    visuals: bool = True,
    title: str | None = None,
    figures_on: bool = True,
    data_images: bool = True,
) -> Report:
    """Load the runs, write the figures into ``out_dir/figures`` and return the report blocks.

    Args:
        paths: Run directories or ablation directories.
        out_dir: Folder of the report; figures go to ``out_dir/figures``.
        sample: Key ``database/subject/clip`` of the sample whose magnified sequence and
            attention are drawn; default: the first test sample of the reference variant.
        visuals: Draw the per-sample figures (they need the dataset and a saved fold model).
        title: Report title; default names the dataset.
        figures_on: Draw the summary figures; off gives the tables alone (faster, for tests).
        data_images: Draw figures made of dataset images (the magnified sequence); off for
            reports published where the data licence forbids redistribution.
    """
    coll = load_runs(paths)
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    dataset = coll.runs[0].summary["dataset"]
    report = Report(title or f"UAMRN report: {dataset}")

    report.add(
        Paragraph(
            f"Dataset `{dataset}`, classes {', '.join(coll.class_names)}. Every number below is read or "
            "computed from the runs' `summary.json` and `predictions.csv`; the reference variant is "
            f"`{coll.reference}`."
        )
    )
    planned = (coll.manifest or {}).get("folds")
    if planned:
        subjects = coll.runs[0].summary.get("folds_expected") or []
        report.add(
            Paragraph(
                f"The ablation was restricted by `--folds` to {len(planned)} of {len(subjects)} test subjects: "
                f"{', '.join(planned)}. Every figure below covers these folds only."
            )
        )
    gaps = _completeness_text(coll)
    if gaps:
        report.add(Heading("Missing runs and folds"), BulletList(gaps))
    if coll.notes:
        report.add(Heading("Warnings"), BulletList(coll.notes))

    setup = _setup_text(coll)
    if setup:
        report.add(Heading(f"Setup of `{coll.reference}`"), BulletList(setup))
    report.add(Heading("Variants"), tables.variants_table(coll))
    if len([g for g in coll.groups if g.runs]) > 1:
        report.add(
            Heading("Findings"),
            BulletList(findings(coll)),
            Paragraph(
                f"Wilcoxon signed-rank tests over subjects, two-sided; significant means p < {ALPHA}, "
                "not corrected for the number of comparisons."
            ),
        )

    report.add(Heading("Results"), tables.results_table(coll), tables.per_subject_mean_table(coll))
    if figures_on:
        report.add(Figure(figures.results_figure(coll, fig_dir / "results.png"), "Pooled scores per variant and seed"))
    for table in (tables.uncertainty_table(coll), tables.attention_table(coll), tables.paired_tests_table(coll)):
        if table is not None:
            report.add(table)
    paired = figures.paired_figure(coll, fig_dir / "paired_accuracy.png") if figures_on else None
    if paired is not None:
        report.add(Figure(paired, "Per-subject accuracy of each variant against the reference"))

    report.add(Heading("Per-class recall and confusion matrices"), tables.recall_table(coll))
    if figures_on:
        report.add(Figure(figures.confusion_figure(coll, fig_dir / "confusion.png"), "Confusion matrices, summed over seeds"))

    report.add(Heading("Uncertainty against class frequency"), tables.gamma_table(coll))
    if figures_on:
        report.add(Figure(figures.gamma_figure(coll, fig_dir / "gamma_vs_frequency.png"), "Mean gamma per class against class size"))

    report.add(Heading("Calibration"), tables.calibration_table(coll))
    if figures_on:
        report.add(Figure(figures.reliability_figure(coll, fig_dir / "reliability.png"), "Reliability diagrams with ECE"))

    if visuals and figures_on:
        from uamrn.report.sample_views import sample_blocks

        report.add(Heading("A sample through the network"))
        report.add(*sample_blocks(coll, fig_dir, sample, data_images=data_images))

    report.add(Heading("Completeness"), tables.completeness_table(coll))
    return report


def write_report(
    paths: list[Path],
    out_dir: Path,
    sample: str | None = None,
    visuals: bool = True,
    html: bool = True,
    title: str | None = None,
    figures_on: bool = True,
    data_images: bool = True,
) -> ReportFiles:
    """Build the report and write ``report.md`` (and ``report.html``) atomically into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(
        paths, out_dir, sample=sample, visuals=visuals, title=title, figures_on=figures_on, data_images=data_images
    )

    markdown = out_dir / "report.md"
    atomic_write_text(markdown, to_markdown(report, out_dir))
    html_path = None
    if html:
        html_path = out_dir / "report.html"
        atomic_write_text(html_path, to_html(report))
    log.info("report written to %s", markdown)
    return ReportFiles(markdown, html_path, [f.path for f in report.figures()])
