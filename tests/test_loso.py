"""The LOSO runner: run-directory files, resume after a crash, seeded reruns, bad input."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest

from uamrn.config import ModelConfig, RunConfig, TrainConfig
from uamrn.data.sample import Sample, SampleSet
from uamrn.train import loso, runio
from uamrn.train.fit import derive_seed
from uamrn.train.loso import run_loso, summarize, train_final

SUBJECTS = ("s1", "s2", "s3")
NAMES = ("negative", "positive", "surprise")


def tiny_set() -> tuple[SampleSet, np.ndarray]:
    """Three subjects with four samples each, features (12, 4, 6) with a class signal."""
    rng = np.random.default_rng(0)
    samples, rows = [], []
    for subject in SUBJECTS:
        for clip, label in enumerate((0, 1, 2, 0)):
            database = "casme2" if subject != "s3" else "smic"
            samples.append(Sample(database=database, subject=subject, clip=f"c{clip}", label=label))
            row = rng.normal(size=(4, 6))
            row[:, label] += 2.0
            rows.append(row)
    return SampleSet("tiny", NAMES, samples), np.asarray(rows, dtype=np.float32)


def tiny_config(**changes) -> RunConfig:
    model = ModelConfig(d_model=8, n_blocks=1, n_heads=2, mc_samples=2, dropout=0.1)
    train = {"epochs": 2, "batch_size": 4, "threads": 1, **changes}
    return RunConfig(model=model, train=TrainConfig(**train))


def without_timing(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key != "timing"}


def test_run_writes_layout(tmp_path):
    sample_set, features = tiny_set()
    run_loso(sample_set, features, tiny_config(), tmp_path)
    for subject in SUBJECTS:
        for name in ("predictions.csv", "model.safetensors", "model.yaml", "fold.json"):
            assert (tmp_path / "folds" / subject / name).is_file(), f"{subject}/{name}"
    assert (tmp_path / "config.yaml").is_file()
    assert (tmp_path / "predictions.csv").is_file()
    assert (tmp_path / "summary.json").is_file()


def test_predictions_columns(tmp_path):
    sample_set, features = tiny_set()
    run_loso(sample_set, features, tiny_config(), tmp_path)
    table = pd.read_csv(tmp_path / "predictions.csv")
    expected = ["database", "subject", "clip", "true_label", "true_name", "pred_label", "pred_name",
                "prob_negative", "prob_positive", "prob_surprise", "gamma"]
    assert list(table.columns) == expected
    assert len(table) == 12
    np.testing.assert_allclose(table[[f"prob_{n}" for n in NAMES]].sum(axis=1), 1.0, atol=1e-5)


def test_summary_keys(tmp_path):
    sample_set, features = tiny_set()
    summary = run_loso(sample_set, features, tiny_config(), tmp_path)
    assert summary == json.loads((tmp_path / "summary.json").read_text())
    for key in ("dataset", "class_names", "n_samples", "n_subjects", "folds_expected", "folds_done",
                "folds_missing", "pooled", "per_subject_mean", "per_database", "per_subject",
                "mean_gamma_per_class", "class_counts", "timing", "config"):
        assert key in summary, key
    assert set(summary["pooled"]) >= {"accuracy", "macro_f1", "uf1", "uar", "per_class_recall", "confusion_matrix"}
    assert set(summary["per_database"]) == {"casme2", "smic"}
    assert summary["per_database"]["smic"]["n_samples"] == 4
    assert summary["folds_missing"] == []


def test_summary_matches_predictions(tmp_path):
    sample_set, features = tiny_set()
    summary = run_loso(sample_set, features, tiny_config(), tmp_path)
    table = pd.read_csv(tmp_path / "predictions.csv")
    assert summary["pooled"]["accuracy"] == pytest.approx(float(np.mean(table.true_label == table.pred_label)))
    assert int(np.sum(summary["pooled"]["confusion_matrix"])) == 12


def test_partial_folds_listed_missing(tmp_path):
    sample_set, features = tiny_set()
    summary = run_loso(sample_set, features, tiny_config(), tmp_path, folds=["s2"])
    assert summary["folds_done"] == ["s2"]
    assert summary["folds_missing"] == ["s1", "s3"]
    assert summary["n_predictions"] == 4


def test_crash_mid_fold_resumes_same_summary(tmp_path, monkeypatch):
    sample_set, features = tiny_set()
    cfg = tiny_config()
    reference = run_loso(sample_set, features, cfg, tmp_path / "clean")

    # Crash the second fold after its predictions are written but before its model and fold.json.
    calls = {"n": 0}
    real_save = loso.save_model

    def failing_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(loso, "save_model", failing_save)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_loso(sample_set, features, cfg, tmp_path / "crashed")
    assert (tmp_path / "crashed" / "folds" / "s1" / "fold.json").is_file()
    assert not (tmp_path / "crashed" / "folds" / "s2" / "fold.json").exists()

    monkeypatch.setattr(loso, "save_model", real_save)
    resumed = run_loso(sample_set, features, cfg, tmp_path / "crashed")
    assert without_timing(resumed) == without_timing(reference)
    clean = (tmp_path / "clean" / "predictions.csv").read_text()
    assert (tmp_path / "crashed" / "predictions.csv").read_text() == clean


def test_rerun_skips_finished_folds(tmp_path, monkeypatch):
    sample_set, features = tiny_set()
    cfg = tiny_config()
    first = run_loso(sample_set, features, cfg, tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(loso, "train_fold", no_training)
    again = run_loso(sample_set, features, cfg, tmp_path)
    assert without_timing(again) == without_timing(first)


def test_seeded_reruns_equal(tmp_path):
    sample_set, features = tiny_set()
    run_loso(sample_set, features, tiny_config(), tmp_path / "a")
    run_loso(sample_set, features, tiny_config(), tmp_path / "b")
    assert (tmp_path / "a" / "predictions.csv").read_text() == (tmp_path / "b" / "predictions.csv").read_text()


def test_single_fold_rerun_equals_full_run(tmp_path):
    sample_set, features = tiny_set()
    run_loso(sample_set, features, tiny_config(), tmp_path / "all")
    run_loso(sample_set, features, tiny_config(), tmp_path / "one", folds=["s3"])
    fold = "folds/s3/predictions.csv"
    assert (tmp_path / "one" / fold).read_text() == (tmp_path / "all" / fold).read_text()


def test_other_seed_changes_predictions(tmp_path):
    sample_set, features = tiny_set()
    run_loso(sample_set, features, tiny_config(), tmp_path / "a")
    run_loso(sample_set, features, tiny_config(seed=1), tmp_path / "b")
    assert (tmp_path / "a" / "predictions.csv").read_text() != (tmp_path / "b" / "predictions.csv").read_text()


def test_derive_seed_depends_on_subject():
    assert derive_seed(0, "s1") != derive_seed(0, "s2")
    assert derive_seed(0, "s1") == derive_seed(0, "s1")


def test_other_config_in_run_dir_rejected(tmp_path):
    sample_set, features = tiny_set()
    run_loso(sample_set, features, tiny_config(), tmp_path, folds=["s1"])
    with pytest.raises(ValueError, match="different config.*train.epochs.*new --out"):
        run_loso(sample_set, features, tiny_config(epochs=3), tmp_path, folds=["s1"])


def test_changed_label_in_run_dir_rejected(tmp_path):
    sample_set, features = tiny_set()
    run_loso(sample_set, features, tiny_config(), tmp_path, folds=["s1"])
    sample_set.samples[4] = dataclasses.replace(sample_set.samples[4], label=2)
    with pytest.raises(ValueError, match="different data.*casme2/s2/c0 label saved 0, now 2.*new --out"):
        run_loso(sample_set, features, tiny_config(), tmp_path, folds=["s1"])


def test_removed_sample_in_run_dir_rejected(tmp_path):
    sample_set, features = tiny_set()
    run_loso(sample_set, features, tiny_config(), tmp_path, folds=["s1"])
    del sample_set.samples[3]
    with pytest.raises(ValueError, match="different data.*casme2/s1/c3 removed"):
        run_loso(sample_set, np.delete(features, 3, axis=0), tiny_config(), tmp_path, folds=["s1"])


def test_changed_file_in_run_dir_rejected(tmp_path):
    sample_set, features = tiny_set()
    for index, sample in enumerate(sample_set.samples):
        flow = tmp_path / f"flow{index}.png"
        flow.write_bytes(b"flow %d" % index)
        sample_set.samples[index] = dataclasses.replace(sample, flow=flow)
    run_loso(sample_set, features, tiny_config(), tmp_path / "run", folds=["s1"])
    run_loso(sample_set, features, tiny_config(), tmp_path / "run", folds=["s1"])
    (tmp_path / "flow5.png").write_bytes(b"other flow")
    with pytest.raises(ValueError, match="different data.*contents of the input files changed"):
        run_loso(sample_set, features, tiny_config(), tmp_path / "run", folds=["s1"])


def test_unknown_fold_subject_rejected(tmp_path):
    sample_set, features = tiny_set()
    with pytest.raises(ValueError, match="subject 'nobody' given in --folds has no samples"):
        run_loso(sample_set, features, tiny_config(), tmp_path, folds=["nobody"])


def test_train_fold_subject_without_samples(tmp_path):
    sample_set, features = tiny_set()
    with pytest.raises(ValueError, match="subject 'nobody' has no samples"):
        loso.train_fold("nobody", sample_set, features, tiny_config(), tmp_path)


def test_feature_rows_must_match_samples(tmp_path):
    sample_set, features = tiny_set()
    with pytest.raises(ValueError, match="11 feature rows for 12 samples"):
        run_loso(sample_set, features[:11], tiny_config(), tmp_path)


def test_summarize_without_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="no LOSO run found"):
        summarize(tmp_path)


def test_fold_model_reloads_same_predictions(tmp_path):
    sample_set, features = tiny_set()
    run_loso(sample_set, features, tiny_config(), tmp_path, folds=["s2"])
    model, meta = runio.load_model(tmp_path / "folds" / "s2")
    assert meta.test_subject == "s2"
    assert meta.class_names == NAMES
    import torch

    with torch.no_grad():
        probabilities = torch.softmax(model(torch.from_numpy(meta.standardize(features[4:8]))).logits, -1).numpy()
    table = pd.read_csv(tmp_path / "folds" / "s2" / "predictions.csv")
    np.testing.assert_allclose(probabilities, table[[f"prob_{n}" for n in NAMES]].to_numpy(), atol=1e-5)


def test_final_model_saved(tmp_path):
    sample_set, features = tiny_set()
    cfg = tiny_config()
    runio.check_run_config(tmp_path, cfg)
    folder = train_final(sample_set, features, cfg, tmp_path)
    model, meta = runio.load_model(folder)
    assert meta.test_subject is None
    assert meta.in_features == 6
    assert meta.feature_mean.shape == (6,)
    assert meta.config == cfg


def test_load_model_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.yaml"):
        runio.load_model(tmp_path)


def test_atomic_write_permissions_follow_umask(tmp_path):
    from uamrn.fileio import atomic_write_text

    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "summary.json", "{}")
    finally:
        os.umask(previous)
    assert (tmp_path / "summary.json").stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob(".*.tmp"))
