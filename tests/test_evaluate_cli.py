"""`uamrn evaluate`: option mapping, an end-to-end run on a tiny composite, and bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from uamrn.cli import UsageError, build_parser, main
from uamrn.commands.evaluate import build_config
from uamrn.config import DataConfig, RunConfig
from uamrn.data.registry import load_dataset
from uamrn.nn import build_frontend
from uamrn.train.features import compute_features

from conftest import REPO
from test_megc2019 import write_megc2019

TINY = """
model: {d_model: 8, n_blocks: 1, n_heads: 2, mc_samples: 2}
train: {epochs: 1, batch_size: 4, threads: 1}
sequence: {length: 4}
"""


def parse(*argv: str):
    return build_parser().parse_args(["evaluate", "--out", "unused", *argv])


@pytest.fixture
def tiny_run(tmp_path):
    """A tiny MEGC2019 folder and a YAML config small enough to train in a second."""
    root = write_megc2019(tmp_path / "megc2019")
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    common = ["evaluate", "--dataset", "megc2019", "--root", str(root), "--config", str(config),
              "--cache-dir", str(tmp_path / "cache")]
    return root, common


def test_config_default_is_cpu_preset():
    cfg = build_config(parse("--root", "data"))
    assert cfg.model.d_model == 64
    assert cfg.train.threads == 1
    assert cfg.data.root.name == "data"


def test_config_paper_preset():
    assert build_config(parse("--root", "data", "--preset", "paper")).model.d_model == 1024


def test_config_ablation_switches():
    cfg = build_config(parse("--root", "data", "--no-uncertainty", "--attention", "full", "--no-magnification"))
    assert cfg.model.uncertainty is False
    assert cfg.model.attention == "full"
    assert cfg.sequence.length == 1


def test_config_data_options():
    cfg = build_config(parse("--root", "data", "--databases", "casme2, smic", "--allow-missing", "--input", "apex+flow"))
    assert cfg.data.databases == ["casme2", "smic"]
    assert cfg.data.allow_missing is True
    assert cfg.data.input == "apex+flow"


def test_config_seed_and_epochs():
    cfg = build_config(parse("--root", "data", "--seed", "7", "--epochs", "3"))
    assert cfg.train.seed == 7
    assert cfg.train.epochs == 3


def test_config_file_then_options(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: {root: somewhere}\ntrain: {epochs: 5, lr: 0.001}\n")
    cfg = build_config(parse("--config", str(path), "--epochs", "2"))
    assert cfg.train.epochs == 2
    assert cfg.train.lr == 0.001
    assert str(cfg.data.root) == "somewhere"


def test_config_requires_root():
    with pytest.raises(UsageError, match="pass --root PATH explicitly"):
        build_config(parse())


def test_cli_missing_root_message(capsys):
    assert main(["evaluate", "--dataset", "megc2019", "--out", "x"]) == 2
    assert "--root PATH" in capsys.readouterr().err


def test_cli_invalid_epochs(capsys):
    assert main(["evaluate", "--root", "data", "--out", "x", "--epochs", "0"]) == 2
    assert "epochs" in capsys.readouterr().err


def test_cli_runs_end_to_end(tiny_run, tmp_path, capsys):
    _, common = tiny_run
    out = tmp_path / "run"
    assert main([*common, "--out", str(out), "--folds", "sub01,s01"]) == 0
    printed = capsys.readouterr().out
    assert "UF1" in printed
    assert "folds not run yet: sub02, sub03" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["folds_done"] == ["sub01", "s01"]
    assert (out / "final" / "model.yaml").is_file()
    assert RunConfig.from_yaml(out / "config.yaml").model.d_model == 8


def test_cli_rerun_same_summary(tiny_run, tmp_path):
    _, common = tiny_run
    out = tmp_path / "run"
    assert main([*common, "--out", str(out), "--folds", "sub02", "--no-final-model"]) == 0
    first = json.loads((out / "summary.json").read_text())
    assert main([*common, "--out", str(out), "--folds", "sub02", "--no-final-model"]) == 0
    second = json.loads((out / "summary.json").read_text())
    first.pop("timing"), second.pop("timing")
    assert first == second


def test_cli_other_config_same_out(tiny_run, tmp_path, capsys):
    _, common = tiny_run
    out = tmp_path / "run"
    assert main([*common, "--out", str(out), "--folds", "sub02", "--no-final-model"]) == 0
    assert main([*common, "--out", str(out), "--folds", "sub02", "--seed", "3"]) == 2
    assert "new --out" in capsys.readouterr().err


def test_cli_unknown_fold_subject(tiny_run, tmp_path, capsys):
    _, common = tiny_run
    assert main([*common, "--out", str(tmp_path / "run"), "--folds", "sub99"]) == 2
    assert "'sub99'" in capsys.readouterr().err


def test_cli_unreadable_png(tiny_run, tmp_path, capsys):
    root, common = tiny_run
    (root / "flow" / "sub03_EP04_01 .png").write_bytes(b"not a png")
    assert main([*common, "--out", str(tmp_path / "run"), "--no-cache"]) == 2
    assert "sub03_EP04_01 .png" in capsys.readouterr().err


def test_cli_missing_flow_file(tiny_run, tmp_path, capsys):
    root, common = tiny_run
    (root / "flow" / "sub03_EP04_01 .png").unlink()
    assert main([*common, "--out", str(tmp_path / "run")]) == 2
    assert "sub03_EP04_01 .png" in capsys.readouterr().err


def test_features_cached_and_reused(tiny_run, tmp_path, monkeypatch):
    root, _ = tiny_run
    cfg = RunConfig(data=DataConfig(root=root), sequence={"length": 4})
    sample_set = load_dataset(cfg.data)
    first = compute_features(sample_set, cfg, tmp_path / "cache")
    assert first.shape == (8, 4, 28 * 28 * 3)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 8

    monkeypatch.setattr("uamrn.train.features._Extractor", None)  # any recomputation would fail
    np.testing.assert_array_equal(compute_features(sample_set, cfg, tmp_path / "cache"), first)


def test_features_cache_key_follows_file_content(tiny_run, tmp_path):
    root, _ = tiny_run
    cfg = RunConfig(data=DataConfig(root=root), sequence={"length": 4})
    sample_set = load_dataset(cfg.data)
    first = compute_features(sample_set, cfg, tmp_path / "cache")
    flow = np.full((28, 28, 3), 7, np.uint8)
    flow[0, 0] = 255
    cv2.imwrite(str(sample_set.samples[0].flow), flow)
    second = compute_features(sample_set, cfg, tmp_path / "cache")
    assert not np.array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1:], second[1:])


def test_features_apex_plus_flow_width(tiny_run, tmp_path):
    root, _ = tiny_run
    cfg = RunConfig(data=DataConfig(root=root, input="apex+flow"), sequence={"length": 4})
    features = compute_features(load_dataset(cfg.data), cfg, None)
    apex_width = build_frontend(cfg.frontend).feature_dim
    assert features.shape == (8, 4, 28 * 28 * 3 + apex_width)
    np.testing.assert_array_equal(features[:, 0, 2352:], features[:, 3, 2352:])


def test_shipped_cpu_config_matches_default():
    shipped = build_config(parse("--root", "data", "--config", str(REPO / "configs" / "megc2019-cpu.yaml")))
    default = build_config(parse("--root", "data", "--databases", "casme2,smic"))
    assert shipped == default


@pytest.mark.slow
def test_cli_killed_process_resumes(tiny_run, tmp_path):
    """Kill a real `uamrn evaluate` process after its first fold, then resume to the clean summary."""
    import os
    import signal
    import subprocess
    import sys
    import time

    _, common = tiny_run
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.replace("epochs: 1", "epochs: 40"))
    args = [*common, "--no-final-model"]

    clean = tmp_path / "clean"
    assert main([*args, "--out", str(clean)]) == 0

    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "uamrn.cli", *args, "--out", str(killed)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_fold = killed / "folds" / "sub01" / "fold.json"
    deadline = time.monotonic() + 300
    while not first_fold.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert first_fold.exists()
    assert not (killed / "folds" / "s01" / "fold.json").exists()

    assert main([*args, "--out", str(killed)]) == 0
    resumed = json.loads((killed / "summary.json").read_text())
    reference = json.loads((clean / "summary.json").read_text())
    resumed.pop("timing"), reference.pop("timing")
    assert resumed == reference


@pytest.mark.parametrize("option", ["--folds", "--databases"])
def test_cli_empty_list_rejected(option, capsys):
    assert main(["evaluate", "--root", "data", "--out", "x", option, " , "]) == 2
    assert f"{option} ' , ' names nothing" in capsys.readouterr().err


def test_config_empty_databases_in_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: {root: data, databases: []}\n")
    with pytest.raises(ValueError, match="data.databases"):
        RunConfig.from_yaml(path)


def test_cli_config_typo_names_file_and_keys(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text("train: {epoch: 3}\n")
    assert main(["evaluate", "--root", "data", "--out", str(tmp_path / "run"), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert "train.epoch: unknown key; valid keys: epochs" in err
    assert "pydantic.dev" not in err


def test_cli_config_bad_value_one_line_each(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("model: {d_model: -4, mc_samples: 0}\n")
    assert main(["evaluate", "--root", "data", "--out", str(tmp_path / "run"), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "model.d_model = -4: Input should be greater than or equal to 8" in err
    assert "model.mc_samples = 0: Input should be greater than or equal to 1" in err
    assert len(err.strip().splitlines()) == 3


def test_config_list_names_groups(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=r"list.yaml: the top level must be a mapping of the groups data, sequence"):
        RunConfig.from_yaml(path)


def test_cli_epochs_zero_names_option(capsys):
    assert main(["evaluate", "--root", "data", "--out", "x", "--epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert "--epochs must be at least 1, got 0" in err
    assert "pydantic.dev" not in err


def test_cli_empty_config_rejected(tmp_path, capsys):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert main(["evaluate", "--root", "data", "--out", str(tmp_path / "run"), "--config", str(path)]) == 2
    assert f"config {path} is empty" in capsys.readouterr().err


def test_help_says_config_drops_cpu_preset(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "cpu preset is not applied" in " ".join(capsys.readouterr().out.split())


def test_cli_out_is_file(tmp_path, capsys):
    path = tmp_path / "taken.csv"
    path.write_text("keep\n")
    assert main(["evaluate", "--root", "data", "--out", str(path)]) == 2
    assert f"--out {path} is an existing file" in capsys.readouterr().err
    assert path.read_text() == "keep\n"


def test_cli_os_path_error_one_line(tmp_path, capsys, monkeypatch):
    def fail(args):
        raise FileExistsError(17, "File exists", str(tmp_path / "x"))

    monkeypatch.setattr("uamrn.commands.evaluate.run", fail)
    assert main(["evaluate", "--root", "data", "--out", "x"]) == 2
    assert f"File exists: {tmp_path / 'x'}" in capsys.readouterr().err


def test_summary_table_separates_skipped():
    from uamrn.commands.evaluate import format_summary

    summary = {
        "dataset": "casme2", "folds_done": ["sub01"], "folds_expected": ["sub01"], "folds_missing": [],
        "n_predictions": 3, "n_samples": 3, "missing_samples": ["casme2/sub01/gone"],
        "skipped_samples": {"casme2/sub01/blank": "no face found in onset of casme2/sub01/blank"},
        "pooled": None,
    }
    text = format_summary(summary, "run")
    assert "1 listed samples missing on disk, 1 skipped in preprocessing" in text
    assert "casme2/sub01/blank skipped in preprocessing: no face found" in text
    assert "casme2/sub01/blank" not in text.splitlines()[0]


def test_cli_changed_labels_same_out(tiny_run, tmp_path, capsys):
    root, common = tiny_run
    out = tmp_path / "run"
    assert main([*common, "--out", str(out), "--folds", "sub02", "--no-final-model"]) == 0
    csv_path = root / "combined_3class_gt.csv"
    lines = csv_path.read_text().splitlines()
    database, subject, filename, label = lines[0].split(",")
    lines[0] = f"{database},{subject},{filename},{(int(label) + 1) % 3}"
    csv_path.write_text("\n".join(lines) + "\n")
    assert main([*common, "--out", str(out), "--no-final-model"]) == 2
    err = capsys.readouterr().err
    assert f"{database}/{subject}/{filename} label saved {label}" in err
    assert "new --out" in err
    assert sorted(p.name for p in (out / "folds").iterdir()) == ["sub02"]


@pytest.mark.parametrize("image", [np.full((28, 28), 90, np.uint8), np.full((28, 28, 4), 90, np.uint8)])
def test_features_reject_non_rgb_flow(tiny_run, image):
    root, _ = tiny_run
    path = root / "flow" / "sub03_EP04_01 .png"
    cv2.imwrite(str(path), image)
    cfg = RunConfig(data=DataConfig(root=root), sequence={"length": 4})
    with pytest.raises(ValueError, match="expected an 8-bit RGB image") as caught:
        compute_features(load_dataset(cfg.data), cfg, None)
    assert str(path) in str(caught.value)


def test_features_warn_other_flow_size(tiny_run, caplog):
    root, _ = tiny_run
    path = root / "flow" / "sub03_EP04_01 .png"
    cv2.imwrite(str(path), np.full((40, 56, 3), 90, np.uint8))
    cfg = RunConfig(data=DataConfig(root=root), sequence={"length": 4})
    features = compute_features(load_dataset(cfg.data), cfg, None)
    assert features.shape == (8, 4, 28 * 28 * 3)
    assert f"flow image {path} is 56x40, not 28x28" in caplog.text
