"""Face detection, 68 landmarks and the onset-box crop on real faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require
from uamrn.face.crop import crop_pair, face_box
from uamrn.face.detect import FaceNotFoundError, detect_landmarks, model_dir


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(require(path))), cv2.COLOR_BGR2RGB)


def _pupils(tem: Path) -> np.ndarray:
    """The two pupils, points 0 and 1 of an FRLL ``.tem`` template, as (2, 2) x, y."""
    lines = tem.read_text().splitlines()
    return np.array([[float(v) for v in lines[i].split()] for i in (1, 2)])


def _eye_centres(points: np.ndarray) -> np.ndarray:
    return np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0)])


@pytest.fixture(scope="module")
def frll(shared_data: Path) -> Path:
    return require(shared_data / "frll_london")


def test_model_dir_has_predictor() -> None:
    assert (model_dir() / "shape_predictor_68_face_landmarks.dat").is_file()


def test_landmarks_casme2_frame(shared_data: Path) -> None:
    image = _rgb(shared_data / "casme2_frames/001.jpg")
    found = detect_landmarks(image, name="001.jpg")
    points = found.points
    assert points.shape == (68, 2)
    assert _eye_centres(points)[:, 1].max() < points[48:68, 1].min()  # eyes above the mouth
    # The frame is cropped tightly, so jaw points may lie a little outside it.
    slack = 0.15 * image.shape[1]
    assert points[:, 0].min() > -slack
    assert points[:, 0].max() < image.shape[1] + slack


@pytest.mark.parametrize("person", ["001", "081", "173"])
def test_landmarks_match_frll_pupils(frll: Path, person: str) -> None:
    image = _rgb(frll / f"neutral_front/{person}_03.jpg")
    pupils = _pupils(frll / f"neutral_front/{person}_03.tem")
    eyes = _eye_centres(detect_landmarks(image, name=person).points)
    interocular = np.linalg.norm(pupils[1] - pupils[0])
    error = np.linalg.norm(eyes - pupils, axis=1).max() / interocular
    assert error < 0.1


def test_grey_input_accepted(shared_data: Path) -> None:
    grey = cv2.imread(str(require(shared_data / "casme2_frames/002.jpg")), cv2.IMREAD_GRAYSCALE)
    assert detect_landmarks(grey).points.shape == (68, 2)


def test_no_face_names_image() -> None:
    blank = np.full((200, 200, 3), 128, np.uint8)
    with pytest.raises(FaceNotFoundError, match="no face found in blank.png"):
        detect_landmarks(blank, name="blank.png")


def test_wrong_dtype_rejected() -> None:
    with pytest.raises(ValueError, match="expected a uint8"):
        detect_landmarks(np.zeros((50, 50), np.float32), name="x")


def test_crop_shape_and_channels(shared_data: Path) -> None:
    pair = require(shared_data / "casme2_sub01_EP02_01f")
    result = crop_pair(_rgb(pair / "onset_reg_img46.jpg"), _rgb(pair / "apex_reg_img59.jpg"))
    assert result.onset.shape == (224, 224, 3)
    assert result.apex.shape == (224, 224, 3)
    assert result.onset.dtype == np.uint8
    assert result.angle == 0.0


def test_crop_box_from_onset_only(frll: Path) -> None:
    onset = _rgb(frll / "neutral_front/001_03.jpg")
    apex = _rgb(frll / "smiling_front/001_08.jpg")
    forward = crop_pair(onset, apex)
    swapped = crop_pair(apex, onset, landmarks=detect_landmarks(onset))
    assert np.array_equal(forward.apex, swapped.onset)
    assert np.array_equal(forward.onset, swapped.apex)


def test_crop_box_square_with_margin() -> None:
    points = np.array([[10.0, 20.0], [50.0, 100.0]])
    assert face_box(points, 0.0) == (-10.0, 20.0, 70.0, 100.0)
    x0, y0, x1, y1 = face_box(points, 0.1)
    assert x1 - x0 == pytest.approx(96.0)
    assert y1 - y0 == pytest.approx(96.0)


def test_crop_rotation_levels_eyes(frll: Path) -> None:
    image = _rgb(frll / "neutral_front/002_03.jpg")
    tilt = cv2.getRotationMatrix2D((675.0, 675.0), 12.0, 1.0)
    tilted = cv2.warpAffine(image, tilt, (1350, 1350), borderMode=cv2.BORDER_REPLICATE)

    result = crop_pair(tilted, tilted, rotate=True)
    eyes = _eye_centres(detect_landmarks(result.onset).points)
    residual = np.degrees(np.arctan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))
    assert abs(result.angle) > 8.0
    assert abs(residual) < 3.0


def test_crop_size_mismatch_names_clip(shared_data: Path) -> None:
    image = _rgb(shared_data / "casme2_frames/001.jpg")
    with pytest.raises(ValueError, match="sub01/EP01: onset .* and apex .* differ in size"):
        crop_pair(image, image[:-10], name="sub01/EP01")
