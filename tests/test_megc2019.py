"""The MEGC2019 composite reader: real data counts and every bad-input case."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from uamrn.config import DataConfig
from uamrn.data import megc2019
from uamrn.data.registry import load_dataset

from conftest import require

# Small composite: three CASME II subjects and one SMIC subject, two clips each.
ROWS = [
    ("casme2", "sub01", "EP01_01", 0),
    ("casme2", "sub01", "EP02_01", 1),
    ("casme2", "sub02", "EP01_02", 2),
    ("casme2", "sub02", "EP03_01", 0),
    ("casme2", "sub03", "EP04_01", 1),
    ("casme2", "sub03", "EP05_02", 2),
    ("smic", "s01", "s01_ne_01", 0),
    ("smic", "s01", "s01_po_01", 1),
]


def write_megc2019(root: Path, rows=ROWS, seed: int = 0) -> Path:
    """Write a tiny MEGC2019-shaped folder: header-less CSV, flow PNGs and apex JPEGs.

    Flow images carry a class-dependent pattern plus noise, so a model can learn something.
    """
    rng = np.random.default_rng(seed)
    (root / "flow").mkdir(parents=True, exist_ok=True)
    (root / "apex").mkdir(exist_ok=True)
    lines = []
    for database, subject, filename, label in rows:
        lines.append(f"{database},{subject},{filename},{label}")
        flow = rng.integers(0, 60, (28, 28, 3)).astype(np.uint8)
        flow[label * 9 : label * 9 + 9] += 180
        cv2.imwrite(str(root / "flow" / f"{subject}_{filename} .png"), flow)
        apex_name = filename.replace("s01_", "s1_") if database == "smic" else filename
        apex = rng.integers(0, 255, (64, 64, 3)).astype(np.uint8)
        cv2.imwrite(str(root / "apex" / f"{subject}_{apex_name}.jpg"), apex)
    (root / megc2019.GT_FILE).write_text("\n".join(lines) + "\n")
    return root


def config(root: Path, **changes) -> DataConfig:
    return DataConfig(dataset="megc2019", root=root, **changes)


def test_reader_loads_all_samples(tmp_path):
    sample_set = load_dataset(config(write_megc2019(tmp_path)))
    assert len(sample_set.samples) == len(ROWS)
    assert sample_set.subjects == ["sub01", "sub02", "sub03", "s01"]
    assert sample_set.class_names == ("negative", "positive", "surprise")


def test_reader_flow_name_has_space(tmp_path):
    sample = load_dataset(config(write_megc2019(tmp_path))).samples[0]
    assert sample.flow.name == "sub01_EP01_01 .png"


def test_reader_finds_unpadded_smic_apex(tmp_path):
    sample_set = load_dataset(config(write_megc2019(tmp_path), input="apex+flow"))
    smic = [s for s in sample_set.samples if s.database == "smic"]
    assert smic[0].apex.name == "s01_s1_ne_01.jpg"
    assert smic[0].apex.is_file()


def test_reader_restricts_databases(tmp_path):
    sample_set = load_dataset(config(write_megc2019(tmp_path), databases=["smic"]))
    assert {s.database for s in sample_set.samples} == {"smic"}
    assert len(sample_set.samples) == 2


def test_reader_missing_flow_lists_file(tmp_path):
    root = write_megc2019(tmp_path)
    (root / "flow" / "sub02_EP03_01 .png").unlink()
    with pytest.raises(FileNotFoundError, match="sub02_EP03_01 .png") as info:
        load_dataset(config(root))
    assert "--allow-missing" in str(info.value)


def test_reader_allow_missing_counts(tmp_path):
    root = write_megc2019(tmp_path)
    (root / "flow" / "sub02_EP03_01 .png").unlink()
    sample_set = load_dataset(config(root, allow_missing=True))
    assert sample_set.missing == ["casme2/sub02/EP03_01"]
    assert len(sample_set.samples) == len(ROWS) - 1


def test_reader_missing_apex_only_for_apex_input(tmp_path):
    root = write_megc2019(tmp_path)
    (root / "apex" / "sub01_EP01_01.jpg").unlink()
    assert len(load_dataset(config(root)).samples) == len(ROWS)
    with pytest.raises(FileNotFoundError, match="sub01_EP01_01.jpg"):
        load_dataset(config(root, input="apex+flow"))


def test_reader_wrong_columns(tmp_path):
    root = write_megc2019(tmp_path)
    (root / megc2019.GT_FILE).write_text("casme2,sub01,EP01_01\ncasme2,sub01,EP02_01\n")
    with pytest.raises(ValueError, match="3 columns; expected 4") as info:
        load_dataset(config(root))
    assert "database,subject,filename,label" in str(info.value)
    assert megc2019.GT_FILE in str(info.value)


def test_reader_header_line(tmp_path):
    root = write_megc2019(tmp_path)
    csv = root / megc2019.GT_FILE
    csv.write_text("database,subject,filename,label\n" + csv.read_text())
    with pytest.raises(ValueError, match="no header"):
        load_dataset(config(root))


def test_reader_unknown_label(tmp_path):
    root = write_megc2019(tmp_path, rows=[*ROWS[:2], ("casme2", "sub02", "EP01_02", 7)])
    with pytest.raises(ValueError, match="unknown label '7' on line 3"):
        load_dataset(config(root))


def test_reader_unknown_database_in_csv(tmp_path):
    root = write_megc2019(tmp_path, rows=[*ROWS[:2], ("casme9", "x1", "EP01", 0)])
    with pytest.raises(ValueError, match="unknown database 'casme9' on line 3"):
        load_dataset(config(root))


def test_reader_unknown_database_option(tmp_path):
    with pytest.raises(ValueError, match="unknown database 'casme3' in --databases"):
        load_dataset(config(write_megc2019(tmp_path), databases=["casme3"]))


def test_reader_needs_root():
    with pytest.raises(ValueError, match="--root PATH"):
        load_dataset(DataConfig(dataset="megc2019"))


def test_reader_root_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset(config(tmp_path / "nowhere"))


def test_reader_root_is_file(tmp_path):
    path = tmp_path / "combined_3class_gt.csv"
    path.write_text("")
    with pytest.raises(FileNotFoundError, match="is a file, not a folder"):
        load_dataset(config(path))


def test_reader_rejects_frames_input(tmp_path):
    with pytest.raises(ValueError, match="no onset frames"):
        load_dataset(config(write_megc2019(tmp_path), input="frames"))


def test_reader_rejects_shared_subject(tmp_path):
    root = write_megc2019(tmp_path, rows=[*ROWS[:2], ("smic", "sub01", "sub01_ne_01", 0)])
    with pytest.raises(ValueError, match="subject 'sub01' appears in both casme2 and smic"):
        load_dataset(config(root))


def test_reader_real_counts(shared_data):
    root = require(shared_data / "megc2019")
    sample_set = load_dataset(config(root, databases=["casme2", "smic"], input="apex+flow"))
    by_database = {name: [s for s in sample_set.samples if s.database == name] for name in ("casme2", "smic")}
    assert len(by_database["casme2"]) == 145
    assert len(by_database["smic"]) == 164
    assert len({s.subject for s in by_database["casme2"]}) == 24
    assert len({s.subject for s in by_database["smic"]}) == 16
    assert sample_set.class_counts() == {"negative": 158, "positive": 83, "surprise": 68}


def test_reader_real_samm_missing(shared_data):
    root = require(shared_data / "megc2019")
    with pytest.raises(FileNotFoundError, match="133 of 442"):
        load_dataset(config(root))
    sample_set = load_dataset(config(root, allow_missing=True))
    assert len(sample_set.missing) == 133
    assert len(sample_set.samples) == 309
