"""The bundled demo faces, the synthetic motion generator and the demo reader."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from uamrn.config import DataConfig
from uamrn.data import demo
from uamrn.data.demo import CLASS_NAMES, DemoSpec, bundled_faces, displacement_field, generate, load, warp_face

DEMO_DIR = Path(demo.__file__).with_name("demo")


def test_bundled_faces_complete():
    faces = bundled_faces()
    assert len(faces) >= 24
    for identity, (path, landmarks) in faces.items():
        assert path.is_file(), identity
        assert landmarks.shape == (68, 2), identity


def test_bundled_landmarks_inside_image():
    path, landmarks = next(iter(bundled_faces().values()))
    height, width = cv2.imread(str(path)).shape[:2]
    assert landmarks.min() >= 0
    assert landmarks[:, 0].max() < width
    assert landmarks[:, 1].max() < height


def test_bundled_licence_and_attribution():
    attribution = (DEMO_DIR / "ATTRIBUTION.md").read_text()
    assert "doi:10.6084/m9.figshare.5047666.v5" in attribution
    assert "DeBruine, L. & Jones, B. (2017)" in attribution
    assert "Attribution 4.0 International" in (DEMO_DIR / "LICENSE.md").read_text()


def test_bundled_set_small():
    total = sum(p.stat().st_size for p in DEMO_DIR.rglob("*") if p.is_file())
    assert total < 4 * 2**20


def test_warp_uniform_field_shifts_content():
    image = np.zeros((40, 40), np.uint8)
    image[10:20, 10:20] = 200
    field = np.zeros((40, 40, 2), np.float32)
    field[..., 0] = 2.0  # two pixels to the right
    moved = warp_face(image, field)
    assert moved[15, 21] == 200
    assert moved[15, 11] == 0


@pytest.mark.parametrize(
    ("action", "landmark", "sign_dy"),
    [("lip_corner_raise", 48, -1), ("brow_lowering", 21, 1), ("inner_brow_raise", 22, -1)],
)
def test_field_direction_per_class(action, landmark, sign_dy):
    _, landmarks = next(iter(bundled_faces().values()))
    field = displacement_field((256, 256), landmarks, action, peak=1.0, sigma=0.09)
    x, y = np.round(landmarks[landmark]).astype(int)
    assert np.sign(field[y, x, 1]) == sign_dy


def test_field_local_to_action():
    _, landmarks = next(iter(bundled_faces().values()))
    field = displacement_field((256, 256), landmarks, "lip_corner_raise", peak=1.0, sigma=0.09)
    x, y = np.round(landmarks[21]).astype(int)  # inner end of a brow, far from the mouth
    assert np.abs(field[y, x]).max() < 0.01


def test_field_rejects_unknown_action():
    _, landmarks = next(iter(bundled_faces().values()))
    with pytest.raises(ValueError, match="unknown facial action"):
        displacement_field((64, 64), landmarks, "wink", peak=1.0, sigma=0.09)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_subjects": 1}, {"samples_per_subject": 0}, {"amplitude_min": 0.0}, {"amplitude_min": 3.0, "amplitude_max": 2.0}],
)
def test_spec_rejects_invalid(kwargs):
    with pytest.raises(ValueError):
        DemoSpec(**kwargs)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, generate(root, DemoSpec(n_subjects=3, samples_per_subject=4, seed=7))


def test_generate_writes_pairs(small_set):
    root, sample_set = small_set
    assert len(sample_set.samples) == 12
    assert sample_set.subjects == list(bundled_faces())[:3]
    for sample in sample_set.samples:
        assert sample.onset.is_file()
        assert sample.apex.is_file()


def test_generate_motion_subtle(small_set):
    _, sample_set = small_set
    for sample in sample_set.samples:
        onset = cv2.imread(str(sample.onset)).astype(np.int16)
        apex = cv2.imread(str(sample.apex)).astype(np.int16)
        difference = np.abs(apex - onset)
        assert difference.mean() < 3.0, sample.key  # mostly sensor noise
        assert difference.max() > 10, sample.key  # but a real motion somewhere


def test_generate_amplitudes_in_range(small_set):
    root, _ = small_set
    with (root / "labels.csv").open() as stream:
        amplitudes = [float(row["amplitude_px"]) for row in csv.DictReader(stream)]
    assert min(amplitudes) >= 0.3
    assert max(amplitudes) <= 2.0


def test_generate_seeded(tmp_path, small_set):
    _, first = small_set
    again = generate(tmp_path / "again", DemoSpec(n_subjects=3, samples_per_subject=4, seed=7))
    other = generate(tmp_path / "other", DemoSpec(n_subjects=3, samples_per_subject=4, seed=8))
    assert [s.label for s in again.samples] == [s.label for s in first.samples]
    assert again.samples[0].apex.read_bytes() == first.samples[0].apex.read_bytes()
    assert other.samples[0].apex.read_bytes() != first.samples[0].apex.read_bytes()


def test_generate_classes_imbalanced(tmp_path):
    sample_set = generate(tmp_path, DemoSpec(n_subjects=10, samples_per_subject=10, seed=1, noise=0.0))
    counts = Counter(s.label for s in sample_set.samples)
    assert counts[0] > counts[1] > counts[2] > 0


def test_load_reads_generated_set(small_set):
    root, generated = small_set
    loaded = load(DataConfig(dataset="demo", root=root))
    assert loaded.class_names == CLASS_NAMES
    assert [s.key for s in loaded.samples] == [s.key for s in generated.samples]
    assert [s.label for s in loaded.samples] == [s.label for s in generated.samples]


def test_load_missing_image(tmp_path):
    generate(tmp_path, DemoSpec(n_subjects=2, samples_per_subject=1))
    (tmp_path / "001" / "00" / "apex.png").unlink()
    with pytest.raises(FileNotFoundError, match="demo/001/00"):
        load(DataConfig(dataset="demo", root=tmp_path))
    kept = load(DataConfig(dataset="demo", root=tmp_path, allow_missing=True))
    assert kept.missing == ["demo/001/00"]
    assert len(kept.samples) == 1


def test_load_unknown_class(tmp_path):
    generate(tmp_path, DemoSpec(n_subjects=2, samples_per_subject=1))
    labels = tmp_path / "labels.csv"
    labels.write_text(labels.read_text().replace("lip_corner_raise", "wink").replace("brow_lowering", "wink").replace("inner_brow_raise", "wink"))
    with pytest.raises(ValueError, match="unknown class 'wink'"):
        load(DataConfig(dataset="demo", root=tmp_path))


# The `uamrn demo` command.


def test_demo_variants_differ_in_sequence_only(tmp_path):
    from uamrn.commands.demo import demo_configs

    configs = demo_configs(tmp_path, epochs=3, seed=1)
    magnified, unmagnified = configs["magnified"], configs["unmagnified"]
    assert magnified.sequence.length == 32
    assert unmagnified.sequence.factors() == [0.0]
    assert magnified.model_dump(exclude={"sequence"}) == unmagnified.model_dump(exclude={"sequence"})
    assert magnified.data.dataset == "demo"
    assert magnified.data.input == "frames"
    assert magnified.train.epochs == 3


def test_demo_unmagnified_is_apex(small_set):
    from uamrn.commands.demo import DEMO_VARIANTS
    from uamrn.magnify.linear import magnify_linear

    _, sample_set = small_set
    onset = cv2.imread(str(sample_set.samples[0].onset))
    apex = cv2.imread(str(sample_set.samples[0].apex))
    frames = magnify_linear(onset, apex, DEMO_VARIANTS["unmagnified"].factors())
    assert np.array_equal(frames[0], apex)


def test_demo_rejects_other_generated_set(tmp_path, capsys):
    from uamrn.cli import main

    generate(tmp_path / "data", DemoSpec(n_subjects=2, samples_per_subject=1))
    code = main(["demo", "--out", str(tmp_path), "--subjects", "3"])
    assert code == 2
    assert "generated with other settings" in capsys.readouterr().err


def test_demo_rejects_one_subject(tmp_path, capsys):
    from uamrn.cli import main

    code = main(["demo", "--out", str(tmp_path), "--subjects", "1"])
    assert code == 2
    assert "at least 2" in capsys.readouterr().err


def test_demo_format_table():
    from uamrn.commands.demo import format_table

    rows = [
        {"variant": "magnified", "factors": "32 x 2..13", "uf1": 0.8, "uar": 0.75, "accuracy": 0.9, "wall_s": 12.0},
        {"variant": "unmagnified", "factors": "1 x 0..0", "uf1": 0.4, "uar": 0.35, "accuracy": 0.5, "wall_s": 3.0},
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["variant", "factors", "UF1", "UAR", "acc", "time", "s"]
    assert "0.800" in lines[1]
    assert "0.350" in lines[2]


@pytest.mark.slow
def test_demo_quick_magnification_helps(tmp_path, capsys):
    """The quick demo end to end: magnified UF1 is above unmagnified UF1."""
    import json

    from uamrn.cli import main

    code = main(["demo", "--quick", "--out", str(tmp_path)])
    assert code == 0
    assert "magnified" in capsys.readouterr().out
    results = {row["variant"]: row for row in json.loads((tmp_path / "demo.json").read_text())["results"]}
    assert results["magnified"]["uf1"] > results["unmagnified"]["uf1"]
    assert (tmp_path / "magnified" / "final" / "model.safetensors").is_file()
