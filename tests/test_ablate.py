"""Tests for the ablation variants, the ablation runner and `uamrn ablate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_runs import VARIANT_SKILL, write_run

import uamrn.train.loso
from uamrn.cli import main
from uamrn.config import RunConfig
from uamrn.report.runs import config_diff
from uamrn.train.ablation import DEFAULT_VARIANTS, MANIFEST, parse_variants, run_ablation, variant_config


class FakeEvaluate:
    """Stands in for the LOSO runner: writes a fake finished run and records each call."""

    def __init__(self):
        self.calls: list[tuple[str, int, Path]] = []

    def __call__(self, cfg: RunConfig, run_dir: Path, folds=None, **options) -> dict:
        variant = Path(run_dir).parent.name
        self.calls.append((variant, cfg.train.seed, Path(run_dir)))
        self.options = options
        return write_run(run_dir, cfg, VARIANT_SKILL.get(variant, 0.5))


@pytest.mark.parametrize(
    "variant, key, value",
    [
        ("no_uncertainty", "model.uncertainty", False),
        ("full_attention", "model.attention", "full"),
        ("no_magnification", "sequence.length", 1),
    ],
)
def test_variant_changes_one_setting(variant, key, value):
    base = RunConfig()
    diff = config_diff(base.model_dump(mode="json"), variant_config(base, variant, 5).model_dump(mode="json"))
    assert list(diff) == [key]
    assert diff[key][1] == value


def test_variant_full_keeps_base():
    base = RunConfig()
    cfg = variant_config(base, "full", 3)
    assert cfg.train.seed == 3
    assert config_diff(base.model_dump(mode="json"), cfg.model_dump(mode="json")) == {}


def test_variant_config_copies_base():
    base = RunConfig()
    variant_config(base, "no_uncertainty", 1)
    assert base.model.uncertainty is True


def test_parse_variants_adds_full():
    assert parse_variants("no_uncertainty") == ["full", "no_uncertainty"]


def test_parse_variants_unknown():
    with pytest.raises(ValueError, match="bogus"):
        parse_variants("full,bogus")


def test_run_ablation_layout(tmp_path):
    evaluate = FakeEvaluate()
    dirs = run_ablation(RunConfig(), tmp_path, list(DEFAULT_VARIANTS), [0, 1], evaluate=evaluate, cache_dir=tmp_path / "c")
    assert dirs == [tmp_path / v / f"seed{s}" for s in (0, 1) for v in DEFAULT_VARIANTS]
    assert [(v, s) for v, s, _ in evaluate.calls] == [(v, s) for s in (0, 1) for v in DEFAULT_VARIANTS]
    assert evaluate.options == {"cache_dir": tmp_path / "c"}
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["variants"] == list(DEFAULT_VARIANTS)
    assert manifest["seeds"] == [0, 1]


def test_run_ablation_seeds_reach_config(tmp_path):
    run_ablation(RunConfig(), tmp_path, ["full", "no_magnification"], [4], evaluate=FakeEvaluate())
    saved = RunConfig.from_yaml(tmp_path / "no_magnification" / "seed4" / "config.yaml")
    assert saved.train.seed == 4
    assert saved.sequence.length == 1


def test_run_ablation_extends_manifest(tmp_path):
    run_ablation(RunConfig(), tmp_path, ["full"], [0], evaluate=FakeEvaluate())
    run_ablation(RunConfig(), tmp_path, ["full", "no_uncertainty"], [1], evaluate=FakeEvaluate())
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["variants"] == ["full", "no_uncertainty"]
    assert manifest["seeds"] == [0, 1]


def test_run_ablation_rejects_other_base(tmp_path):
    run_ablation(RunConfig(), tmp_path, ["full"], [0], evaluate=FakeEvaluate())
    other = RunConfig()
    other.train.epochs = 3
    with pytest.raises(ValueError, match="different base configuration"):
        run_ablation(other, tmp_path, ["full"], [0], evaluate=FakeEvaluate())


def test_run_ablation_unknown_variant(tmp_path):
    with pytest.raises(ValueError, match="bogus"):
        run_ablation(RunConfig(), tmp_path, ["full", "bogus"], [0], evaluate=FakeEvaluate())


def test_cli_ablate_writes_report(tmp_path, monkeypatch):
    evaluate = FakeEvaluate()
    monkeypatch.setattr(uamrn.train.loso, "evaluate_dataset", evaluate)
    argv = ["ablate", "--root", str(tmp_path), "--out", str(tmp_path / "abl"), "--seeds", "2", "--seed", "7"]
    argv += ["--variants", "no_uncertainty", "--epochs", "3", "--cache-dir", str(tmp_path / "c")]
    assert main(argv + ["--no-report"]) == 0
    assert [(v, s) for v, s, _ in evaluate.calls] == [("full", 7), ("no_uncertainty", 7), ("full", 8), ("no_uncertainty", 8)]
    assert evaluate.options["final_model"] is False
    saved = RunConfig.from_yaml(tmp_path / "abl" / "full" / "seed7" / "config.yaml")
    assert saved.train.epochs == 3
    assert saved.data.root == tmp_path


def test_cli_ablate_report_lists_variants(tmp_path, monkeypatch):
    monkeypatch.setattr(uamrn.train.loso, "evaluate_dataset", FakeEvaluate())
    argv = ["ablate", "--root", str(tmp_path), "--out", str(tmp_path / "abl"), "--seeds", "1", "--variants", "full_attention"]
    assert main(argv) == 0
    markdown = (tmp_path / "abl" / "report" / "report.md").read_text()
    assert "| full_attention | `model.attention` sparse → full |" in markdown


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--variants", "bogus"], "unknown ablation variant"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--folds", " , "], "--folds ' , ' names nothing"),
    ],
)
def test_cli_ablate_bad_options(tmp_path, capsys, extra, message):
    argv = ["ablate", "--root", str(tmp_path), "--out", str(tmp_path / "abl")] + extra
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_ablate_needs_root(tmp_path, capsys):
    assert main(["ablate", "--out", str(tmp_path / "abl")]) == 2
    assert "--root" in capsys.readouterr().err


@pytest.mark.slow
def test_ablate_real_data_one_fold(shared_data, tmp_path):
    """Two variants, one fold, one epoch on the real composite set, then the full report."""
    from conftest import require

    root = require(shared_data / "megc2019")
    out = tmp_path / "abl"
    argv = ["ablate", "--dataset", "megc2019", "--root", str(root), "--databases", "casme2,smic", "--out", str(out)]
    argv += ["--seeds", "1", "--epochs", "1", "--folds", "sub01", "--variants", "full,no_magnification"]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0

    summary = json.loads((out / "no_magnification" / "seed0" / "summary.json").read_text())
    assert summary["folds_done"] == ["sub01"]
    markdown = (out / "report" / "report.md").read_text()
    assert "restricted by `--folds` to 1 of 40 test subjects: sub01" in markdown
    assert "| full | 0 | 1 of 1 | none |" in markdown
    assert (out / "report" / "figures" / "sequence.png").is_file()
    assert (out / "report" / "figures" / "attention.png").is_file()

    shared = tmp_path / "shared_report"
    assert main(["report", str(out), "--out", str(shared), "--omit-data-images", "--no-html"]) == 0
    assert (shared / "figures" / "attention.png").is_file()
    assert not (shared / "figures" / "sequence.png").exists()

    # A second run finds every fold finished and trains nothing.
    fold_json = out / "full" / "seed0" / "folds" / "sub01" / "fold.json"
    stamp = fold_json.stat().st_mtime_ns
    assert main(argv + ["--no-report"]) == 0
    assert fold_json.stat().st_mtime_ns == stamp
