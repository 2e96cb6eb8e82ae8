"""TV-L1 flow export in the MEGC2019 composite image convention."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import require
from uamrn.data.flow import (
    export_flow,
    normalise_channel,
    optical_strain,
    read_frame,
    save_flow_image,
    tvl1_flow,
)


def _textured_frame(size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random((size // 4, size // 4))
    frame = np.kron(noise, np.ones((4, 4)))
    return (frame * 200 + 20).astype(np.uint8)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def test_strain_of_stretch():
    y, x = np.mgrid[0:8, 0:8].astype(np.float32)
    flow = np.stack([0.1 * x, np.zeros_like(x)], axis=-1)
    assert np.allclose(optical_strain(flow), 0.1, atol=1e-6)


def test_strain_of_shear():
    y, x = np.mgrid[0:8, 0:8].astype(np.float32)
    flow = np.stack([0.2 * y, np.zeros_like(y)], axis=-1)
    assert np.allclose(optical_strain(flow), np.sqrt(0.5) * 0.2, atol=1e-6)


def test_normalise_spans_range():
    out = normalise_channel(np.array([[-2.0, 0.0], [1.0, 3.0]], np.float32))
    assert out.dtype == np.uint8
    assert out.min() == 0
    assert out.max() == 255
    assert out[0, 1] == 102


def test_normalise_constant_channel():
    assert not normalise_channel(np.full((3, 3), 5.0, np.float32)).any()


def test_tvl1_flow_rightward_shift():
    onset = _textured_frame()
    apex = np.roll(onset, 2, axis=1)
    flow = tvl1_flow(onset, apex)
    centre = flow[16:48, 16:48]
    assert flow.shape == (64, 64, 2)
    assert abs(float(np.median(centre[:, :, 0])) - 2.0) < 0.5
    assert abs(float(np.median(centre[:, :, 1]))) < 0.5


def test_export_u_channel_marks_motion():
    onset = _textured_frame(96)
    apex = onset.copy()
    apex[24:72, 10:50] = onset[24:72, 8:48]
    image = export_flow(onset, apex)
    moving = image[9:21, 5:14, 0].astype(float).mean()
    still = image[9:21, 19:27, 0].astype(float).mean()
    assert moving > still + 60


def test_export_shape_and_range():
    onset = _textured_frame(64)
    image = export_flow(onset, np.roll(onset, 1, axis=0), size=16)
    assert image.shape == (16, 16, 3)
    assert image.dtype == np.uint8
    assert image.reshape(-1, 3).min(axis=0).tolist() == [0, 0, 0]
    assert image.reshape(-1, 3).max(axis=0).tolist() == [255, 255, 255]


def test_export_rgb_and_grey_agree():
    grey = _textured_frame(64)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    shifted = np.roll(rgb, 1, axis=1)
    assert np.array_equal(export_flow(rgb, shifted), export_flow(grey, shifted[:, :, 0]))


def test_export_rejects_size_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        export_flow(_textured_frame(64), _textured_frame(32))


def test_export_rejects_tiny_size():
    frame = _textured_frame(32)
    with pytest.raises(ValueError, match="at least 2 pixels"):
        export_flow(frame, frame, size=1)


def test_save_flow_image_keeps_rgb(tmp_path):
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 200
    path = save_flow_image(tmp_path / "out" / "flow.png", image)
    read = np.asarray(Image.open(path))
    assert read[0, 0].tolist() == [200, 0, 0]
    assert list(path.parent.iterdir()) == [path]


def test_read_frame_corrupt(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="broken.png"):
        read_frame(path)


def test_read_frame_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.jpg"):
        read_frame(tmp_path / "absent.jpg")


def test_export_casme2_frames(shared_data):
    folder = require(shared_data / "casme2_frames")
    onset = read_frame(folder / "001.jpg")
    apex = read_frame(folder / "010.jpg")
    image = export_flow(onset, apex)
    assert image.shape == (28, 28, 3)
    assert image.reshape(-1, 3).min(axis=0).tolist() == [0, 0, 0]
    assert image.reshape(-1, 3).max(axis=0).tolist() == [255, 255, 255]


def test_export_matches_composite_image(shared_data):
    # The composite's own image of this clip was made from differently cropped frames, so
    # the match is a correlation, not equality.
    pair = shared_data / "casme2_sub01_EP02_01f"
    onset = read_frame(require(pair / "onset_reg_img46.jpg"))
    apex = read_frame(require(pair / "apex_reg_img59.jpg"))
    reference = np.asarray(Image.open(require(shared_data / "megc2019/flow/sub01_EP02_01f .png")))
    image = export_flow(onset, apex)
    assert _pearson(image[..., 0], reference[..., 0]) > 0.8
    assert _pearson(image[..., 1], reference[..., 1]) > 0.8
    assert _pearson(image[..., 2], reference[..., 2]) > 0.5
