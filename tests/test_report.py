"""Tests for `uamrn report`: numbers traced back to summary.json, gaps reported, statistics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_runs import CLASSES, write_ablation, write_run, variant_config
from scipy import stats as scipy_stats

from uamrn.cli import main
from uamrn.report.runs import load_runs
from uamrn.report.stats import mean_std, paired_wilcoxon, reliability
from uamrn.report.write import write_report

VARIANTS = ["full", "no_uncertainty", "full_attention", "no_magnification"]
NUMBER = re.compile(r"^([-+]?\d+(?:\.\d+)?)(?: ± (\d+(?:\.\d+)?))?")


def parse_table(markdown: str, key: str) -> list[dict[str, str]]:
    """Rows of the Markdown table anchored ``<a id="key">`` as header -> cell dicts."""
    lines = markdown.splitlines()
    start = lines.index(f'<a id="{key}"></a>')
    table = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split(" | ")])
        elif table:
            break
    header, body = table[0], table[2:]
    return [dict(zip(header, row)) for row in body]


def parse_number(cell: str) -> tuple[float, float | None]:
    match = NUMBER.match(cell)
    assert match, f"no number in cell {cell!r}"
    return float(match.group(1)), None if match.group(2) is None else float(match.group(2))


def assert_cell(cell: str, values: list[float], digits: int = 3) -> None:
    """The cell shows mean ± sample std of ``values``, rounded to ``digits`` decimals."""
    mean, std = parse_number(cell)
    tolerance = 0.5 * 10**-digits + 1e-9
    assert abs(mean - np.mean(values)) <= tolerance, f"{cell!r} vs mean {np.mean(values)}"
    if len(values) > 1:
        assert std is not None, f"{cell!r} lacks the std"
        assert abs(std - np.std(values, ddof=1)) <= tolerance, f"{cell!r} vs std {np.std(values, ddof=1)}"


def summaries(root: Path, variant: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / variant).glob("seed*/summary.json"))]


@pytest.fixture(scope="module")
def ablation(tmp_path_factory) -> tuple[Path, str]:
    root = write_ablation(tmp_path_factory.mktemp("abl") / "runs", VARIANTS, [0, 1, 2])
    out = root.parent / "report"
    write_report([root], out, visuals=False)
    return root, (out / "report.md").read_text()


def test_results_match_summary(ablation):
    root, markdown = ablation
    rows = {r["variant"]: r for r in parse_table(markdown, "results")}
    assert list(rows) == VARIANTS
    for variant in VARIANTS:
        runs = summaries(root, variant)
        assert len(runs) == 3
        for db, name in (("casme2", "CASME II"), ("smic", "SMIC-HS")):
            assert_cell(rows[variant][f"{name} Acc"], [s["per_database"][db]["accuracy"] for s in runs])
            assert_cell(rows[variant][f"{name} F1"], [s["per_database"][db]["macro_f1"] for s in runs])
        assert_cell(rows[variant]["All Acc"], [s["pooled"]["accuracy"] for s in runs])
        assert_cell(rows[variant]["All UF1"], [s["pooled"]["uf1"] for s in runs])
        assert_cell(rows[variant]["All UAR"], [s["pooled"]["uar"] for s in runs])


def test_per_subject_mean_match_summary(ablation):
    root, markdown = ablation
    rows = {r["variant"]: r for r in parse_table(markdown, "per_subject_mean")}
    for variant in VARIANTS:
        runs = summaries(root, variant)
        for key, column in (("accuracy", "Acc"), ("macro_f1", "F1"), ("uar", "UAR")):
            assert_cell(rows[variant][column], [s["per_subject_mean"][key] for s in runs])


def test_recall_and_gamma_match_summary(ablation):
    root, markdown = ablation
    recall = {r["variant"]: r for r in parse_table(markdown, "recall")}
    gamma = {r["class"]: r for r in parse_table(markdown, "gamma")}
    for variant in VARIANTS:
        runs = summaries(root, variant)
        for name in CLASSES:
            assert_cell(recall[variant][name], [s["pooled"]["per_class_recall"][name] for s in runs])
            assert_cell(gamma[name][f"gamma `{variant}`"], [s["mean_gamma_per_class"][name] for s in runs], digits=4)
    counts = summaries(root, "full")[0]["class_counts"]
    for name in CLASSES:
        assert int(gamma[name]["samples"]) == counts[name]


def test_gamma_rows_rarest_first(ablation):
    root, markdown = ablation
    counts = [int(r["samples"]) for r in parse_table(markdown, "gamma")]
    assert counts == sorted(counts)


def test_attention_time_matches_summary(ablation):
    root, markdown = ablation
    rows = parse_table(markdown, "attention")
    assert len(rows) == 2
    for row, variant in zip(rows, ("full", "full_attention")):
        assert f"`{variant}`" in row["attention"]
        runs = summaries(root, variant)
        assert_cell(row["train time (s)"], [s["timing"]["train_s"] for s in runs], digits=1)
        assert_cell(row["run time (s)"], [s["timing"]["wall_s"] for s in runs], digits=1)


def test_uncertainty_table_rows(ablation):
    root, markdown = ablation
    rows = parse_table(markdown, "uncertainty")
    assert rows[0]["training"] == "uncertainty-aware (`full`)"
    assert rows[1]["training"] == "deterministic (`no_uncertainty`)"
    assert_cell(rows[1]["All UF1"], [s["pooled"]["uf1"] for s in summaries(root, "no_uncertainty")])


def test_paired_tests_match_scipy(ablation):
    root, markdown = ablation
    rows = {r["variant"]: r for r in parse_table(markdown, "paired")}
    assert set(rows) == set(VARIANTS) - {"full"}
    reference = summaries(root, "full")
    for variant in rows:
        runs = summaries(root, variant)
        for metric, suffix in (("accuracy", "Acc"), ("macro_f1", "F1")):
            subjects = sorted(reference[0]["per_subject"])
            ref = np.mean([[s["per_subject"][k][metric] for k in subjects] for s in reference], axis=0)
            var = np.mean([[s["per_subject"][k][metric] for k in subjects] for s in runs], axis=0)
            diff = var - ref
            expected = scipy_stats.wilcoxon(diff[diff != 0])
            n, nonzero = re.match(r"(\d+) \((\d+)\)", rows[variant][f"n (non-zero) {suffix}"]).groups()
            assert int(n) == len(subjects)
            assert int(nonzero) == int(np.count_nonzero(diff))
            assert abs(float(rows[variant][f"mean Δ {suffix}"]) - diff.mean()) <= 5e-4
            assert float(rows[variant][f"p {suffix}"]) == pytest.approx(expected.pvalue, rel=5e-3)


def test_calibration_matches_predictions(ablation):
    root, markdown = ablation
    rows = {r["variant"]: r for r in parse_table(markdown, "calibration")}
    for variant in VARIANTS:
        eces, accs = [], []
        for path in sorted((root / variant).glob("seed*/predictions.csv")):
            frame = pd.read_csv(path)
            probs = frame[[f"prob_{c}" for c in CLASSES]].to_numpy()
            eces.append(reliability(probs, frame["pred_label"], frame["true_label"]).ece)
            accs.append(float((frame["pred_label"] == frame["true_label"]).mean()))
        assert_cell(rows[variant]["ECE"], eces)
        assert_cell(rows[variant]["accuracy"], accs)


def test_findings_quote_table_figures(ablation):
    root, markdown = ablation
    line = next(l for l in markdown.splitlines() if l.startswith("- `no_magnification` vs `full`, seeds 0, 1, 2"))
    uf1 = re.search(r"pooled UF1 ([\d.]+) vs ([\d.]+)", line).groups()
    assert abs(float(uf1[0]) - np.mean([s["pooled"]["uf1"] for s in summaries(root, "no_magnification")])) <= 5e-4
    assert abs(float(uf1[1]) - np.mean([s["pooled"]["uf1"] for s in summaries(root, "full")])) <= 5e-4


def test_report_figures_written(ablation):
    root, markdown = ablation
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)
    assert len(links) == 5
    for link in links:
        assert (root.parent / "report" / link).stat().st_size > 1000


def test_html_embeds_figures(ablation):
    root, _ = ablation
    html = (root.parent / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert 'src="figures/' not in html


def test_missing_fold_reported(tmp_path):
    root = write_ablation(tmp_path / "runs", ["full", "no_uncertainty"], [0, 1], missing_folds={("no_uncertainty", 1): ("s03",)})
    write_report([root], tmp_path / "rep", visuals=False, figures_on=False)
    markdown = (tmp_path / "rep" / "report.md").read_text()
    assert "missing folds s03" in markdown
    rows = {r["variant"]: r for r in parse_table(markdown, "results")}
    assert rows["no_uncertainty"]["All UF1"].endswith("†")
    assert not rows["full"]["All UF1"].endswith("†")
    completeness = {(r["variant"], r["seed"]): r for r in parse_table(markdown, "completeness")}
    assert completeness[("no_uncertainty", "1")]["folds missing"] == "s03"
    assert completeness[("no_uncertainty", "1")]["folds done"] == "8 of 9"


def test_paired_test_drops_missing_subject(tmp_path):
    root = write_ablation(tmp_path / "runs", ["full", "no_uncertainty"], [0], missing_folds={("no_uncertainty", 0): ("s03",)})
    write_report([root], tmp_path / "rep", visuals=False, figures_on=False)
    row = parse_table((tmp_path / "rep" / "report.md").read_text(), "paired")[0]
    assert row["n (non-zero) Acc"].startswith("8 ")


def test_missing_run_reported(tmp_path):
    root = write_ablation(tmp_path / "runs", ["full", "no_uncertainty"], [0, 1], skip=(("no_uncertainty", 1),))
    write_report([root], tmp_path / "rep", visuals=False, figures_on=False)
    markdown = (tmp_path / "rep" / "report.md").read_text()
    completeness = {(r["variant"], r["seed"]): r for r in parse_table(markdown, "completeness")}
    assert completeness[("no_uncertainty", "1")]["folds missing"] == "not started"
    variants = {r["variant"]: r for r in parse_table(markdown, "variants")}
    assert variants["no_uncertainty"]["runs"] == "1 of 2 †"


def test_paired_test_uses_shared_seeds(tmp_path):
    root = write_ablation(tmp_path / "runs", ["full", "no_uncertainty"], [0, 1], skip=(("no_uncertainty", 1),))
    write_report([root], tmp_path / "rep", visuals=False, figures_on=False)
    markdown = (tmp_path / "rep" / "report.md").read_text()
    row = parse_table(markdown, "paired")[0]
    assert row["seeds"] == "0"
    full = json.loads((root / "full" / "seed0" / "summary.json").read_text())
    ablated = json.loads((root / "no_uncertainty" / "seed0" / "summary.json").read_text())
    subjects = sorted(full["per_subject"])
    diff = [ablated["per_subject"][k]["accuracy"] - full["per_subject"][k]["accuracy"] for k in subjects]
    assert abs(float(row["mean Δ Acc"]) - np.mean(diff)) <= 5e-4
    line = next(l for l in markdown.splitlines() if l.startswith("- `no_uncertainty` vs `full` (partial runs), seed 0:"))
    assert f"vs {full['pooled']['uf1']:.3f}" in line


def test_unfinished_run_reported(tmp_path):
    root = write_ablation(tmp_path / "runs", ["full", "no_uncertainty"], [0])
    (root / "no_uncertainty" / "seed0" / "summary.json").unlink()
    write_report([root], tmp_path / "rep", visuals=False, figures_on=False)
    markdown = (tmp_path / "rep" / "report.md").read_text()
    assert "no summary.json (unfinished run)" in markdown
    assert [r["variant"] for r in parse_table(markdown, "results")] == ["full"]


def test_single_runs_grouped_by_folder(tmp_path):
    write_run(tmp_path / "a", variant_config("full", 0), 0.7)
    write_run(tmp_path / "b", variant_config("full_attention", 0), 0.6)
    write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "rep", visuals=False, figures_on=False)
    markdown = (tmp_path / "rep" / "report.md").read_text()
    assert [r["variant"] for r in parse_table(markdown, "results")] == ["a", "b"]
    assert len(parse_table(markdown, "attention")) == 2


def test_load_runs_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_runs([tmp_path / "nowhere"])


def test_load_runs_empty_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished run"):
        load_runs([tmp_path])


def test_load_runs_bad_summary(tmp_path):
    write_run(tmp_path / "a", variant_config("full", 0), 0.7)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    del summary["pooled"]
    (tmp_path / "a" / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match=r"summary\.json lacks the keys \['pooled'\]"):
        load_runs([tmp_path / "a"])


def test_load_runs_mixed_classes(tmp_path):
    write_run(tmp_path / "a", variant_config("full", 0), 0.7)
    write_run(tmp_path / "b", variant_config("full", 1), 0.7)
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    summary["class_names"] = ["x", "y", "z"]
    (tmp_path / "b" / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="same class list"):
        load_runs([tmp_path / "a", tmp_path / "b"])


def test_cli_report_writes_files(tmp_path):
    root = write_ablation(tmp_path / "runs", ["full", "no_uncertainty"], [0])
    assert main(["report", str(root), "--out", str(tmp_path / "rep"), "--no-sample-figures"]) == 0
    assert (tmp_path / "rep" / "report.md").is_file()
    assert (tmp_path / "rep" / "report.html").is_file()


def test_cli_report_missing_dir(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(tmp_path / "rep")]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_mean_std_single_value():
    assert mean_std([0.5]).format() == "0.500"


def test_mean_std_sample_std():
    assert mean_std([1.0, 2.0, 3.0]).format(2) == "2.00 ± 1.00"


def test_mean_std_empty():
    assert mean_std([]).format() == "n/a"


def test_wilcoxon_all_zero_differences():
    test = paired_wilcoxon({"a": 0.5, "b": 0.7}, {"a": 0.5, "b": 0.7})
    assert test.n == 2
    assert test.n_nonzero == 0
    assert np.isnan(test.p)


def test_wilcoxon_uses_shared_subjects():
    test = paired_wilcoxon({"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.9}, {"a": 0.4, "b": 0.6, "c": 0.5})
    assert test.n == 3
    assert test.mean_diff == pytest.approx((0.3 + 0.4 + 0.2) / 3)
    assert test.p == pytest.approx(scipy_stats.wilcoxon([0.3, 0.4, 0.2]).pvalue)


def test_ece_hand_computed():
    # Two bins used: confidence 0.9 (2 samples, 1 correct) and 0.5 (2 samples, 2 correct).
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5]])
    result = reliability(probs, predicted=np.array([0, 0, 0, 0]), target=np.array([0, 1, 0, 0]))
    assert result.ece == pytest.approx(0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.5))
    assert int(result.counts.sum()) == 4
    assert len(result.counts) == 15


def test_ece_perfect_calibration():
    probs = np.array([[1.0, 0.0]] * 5)
    result = reliability(probs, predicted=np.zeros(5), target=np.zeros(5))
    assert result.ece == pytest.approx(0.0)
    assert result.counts[-1] == 5


def test_ece_rejects_empty():
    with pytest.raises(ValueError, match="shape"):
        reliability(np.zeros((0, 3)), np.zeros(0), np.zeros(0))
