"""Motion-domain magnification of min-max normalised flow images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from uamrn.magnify.motion import flow_gains, magnify_flow

from conftest import require

FACTORS = [2.0, 5.0, 13.0]


def ramp_flow() -> np.ndarray:
    """A 28x28 flow image whose channels span 0..255 like the distributed ones."""
    ramp = np.linspace(0, 255, 28 * 28).reshape(28, 28)
    return np.stack([ramp, ramp.T, np.full((28, 28), 128.0)], axis=-1).round().astype(np.uint8)


def test_gains_default_unit_is_smallest_factor():
    gains = flow_gains(FACTORS)
    assert gains[0] == pytest.approx(1.0)
    assert gains[-1] == pytest.approx(14.0 / 3.0)


def test_gains_unit_largest_factor():
    gains = flow_gains(FACTORS, unit_factor=13.0)
    assert gains[-1] == pytest.approx(1.0)
    assert gains[0] == pytest.approx(3.0 / 14.0)


def test_magnify_shape_and_dtype():
    frames = magnify_flow(ramp_flow(), FACTORS)
    assert frames.shape == (3, 28, 28, 3)
    assert frames.dtype == np.uint8


def test_magnify_unit_factor_keeps_image():
    flow = ramp_flow()
    frames = magnify_flow(flow, FACTORS)
    np.testing.assert_array_equal(frames[0], flow)


def test_magnify_scales_deviation_from_median():
    flow = ramp_flow()
    frames = magnify_flow(flow, FACTORS, unit_factor=13.0)
    median = np.median(flow[..., 0])
    expected = np.clip(np.rint(median + (3.0 / 14.0) * (flow[..., 0] - median)), 0, 255)
    np.testing.assert_array_equal(frames[0][..., 0], expected)


def test_magnify_saturation_grows_with_factor():
    frames = magnify_flow(ramp_flow(), FACTORS)
    saturated = [int(np.isin(frame[..., 0], (0, 255)).sum()) for frame in frames]
    assert saturated[0] < saturated[1] < saturated[2]


def test_magnify_constant_channel_stays_constant():
    frames = magnify_flow(ramp_flow(), FACTORS)
    assert np.all(frames[..., 2] == 128)


def test_magnify_rejects_grey_image():
    with pytest.raises(ValueError, match="uint8 flow image"):
        magnify_flow(np.zeros((28, 28), np.uint8), FACTORS)


def test_magnify_rejects_float_image():
    with pytest.raises(ValueError, match="uint8 flow image"):
        magnify_flow(np.zeros((28, 28, 3), np.float32), FACTORS)


def test_gains_reject_empty_factors():
    with pytest.raises(ValueError, match="no amplification factors"):
        flow_gains([])


def test_gains_reject_factor_minus_one():
    with pytest.raises(ValueError, match="above -1"):
        flow_gains([-1.0, 2.0])


def test_magnify_real_flow_keeps_median(shared_data):
    path = require(shared_data / "megc2019" / "flow" / "sub01_EP02_01f .png")
    flow = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    frames = magnify_flow(flow, np.linspace(2, 13, 32))
    assert frames.shape == (32, *flow.shape)
    medians = np.median(frames.reshape(32, -1, 3), axis=1)
    np.testing.assert_allclose(medians, np.broadcast_to(np.median(flow.reshape(-1, 3), axis=0), medians.shape), atol=1)
