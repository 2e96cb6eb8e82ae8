"""Linear magnifier, factor parsing and the ``uamrn magnify`` command."""

from __future__ import annotations

import numpy as np
import pytest

from uamrn.magnify import check_factors, magnify_linear, parse_factors


def _pair(shape=(6, 7, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    onset = rng.integers(60, 200, size=shape, dtype=np.uint8)
    apex = np.clip(onset.astype(int) + rng.integers(-8, 9, size=shape), 0, 255).astype(np.uint8)
    return onset, apex


def test_linear_shape_and_dtype():
    onset, apex = _pair()
    frames = magnify_linear(onset, apex, np.linspace(2, 13, 32))
    assert frames.shape == (32, 6, 7, 3)
    assert frames.dtype == np.uint8


def test_linear_formula_signed():
    onset = np.full((2, 2, 3), 100, np.uint8)
    apex = onset.copy()
    apex[0, 0] = 110
    apex[1, 1] = 90
    frames = magnify_linear(onset, apex, [0.0, 1.0, 2.0])
    assert frames[:, 0, 0, 0].tolist() == [110, 120, 130]
    assert frames[:, 1, 1, 0].tolist() == [90, 80, 70]
    assert frames[:, 0, 1, 0].tolist() == [100, 100, 100]


def test_linear_matches_float_reference():
    onset, apex = _pair()
    factors = [2.0, 5.5, 13.0]
    expected = [
        np.clip(np.rint(onset.astype(float) + (1 + a) * (apex.astype(float) - onset)), 0, 255)
        for a in factors
    ]
    assert np.array_equal(magnify_linear(onset, apex, factors), np.stack(expected).astype(np.uint8))


def test_linear_clips_to_range():
    onset = np.array([[[10, 250, 128]]], np.uint8)
    apex = np.array([[[0, 255, 128]]], np.uint8)
    frames = magnify_linear(onset, apex, [20.0])
    assert frames[0, 0, 0].tolist() == [0, 255, 128]


def test_linear_zero_factor_gives_apex():
    onset, apex = _pair()
    assert np.array_equal(magnify_linear(onset, apex, [0.0])[0], apex)


def test_linear_grey_input():
    onset, apex = _pair((5, 4))
    assert magnify_linear(onset, apex, [2.0, 3.0]).shape == (2, 5, 4)


def test_linear_rejects_shape_mismatch():
    onset, _ = _pair((6, 7, 3))
    _, apex = _pair((6, 8, 3))
    with pytest.raises(ValueError, match="differ in shape"):
        magnify_linear(onset, apex, [2.0])


def test_linear_rejects_float_image():
    onset, apex = _pair()
    with pytest.raises(ValueError, match="onset frame must be uint8"):
        magnify_linear(onset.astype(np.float32), apex, [2.0])


def test_linear_rejects_empty_factors():
    onset, apex = _pair()
    with pytest.raises(ValueError, match="non-empty"):
        magnify_linear(onset, apex, [])


def test_factors_rejects_nan():
    with pytest.raises(ValueError, match="finite"):
        check_factors([2.0, float("nan")])


def test_parse_factors_linspace():
    assert np.allclose(parse_factors("2:12:32"), np.linspace(2, 12, 32))


def test_parse_factors_single():
    assert parse_factors("3:9:1").tolist() == [3.0]


@pytest.mark.parametrize("text", ["2:13", "a:13:32", "2:13:x", "2:13:0", "2:inf:4", "2:13:3.5"])
def test_parse_factors_rejects(text):
    with pytest.raises(ValueError, match="invalid factors"):
        parse_factors(text)
