"""Raw-database readers: real coding sheets, class maps, layouts and bad annotations.

Frame trees are built in tmp_path with one tiny image per frame the sheet names, so the
readers run end to end on the real annotation files without the licensed videos.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import require
from uamrn.config import DataConfig
from uamrn.data import casme2, casme3, samm, smic
from uamrn.data.classes import class_map
from uamrn.data.frames import index_frames, spot_apex
from uamrn.data.registry import load_dataset

PIXEL = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint8))[1].tobytes()


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(PIXEL)


def _frame_tree(folder_of, records, name_of) -> None:
    """Write onset, apex and offset frames of each record into its clip folder."""
    for record in records:
        folder = folder_of(record)
        for number in (record.onset, record.apex, record.offset):
            if number is not None:
                _touch(folder / name_of(record, number))
        if record.apex is None:  # give the middle-frame rule a frame to pick
            _touch(folder / name_of(record, (record.onset + (record.offset or record.onset)) // 2))


def _counts(sample_set) -> dict[str, int]:
    return sample_set.class_counts()


@pytest.fixture(scope="module")
def annotations(shared_data: Path) -> Path:
    return require(shared_data / "annotations")


@pytest.fixture(scope="module")
def casme2_tree(annotations: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("casme2")
    records = casme2.read_records(annotations / "CASME2-coding-20190701.xlsx")
    _frame_tree(lambda r: root / "CASME2_RAW_selected" / r.subject / r.clip, records, lambda r, n: f"img{n}.jpg")
    return root


@pytest.fixture(scope="module")
def casme2_list_tree(annotations: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("casme2_list")
    records = casme2.read_records(annotations / "casme2-5classes.csv")
    _frame_tree(lambda r: root / r.subject / r.clip, records, lambda r, n: f"img{n}.jpg")
    return root


@pytest.fixture(scope="module")
def samm_tree(annotations: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("samm")
    records = samm.read_records(annotations / "SAMM_Micro_FACS_Codes_v2.xlsx")
    _frame_tree(lambda r: root / "SAMM" / r.subject / r.clip, records, lambda r, n: f"{r.subject}_{n:05d}.jpg")
    return root


@pytest.fixture(scope="module")
def smic_tree(annotations: Path, tmp_path_factory) -> Path:
    """An SMIC-HS tree (``HS/s1/micro/<emotion>/s1_po_01``) with the clips of the apex sheet."""
    root = tmp_path_factory.mktemp("smic")
    sheet = pd.read_excel(annotations / "smic_apex.xlsx", dtype=object)
    emotions = {0: "negative", 1: "positive", 2: "surprise"}
    for row in sheet.itertuples():
        subject, emotion_code, number = row.clip.split("_")
        folder = root / "HS" / f"s{int(row.subject)}" / "micro" / emotions[int(row.label)]
        folder = folder / f"s{int(row.subject)}_{emotion_code}_{int(number)}"
        frames = [int(row.onset_frame), int(row.apex_frame)]
        if not pd.isna(row.offset_frame):
            frames.append(int(row.offset_frame))
        for frame in frames:
            _touch(folder / f"image{frame:07d}.bmp")
    return root


def test_casme2_sheet_counts(casme2_tree: Path, annotations: Path) -> None:
    cfg = DataConfig(dataset="casme2", root=casme2_tree, annotations=annotations / "CASME2-coding-20190701.xlsx")
    sample_set = casme2.load(cfg)
    counts = _counts(sample_set)
    # The 2019 sheet relabels three sub24 clips as surprise and drops sub24/EP02_07 (disgust),
    # so it gives surprise 28 and disgust 63 where the 5-class list has 25 and 64.
    assert counts == {"happiness": 32, "surprise": 28, "disgust": 63, "repression": 27, "others": 99}
    assert len(sample_set.subjects) == 26
    assert sample_set.missing == []


def test_casme2_class_list_counts(casme2_list_tree: Path, annotations: Path) -> None:
    cfg = DataConfig(dataset="casme2", root=casme2_list_tree, annotations=annotations / "casme2-5classes.csv")
    sample_set = load_dataset(cfg)
    assert _counts(sample_set) == {"happiness": 32, "surprise": 25, "disgust": 64, "repression": 27, "others": 99}
    assert len(sample_set.samples) == 247
    assert len(sample_set.subjects) == 26


def test_casme2_text_apex_falls_back(casme2_tree: Path, annotations: Path, caplog) -> None:
    cfg = DataConfig(dataset="casme2", root=casme2_tree, annotations=annotations / "CASME2-coding-20190701.xlsx")
    with caplog.at_level(logging.WARNING):
        sample_set = casme2.load(cfg)
    sample = next(s for s in sample_set.samples if s.key == "casme2/sub04/EP12_01f")
    assert "row 31" in caplog.text
    assert "ApexFrame" in caplog.text
    assert sample.apex.name == f"img{(261 + 321) // 2}.jpg"


def test_casme2_onset_apex_paths(casme2_tree: Path, annotations: Path) -> None:
    cfg = DataConfig(dataset="casme2", root=casme2_tree, annotations=annotations / "CASME2-coding-20190701.xlsx")
    sample = casme2.load(cfg).samples[0]
    assert sample.key == "casme2/sub01/EP02_01f"
    assert sample.onset == casme2_tree / "CASME2_RAW_selected/sub01/EP02_01f/img46.jpg"
    assert sample.apex.name == "img59.jpg"
    assert [p.name for p in sample.frames] == ["img46.jpg", "img59.jpg", "img86.jpg"]


def test_samm_sheet_counts(samm_tree: Path, annotations: Path) -> None:
    cfg = DataConfig(dataset="samm", root=samm_tree, annotations=annotations / "SAMM_Micro_FACS_Codes_v2.xlsx")
    sample_set = samm.load(cfg)
    assert _counts(sample_set) == {"anger": 57, "contempt": 12, "happiness": 26, "surprise": 15, "other": 26}
    assert len(sample_set.subjects) == 27
    assert sample_set.samples[0].onset.name == "006_05562.jpg"


def test_samm_class_list_matches_sheet(annotations: Path) -> None:
    sheet = {(r.subject, r.clip): r.emotion for r in samm.read_records(annotations / "SAMM_Micro_FACS_Codes_v2.xlsx")}
    listed = samm.read_records(annotations / "samm-5classes.csv")
    assert len(listed) == 136
    assert all(sheet[(r.subject, r.clip)] == r.emotion for r in listed)


def test_smic_folder_counts(smic_tree: Path) -> None:
    sample_set = smic.load(DataConfig(dataset="smic", root=smic_tree))
    assert _counts(sample_set) == {"positive": 51, "negative": 70, "surprise": 43}
    assert len(sample_set.subjects) == 16
    assert sample_set.samples[0].subject == "s01"


def test_smic_apex_middle_default(smic_tree: Path) -> None:
    sample_set = smic.load(DataConfig(dataset="smic", root=smic_tree))
    sample = next(s for s in sample_set.samples if s.clip == "s20_ne_01")
    assert sample.onset.name == "image17581039.bmp"
    assert sample.apex.name == "image17581046.bmp"  # the middle of the three frames written


def test_smic_apex_from_sheet(smic_tree: Path, annotations: Path) -> None:
    cfg = DataConfig(dataset="smic", root=smic_tree, annotations=annotations / "smic_apex.xlsx")
    sample_set = smic.load(cfg)
    by_clip = {s.clip: s for s in sample_set.samples}
    assert by_clip["s03_ne_03"].apex.name == "image0302377.bmp"
    assert by_clip["s20_po_01"].apex.name == "image17598783.bmp"


def test_smic_long_layout_uses_sheet(annotations: Path, tmp_path: Path) -> None:
    """SMIC-E folders (``SMIC_HS_E/s03/s3_ne_01``) start before the onset, so the sheet decides."""
    sheet = pd.read_excel(annotations / "smic_apex.xlsx", dtype=object)
    base = tmp_path / "smic" / "HS_long" / "SMIC_HS_E"
    for row in sheet.itertuples():
        folder = base / f"s{int(row.subject):02d}" / row.clip
        for frame in (int(row.onset_frame) - 5, int(row.onset_frame), int(row.apex_frame)):
            _touch(folder / f"image{frame}.jpg")

    sample_set = smic.load(DataConfig(dataset="smic", root=tmp_path, annotations=annotations / "smic_apex.xlsx"))
    sample = next(s for s in sample_set.samples if s.clip == "s03_ne_01")
    assert _counts(sample_set) == {"positive": 51, "negative": 70, "surprise": 43}
    assert sample.onset.name == "image257900.jpg"
    with pytest.raises(ValueError, match="give smic_apex.xlsx"):
        smic.load(DataConfig(dataset="smic", root=tmp_path))


def test_casme3_counts(annotations: Path, tmp_path: Path) -> None:
    records = casme3.read_records(annotations / "casme3_part_A.csv")
    for record in records:
        for relative in record.paths:
            _touch(tmp_path / "part_A" / relative)
    sheet = annotations / "casme3_part_A.csv"
    sample_set = casme3.load(DataConfig(dataset="casme3", root=tmp_path, annotations=sheet))
    assert _counts(sample_set) == {"negative": 449, "positive": 54, "surprise": 184}
    assert len(sample_set.subjects) == 87
    six = casme3.load(DataConfig(dataset="casme3", root=tmp_path, annotations=sheet, classes="6class"))
    assert six.class_counts()["disgust"] == 247


def test_composite_ground_truth_counts(shared_data: Path) -> None:
    truth = pd.read_csv(require(shared_data / "megc2019/combined_3class_gt.csv"), header=None,
                        names=["database", "subject", "clip", "label"], dtype=str)
    assert len(truth) == 442
    assert truth[["database", "subject"]].drop_duplicates().shape[0] == 68


@pytest.mark.parametrize("database", ["casme2", "samm", "smic"])
def test_composite_map_matches_truth(database, shared_data, annotations, casme2_tree, samm_tree, smic_tree) -> None:
    """Every clip of the official composite ground truth gets the same label from our reader."""
    truth = pd.read_csv(require(shared_data / "megc2019/combined_3class_gt.csv"), header=None,
                        names=["database", "subject", "filename", "label"], dtype=str)
    truth = truth[truth.database == database]
    roots = {"casme2": casme2_tree, "samm": samm_tree, "smic": smic_tree}
    sheets = {"casme2": "CASME2-coding-20190701.xlsx", "samm": "SAMM_Micro_FACS_Codes_v2.xlsx", "smic": None}
    sheet = annotations / sheets[database] if sheets[database] else None
    sample_set = load_dataset(DataConfig(dataset=database, root=roots[database], annotations=sheet, classes="composite"))
    labels = {(s.subject, s.clip): s.label for s in sample_set.samples}
    # The ground truth writes SAMM subjects without zero padding (6 for folder 006).
    subjects = [f"{int(s):03d}" if database == "samm" else s for s in truth.subject]
    keys = list(zip(subjects, truth.filename))

    assert sample_set.class_names == ("negative", "positive", "surprise")
    absent = [key for key in keys if key not in labels]
    assert absent == []
    wrong = [key for key, label in zip(keys, truth.label) if labels[key] != int(label)]
    assert wrong == []


def _write_sheet(path: Path, rows: list[list], header: list[str], notes: int = 0) -> Path:
    lines = [["note"] + [None] * (len(header) - 1)] * notes + [header] + rows
    pd.DataFrame(lines).to_excel(path, header=False, index=False)
    return path


def test_sheet_renamed_columns_and_notes(tmp_path: Path) -> None:
    header = ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Emotion"]
    path = _write_sheet(tmp_path / "CASME2-coding-old.xlsx", [[1, "EP01", 10, 12, 15, "Happiness"]], header, notes=5)
    records = casme2.read_records(path)
    assert records[0].subject == "sub01"
    assert records[0].emotion == "happiness"
    assert records[0].source == "CASME2-coding-old.xlsx row 7"


def test_sheet_text_onset_names_cell(tmp_path: Path) -> None:
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"]
    path = _write_sheet(tmp_path / "sheet.xlsx", [["01", "EP01", "about 10", 12, 15, "others"]], header)
    with pytest.raises(ValueError, match=r"sheet.xlsx row 2 \(sub01/EP01\), column OnsetFrame: 'about 10'"):
        casme2.read_records(path)


def test_sheet_without_header_rejected(tmp_path: Path) -> None:
    path = _write_sheet(tmp_path / "sheet.xlsx", [["01", "EP01", 10]], ["Subj", "Clip", "Start"])
    with pytest.raises(ValueError, match="no header row"):
        casme2.read_records(path)


@pytest.mark.parametrize("content", [b"subject,clip\n01,EP01\n", b"PK\x03\x04 broken zip"])
def test_sheet_not_xlsx_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "CASME2-coding-20190701.xlsx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="is not a valid .xlsx spreadsheet") as caught:
        casme2.read_records(path)
    assert str(path) in str(caught.value)
    assert "engine" not in str(caught.value)


def _one_clip(tmp_path: Path, emotion: str = "happiness", frames=(10, 12, 15)) -> DataConfig:
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"]
    sheet = _write_sheet(tmp_path / "CASME2-coding-test.xlsx", [["01", "EP01", 10, 12, 15, emotion]], header)
    for number in frames:
        _touch(tmp_path / "Cropped" / "sub01" / "EP01" / f"reg_img{number}.jpg")
    return DataConfig(dataset="casme2", root=tmp_path, annotations=sheet)


def test_unknown_emotion_names_clip(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"row 2 \(casme2/sub01/EP01\): unknown emotion label 'hapiness'"):
        casme2.load(_one_clip(tmp_path, emotion="hapiness"))


def test_missing_frame_names_clip(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"casme2/sub01/EP01: apex frame 12 named in .* not found"):
        casme2.load(_one_clip(tmp_path, frames=(10, 15)))


def test_missing_frame_allowed_is_listed(tmp_path: Path) -> None:
    cfg = _one_clip(tmp_path, frames=(10, 15)).model_copy(update={"allow_missing": True})
    sample_set = casme2.load(cfg)
    assert sample_set.samples == []
    assert sample_set.missing == ["casme2/sub01/EP01"]


def test_apex_rules_on_real_frames(shared_data: Path, tmp_path: Path) -> None:
    frames = sorted(require(shared_data / "casme2_frames").glob("*.jpg"))
    cfg = _one_clip(tmp_path, frames=())
    clip = tmp_path / "Cropped" / "sub01" / "EP01"
    clip.mkdir(parents=True)
    for number, path in zip(range(10, 16), frames):
        (clip / f"reg_img{number}.jpg").write_bytes(path.read_bytes())

    annotated = casme2.load(cfg).samples[0]
    middle = casme2.load(cfg.model_copy(update={"apex": "middle"})).samples[0]
    spotted = casme2.load(cfg.model_copy(update={"apex": "spotted"})).samples[0]
    assert annotated.apex.name == "reg_img12.jpg"
    assert middle.apex.name == "reg_img13.jpg"
    assert spotted.apex == spot_apex(list(spotted.frames))
    assert [p.name for p in spotted.frames] == [f"reg_img{n}.jpg" for n in range(10, 16)]


def test_apex_outside_clip_falls_back(tmp_path: Path, caplog) -> None:
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"]
    sheet = _write_sheet(tmp_path / "sheet.xlsx", [["01", "EP01", 4896, 1930, 4900, "others"]], header)
    for number in range(4896, 4901):
        _touch(tmp_path / "sub01" / "EP01" / f"img{number}.jpg")
    with caplog.at_level(logging.WARNING):
        sample = casme2.load(DataConfig(dataset="casme2", root=tmp_path, annotations=sheet)).samples[0]
    assert sample.apex.name == "img4898.jpg"
    assert "apex 1930 lies outside onset..offset 4896..4900 (sheet.xlsx row 2)" in caplog.text


def test_cropped_layout_found(tmp_path: Path) -> None:
    sample_set = casme2.load(_one_clip(tmp_path))
    assert sample_set.samples[0].onset.name == "reg_img10.jpg"


def test_annotation_search_in_root(tmp_path: Path) -> None:
    cfg = _one_clip(tmp_path).model_copy(update={"annotations": None})
    assert len(casme2.load(cfg).samples) == 1


def test_unknown_class_set_rejected() -> None:
    with pytest.raises(ValueError, match="choose one of 5class, composite"):
        class_map("casme2", "4class")


def test_index_frames_patterns(tmp_path: Path) -> None:
    for name in ["img46.jpg", "reg_img47.jpg", "006_05562.jpg", "image0559740.bmp", "175.png", "notes.txt"]:
        _touch(tmp_path / name)
    assert sorted(index_frames(tmp_path)) == [46, 47, 175, 5562, 559740]


def test_spot_apex_largest_change(tmp_path: Path) -> None:
    frames = []
    for i, level in enumerate([100, 105, 180, 120]):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((20, 20), level, np.uint8))
        frames.append(path)
    assert spot_apex(frames) == frames[2]


def test_spot_apex_real_frames(shared_data: Path) -> None:
    frames = sorted(require(shared_data / "casme2_frames").glob("*.jpg"))
    assert spot_apex(frames) in frames[1:]


def test_reader_counts_logged(casme2_tree: Path, annotations: Path, caplog) -> None:
    cfg = DataConfig(dataset="casme2", root=casme2_tree, annotations=annotations / "CASME2-coding-20190701.xlsx")
    with caplog.at_level(logging.INFO):
        casme2.load(cfg)
    assert "leaves out {'sadness': 4, 'fear': 2}" in caplog.text or "leaves out {'fear': 2, 'sadness': 4}" in caplog.text
    assert Counter(r.levelname for r in caplog.records)["ERROR"] == 0
