"""`uamrn evaluate` on a raw database: a CASME II-style tree built from real frames.

The tree follows the distributed layout ``CASME2_RAW_selected/subNN/<clip>/img<N>.jpg`` with
a coding sheet of the real sheet's structure (Subject as zero-padded text, unnamed empty
columns, ``Estimated Emotion``, two empty extra worksheets). Its clips are the real CASME II
pair, windows of the ten consecutive CASME II frames, and FRLL neutral -> smiling pairs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import require
from uamrn.cli import main

SHEET_COLUMNS = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                 "Action Units", "Estimated Emotion", "Objective Classes"]

# FRLL photos are shrunk to this side, so detection stays fast; faces remain large.
FRLL_SIDE = 360


def _write_sheet(path: Path, rows: list[tuple]) -> None:
    """Write ``(subject, clip, onset, apex, offset, emotion)`` rows in the CASME II sheet layout."""
    table = [[subject, clip, None, onset, apex, offset, None, "12", emotion, "1"]
             for subject, clip, onset, apex, offset, emotion in rows]
    header = pd.DataFrame([["" if c is None else c for c in SHEET_COLUMNS]])
    with pd.ExcelWriter(path) as writer:
        pd.concat([header, pd.DataFrame(table)]).to_excel(writer, sheet_name="Sheet1", header=False, index=False)
        pd.DataFrame().to_excel(writer, sheet_name="Sheet2")
        pd.DataFrame().to_excel(writer, sheet_name="Sheet3")


def _frll(source: Path, target: Path) -> None:
    image = cv2.imread(str(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), cv2.resize(image, (FRLL_SIDE, FRLL_SIDE), interpolation=cv2.INTER_AREA))


def build_tree(data: Path, root: Path, extra_rows: list[tuple] = ()) -> list[tuple]:
    """Lay out three subjects of CASME II-style clips under ``root``; return the sheet rows."""
    frames = root / "CASME2_RAW_selected"
    pair = require(data / "casme2_sub01_EP02_01f")
    consecutive = sorted(require(data / "casme2_frames").glob("*.jpg"))
    faces = require(data / "frll_london")
    people = ["001", "002", "003", "004", "005", "006"]

    clip = frames / "sub01" / "EP02_01f"
    clip.mkdir(parents=True)
    shutil.copy(pair / "onset_reg_img46.jpg", clip / "img46.jpg")
    shutil.copy(pair / "apex_reg_img59.jpg", clip / "img59.jpg")
    rows = [("01", "EP02_01f", 46, 59, 59, "happiness")]

    windows = {"01": (1, 6, 8), "02": (2, 9, 10), "03": (3, 7, 9)}
    for subject, (onset, apex, offset) in windows.items():
        clip = frames / f"sub{subject}" / "EP19_01"
        clip.mkdir(parents=True)
        for number, path in enumerate(consecutive, start=1):
            shutil.copy(path, clip / f"img{number}.jpg")
        rows.append((subject, "EP19_01", onset, apex, offset, "disgust"))

    for index, person in enumerate(people):
        subject = ["01", "02", "03"][index % 3]
        name = f"EP09_0{index + 1}f"
        _frll(faces / "neutral_front" / f"{person}_03.jpg", frames / f"sub{subject}" / name / "img1.jpg")
        _frll(faces / "smiling_front" / f"{person}_08.jpg", frames / f"sub{subject}" / name / "img2.jpg")
        rows.append((subject, name, 1, 2, 2, "happiness" if index % 2 == 0 else "surprise"))

    rows += list(extra_rows)
    _write_sheet(root / "CASME2-coding-20190701.xlsx", rows)
    return rows


def _config(tmp_path: Path) -> Path:
    """A tiny model and a 4-frame sequence; the data options come from the command line."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "sequence:\n  length: 4\n"
        "model:\n  d_model: 16\n  n_blocks: 1\n  n_heads: 2\n  mc_samples: 2\n"
        "train:\n  epochs: 2\n  batch_size: 8\n  threads: 1\n"
    )
    return path


def _evaluate(tmp_path: Path, root: Path, out: Path) -> int:
    return main(["evaluate", "--dataset", "casme2", "--root", str(root), "--classes", "composite",
                 "--config", str(_config(tmp_path)), "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), "--no-final-model"])


# About 40 s per evaluate run on 2 shared CPU cores (face detection, front end, 3 folds).
slow = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(shared_data: Path, tmp_path_factory) -> tuple[Path, list[tuple]]:
    tmp_path = tmp_path_factory.mktemp("raw_evaluate")
    root = tmp_path / "CASME2"
    rows = build_tree(shared_data, root)
    out = tmp_path / "run"
    assert _evaluate(tmp_path, root, out) == 0
    return out, rows


@slow
def test_evaluate_raw_summary(finished_run) -> None:
    out, rows = finished_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "casme2"
    assert summary["class_names"] == ["negative", "positive", "surprise"]
    assert summary["n_samples"] == len(rows)
    assert summary["n_subjects"] == 3
    assert sorted(summary["folds_done"]) == ["sub01", "sub02", "sub03"]
    assert summary["folds_missing"] == []
    assert summary["class_counts"] == {"negative": 3, "positive": 4, "surprise": 3}
    for key in ("accuracy", "macro_f1", "uf1", "uar", "per_class_recall", "confusion_matrix"):
        assert key in summary["pooled"]
    assert set(summary["per_subject"]) == {"sub01", "sub02", "sub03"}
    assert 0.0 <= summary["pooled"]["uf1"] <= 1.0


@slow
def test_evaluate_raw_predictions(finished_run) -> None:
    out, rows = finished_run
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == len(rows)
    assert set(predictions["clip"]) == {row[1] for row in rows}
    for subject in ("sub01", "sub02", "sub03"):
        assert (out / "folds" / subject / "fold.json").is_file()


@slow
def test_evaluate_raw_resumes(finished_run, shared_data: Path) -> None:
    out, _ = finished_run
    before = {p: p.stat().st_mtime_ns for p in (out / "folds").glob("*/model.safetensors")}
    assert _evaluate(out.parent, out.parent / "CASME2", out) == 0
    after = {p: p.stat().st_mtime_ns for p in (out / "folds").glob("*/model.safetensors")}
    assert after == before


@slow
def test_evaluate_raw_reports_no_face(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "CASME2"
    blank = root / "CASME2_RAW_selected" / "sub02" / "EP05_01"
    blank.mkdir(parents=True)
    for number in (1, 2):
        cv2.imwrite(str(blank / f"img{number}.jpg"), np.full((340, 280, 3), 90, np.uint8))
    rows = build_tree(shared_data, root, extra_rows=[("02", "EP05_01", 1, 2, 2, "disgust")])

    out = tmp_path / "run"
    assert _evaluate(tmp_path, root, out) == 0
    report = pd.read_csv(out / "preprocessing.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert list(report["key"]) == ["casme2/sub02/EP05_01"]
    assert "no face found" in report["reason"][0]
    assert summary["n_samples"] == len(rows) - 1
    assert summary["missing_samples"] == []
    assert list(summary["skipped_samples"]) == ["casme2/sub02/EP05_01"]
    assert "no face found" in summary["skipped_samples"]["casme2/sub02/EP05_01"]


def test_evaluate_raw_defaults_to_frames() -> None:
    from uamrn.commands.evaluate import build_config
    from uamrn.cli import build_parser

    args = build_parser().parse_args(["evaluate", "--dataset", "samm", "--root", "SAMM", "--out", "run",
                                      "--annotations", "codes.xlsx", "--apex", "spotted"])
    cfg = build_config(args)
    assert cfg.data.input == "frames"
    assert cfg.data.classes is None
    assert cfg.data.annotations == Path("codes.xlsx")
    assert cfg.data.apex == "spotted"


def test_evaluate_raw_missing_frame(shared_data: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "CASME2"
    build_tree(shared_data, root, extra_rows=[("03", "EP07_02", 1, 5, 9, "surprise")])
    assert _evaluate(tmp_path, root, tmp_path / "run") == 2
    message = capsys.readouterr().err
    assert "casme2/sub03/EP07_02: clip folder" in message
    assert "--allow-missing" in message
