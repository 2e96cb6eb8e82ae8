"""The magnified sequence of a clip: crop + magnify, the preprocessing cache and its report."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import uamrn.sequence as sequence
from conftest import require
from uamrn.config import RunConfig, SequenceConfig
from uamrn.data.sample import Sample, SampleSet
from uamrn.face.detect import FaceNotFoundError
from uamrn.magnify.linear import magnify_linear


@pytest.fixture()
def pair(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The real CASME II onset/apex pair, copied so tests may alter it."""
    source = require(shared_data / "casme2_sub01_EP02_01f")
    onset, apex = tmp_path / "img46.jpg", tmp_path / "img59.jpg"
    shutil.copy(source / "onset_reg_img46.jpg", onset)
    shutil.copy(source / "apex_reg_img59.jpg", apex)
    return onset, apex


def _sample(onset: Path, apex: Path, clip: str = "EP02_01f") -> Sample:
    return Sample("casme2", "sub01", clip, 0, onset=onset, apex=apex)


@pytest.fixture()
def counts(monkeypatch) -> dict[str, int]:
    """Count face crops, image decodes and learned-magnifier calls made by the sequence module."""
    calls = {"crop": 0, "decode": 0, "learned": 0}
    real_crop, real_decode = sequence.crop_pair, sequence._decode

    def crop(*args, **kwargs):
        calls["crop"] += 1
        return real_crop(*args, **kwargs)

    def decode(*args, **kwargs):
        calls["decode"] += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(sequence, "crop_pair", crop)
    monkeypatch.setattr(sequence, "_decode", decode)
    return calls


def test_sequence_shape_and_order(pair) -> None:
    cfg = RunConfig()
    frames = sequence.build_sequence(_sample(*pair), cfg)
    crop = sequence.crop_sample(_sample(*pair), cfg)
    assert frames.shape == (32, 224, 224, 3)
    assert frames.dtype == np.uint8
    assert np.array_equal(frames, magnify_linear(crop.onset, crop.apex, cfg.sequence.factors()))


def test_cache_second_run_no_work(pair, counts, tmp_path: Path) -> None:
    cfg, cache = RunConfig(), tmp_path / "cache"
    first = sequence.build_sequence(_sample(*pair), cfg, cache)
    assert counts == {"crop": 1, "decode": 2, "learned": 0}
    second = sequence.build_sequence(_sample(*pair), cfg, cache)
    assert counts["crop"] == 1
    assert counts["decode"] == 2
    assert np.array_equal(first, second)


def test_cache_keyed_by_content(pair, counts, tmp_path: Path) -> None:
    cfg, cache = RunConfig(), tmp_path / "cache"
    sequence.build_sequence(_sample(*pair), cfg, cache)

    moved = [tmp_path / "copy_onset.jpg", tmp_path / "copy_apex.jpg"]
    for source, target in zip(pair, moved):
        shutil.copy(source, target)
    sequence.build_sequence(_sample(*moved, clip="other"), cfg, cache)
    assert counts["crop"] == 1

    with moved[1].open("ab") as handle:
        handle.write(b"\0")
    sequence.build_sequence(_sample(*moved, clip="other"), cfg, cache)
    assert counts["crop"] == 2


def test_cache_keyed_by_settings(pair, counts, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sequence.build_sequence(_sample(*pair), RunConfig(), cache)
    fewer = RunConfig(sequence=SequenceConfig(length=8))
    assert sequence.build_sequence(_sample(*pair), fewer, cache).shape[0] == 8
    assert counts["crop"] == 1  # the factors do not change the crop
    wider = RunConfig(sequence=SequenceConfig(face_margin=0.3))
    sequence.build_sequence(_sample(*pair), wider, cache)
    assert counts["crop"] == 2


def test_learned_sequence_cached(pair, counts, monkeypatch, tmp_path: Path) -> None:
    weights = tmp_path / "weights.pth.tar"
    weights.write_bytes(b"stand-in weights")

    class Recorder:
        def magnify(self, onset, apex, factors):
            counts["learned"] += 1
            return np.repeat(onset[None], len(factors), axis=0)

    monkeypatch.setattr(sequence, "_learned_magnifier", lambda path: Recorder())
    cfg = RunConfig(sequence=SequenceConfig(magnifier="learned", learned_weights=weights))
    first = sequence.build_sequence(_sample(*pair), cfg, tmp_path / "cache")
    second = sequence.build_sequence(_sample(*pair), cfg, tmp_path / "cache")
    assert counts["learned"] == 1
    assert counts["decode"] == 2
    assert np.array_equal(first, second)


def test_learned_without_weights_rejected(pair) -> None:
    cfg = RunConfig(sequence=SequenceConfig(magnifier="learned"))
    with pytest.raises(ValueError, match="learned magnifier needs a weights file"):
        sequence.build_sequence(_sample(*pair), cfg)


def test_corrupt_image_names_clip(pair) -> None:
    pair[1].write_bytes(b"not a jpeg")
    with pytest.raises(sequence.InputImageError, match=r"casme2/sub01/EP02_01f: cannot decode apex frame .*img59.jpg"):
        sequence.build_sequence(_sample(*pair), RunConfig())


def test_missing_image_names_clip(pair) -> None:
    pair[0].unlink()
    with pytest.raises(FileNotFoundError, match=r"casme2/sub01/EP02_01f: onset frame .*img46.jpg not found"):
        sequence.build_sequence(_sample(*pair), RunConfig())


def test_size_mismatch_names_clip(pair) -> None:
    apex = cv2.imread(str(pair[1]))
    cv2.imwrite(str(pair[1]), apex[:-20])
    with pytest.raises(sequence.InputImageError, match=r"casme2/sub01/EP02_01f: onset .* is 231x282 but apex .* is 231x262"):
        sequence.build_sequence(_sample(*pair), RunConfig())


def test_no_face_names_clip(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 120, 3), 90, np.uint8))
    with pytest.raises(FaceNotFoundError, match="no face found in onset of casme2/sub01/blank"):
        sequence.build_sequence(_sample(blank, blank, clip="blank"), RunConfig())


def test_preprocess_reports_failures(pair, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 120, 3), 90, np.uint8))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 broken")
    samples = [_sample(*pair), _sample(blank, blank, clip="blank"), _sample(corrupt, pair[1], clip="corrupt")]
    sample_set = SampleSet("casme2", ("happiness",), samples, missing=["casme2/sub02/gone"])

    kept = sequence.preprocess(sample_set, RunConfig(), tmp_path / "run", tmp_path / "cache")
    report = json.loads((tmp_path / "run" / "preprocessing.json").read_text())
    with (tmp_path / "run" / "preprocessing.csv").open() as handle:
        rows = list(csv.DictReader(handle))

    assert [s.clip for s in kept.samples] == ["EP02_01f"]
    assert kept.missing == ["casme2/sub02/gone"]
    assert list(kept.skipped) == ["casme2/sub01/blank", "casme2/sub01/corrupt"]
    assert "no face found" in kept.skipped["casme2/sub01/blank"]
    assert report["n_failed"] == 2
    assert [row["key"] for row in rows] == ["casme2/sub01/blank", "casme2/sub01/corrupt"]
    assert rows[0]["error"] == "FaceNotFoundError"
    assert rows[1]["error"] == "InputImageError"
