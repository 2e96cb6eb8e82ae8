"""Sharded LOSO runs merged by ``uamrn merge`` equal one unsharded run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uamrn.cli import main
from uamrn.config import ModelConfig, RunConfig, SequenceConfig, TrainConfig
from uamrn.data.sample import Sample, SampleSet
from uamrn.train.loso import run_loso
from uamrn.train.merge import merge_runs
from uamrn.train.parallel import select_shard

SUBJECTS = ("s1", "s2", "s3", "s4")


def tiny_run() -> tuple[SampleSet, np.ndarray, RunConfig]:
    """Four subjects of five samples with random features, and a two-epoch model."""
    rng = np.random.default_rng(0)
    samples = [
        Sample(database="casme2" if i < 2 else "smic", subject=subject, clip=f"c{j}", label=int(rng.integers(0, 3)))
        for i, subject in enumerate(SUBJECTS)
        for j in range(5)
    ]
    sample_set = SampleSet(name="megc2019", class_names=("negative", "positive", "surprise"), samples=samples)
    features = rng.normal(size=(len(samples), 4, 6)).astype(np.float32)
    cfg = RunConfig(
        sequence=SequenceConfig(length=4),
        model=ModelConfig(d_model=16, n_blocks=1, n_heads=2, mc_samples=2),
        train=TrainConfig(epochs=2, batch_size=8, threads=1),
    )
    return sample_set, features, cfg


def without_timing(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key != "timing"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One unsharded run and the two shards of the same run."""
    root = tmp_path_factory.mktemp("runs")
    sample_set, features, cfg = tiny_run()
    run_loso(sample_set, features, cfg, root / "single")
    for index in (1, 2):
        run_loso(sample_set, features, cfg, root / f"shard{index}", shard=(index, 2))
    return {"root": root, "single": root / "single", "shard1": root / "shard1", "shard2": root / "shard2"}


def test_merge_equals_single_run(runs, tmp_path):
    merged = merge_runs([runs["shard1"], runs["shard2"]], tmp_path / "merged")
    single = json.loads((runs["single"] / "summary.json").read_text())

    assert merged["folds_missing"] == []
    assert without_timing(merged) == without_timing(single)
    assert json.loads((tmp_path / "merged" / "summary.json").read_text()) == merged


def test_merge_predictions_equal(runs, tmp_path):
    merge_runs([runs["shard2"], runs["shard1"]], tmp_path / "merged")
    merged = pd.read_csv(tmp_path / "merged" / "predictions.csv")
    single = pd.read_csv(runs["single"] / "predictions.csv")
    pd.testing.assert_frame_equal(merged, single)


def test_merge_one_shard_reports_missing(runs, tmp_path):
    summary = merge_runs([runs["shard1"]], tmp_path / "partial")
    assert summary["folds_done"] == select_shard(SUBJECTS, 1, 2)
    assert summary["folds_missing"] == select_shard(SUBJECTS, 2, 2)


def test_merge_resumes_with_more_shards(runs, tmp_path):
    merge_runs([runs["shard1"]], tmp_path / "merged")
    summary = merge_runs([runs["shard1"], runs["shard2"]], tmp_path / "merged")
    assert summary["folds_missing"] == []


def test_merge_rejects_config_mismatch(runs, tmp_path):
    odd = tmp_path / "odd"
    shutil.copytree(runs["shard2"], odd)
    cfg = RunConfig.from_yaml(odd / "config.yaml")
    cfg.train.epochs = 3
    (odd / "config.yaml").write_text(cfg.to_yaml())

    with pytest.raises(ValueError, match="same config"):
        merge_runs([runs["shard1"], odd], tmp_path / "merged")


def test_merge_rejects_conflicting_fold(runs, tmp_path):
    conflict = tmp_path / "conflict"
    shutil.copytree(runs["single"], conflict)
    subject = select_shard(SUBJECTS, 1, 2)[0]
    predictions = conflict / "folds" / subject / "predictions.csv"
    table = pd.read_csv(predictions)
    table["pred_label"] = (table["pred_label"] + 1) % 3
    table.to_csv(predictions, index=False)

    with pytest.raises(ValueError, match="different predictions"):
        merge_runs([runs["shard1"], conflict], tmp_path / "merged")


def test_merge_rejects_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        merge_runs([tmp_path / "absent"], tmp_path / "merged")


def test_merge_rejects_out_as_shard(runs):
    with pytest.raises(ValueError, match="one of the shard directories"):
        merge_runs([runs["shard1"]], runs["shard1"])


def test_shard_runs_own_folds(runs):
    for index in (1, 2):
        summary = json.loads((runs[f"shard{index}"] / "summary.json").read_text())
        assert summary["folds_done"] == select_shard(SUBJECTS, index, 2)


@pytest.mark.slow
def test_parallel_jobs_equal_serial(runs, tmp_path):
    sample_set, features, cfg = tiny_run()
    parallel = run_loso(sample_set, features, cfg, tmp_path / "jobs2", jobs=2)
    single = json.loads((runs["single"] / "summary.json").read_text())
    assert without_timing(parallel) == without_timing(single)


def test_merge_command(runs, tmp_path, capsys):
    code = main(["merge", str(runs["shard1"]), str(runs["shard2"]), "--out", str(tmp_path / "cli")])
    assert code == 0
    assert "4/4 folds" in capsys.readouterr().out
    assert (tmp_path / "cli" / "summary.json").is_file()


def test_merge_command_bad_dir(tmp_path, capsys):
    code = main(["merge", str(tmp_path / "absent"), "--out", str(tmp_path / "cli")])
    assert code == 2
    assert "not a run directory" in capsys.readouterr().err
