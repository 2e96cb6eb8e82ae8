"""Magnification in the motion domain, for data that comes as onset-to-apex optical flow.

A flow image stores horizontal flow u, vertical flow v and optical strain, each min-max
normalised to 0..255 per image. Zero motion is therefore not a fixed value and the absolute
scale is lost. Magnifying thus means scaling the deviations of each channel from a per-image
reference level and clipping to 0..255. The reference is the channel median, the typical
value of a mostly still face. Clipping is what produces the saturated, over-magnified frames that the sparse
attention is meant to ignore.

The gain for amplification factor ``a`` is ``(1 + a) / (1 + unit_factor)``: the motion
factor of Eq. 1 (``I_onset + (1 + a) * (I_apex - I_onset)``) relative to the factor at which
the stored image is kept as it is. With the default ``unit_factor = min(factors)`` the
smallest factor reproduces the stored image (whose extremes already touch 0 and 255) and
larger factors saturate more and more pixels; ``unit_factor = max(factors)`` instead keeps
the largest factor as stored and shrinks the motion at smaller factors, so nothing saturates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["flow_gains", "magnify_flow"]


def flow_gains(factors: Sequence[float], unit_factor: float | None = None) -> np.ndarray:
    """Return the gain applied to flow deviations at each amplification factor.

    Args:
        factors: Amplification factors ``a``, one per output frame.
        unit_factor: The factor whose gain is 1; ``None`` means ``min(factors)``.

    Returns:
        ``(L,)`` float64 gains ``(1 + a) / (1 + unit_factor)``.

    Raises:
        ValueError: ``factors`` is empty or a factor is ``-1`` or below (no motion left).
    """
    factors = np.asarray(list(factors), dtype=np.float64)
    if factors.size == 0:
        raise ValueError("no amplification factors given; pass at least one factor")
    if unit_factor is None:
        unit_factor = float(factors.min())
    if factors.min() <= -1.0 or unit_factor <= -1.0:
        raise ValueError(
            f"amplification factors must be above -1 (got min {min(factors.min(), unit_factor)}); "
            "a factor of -1 removes all motion"
        )
    return (1.0 + factors) / (1.0 + unit_factor)


def magnify_flow(flow: np.ndarray, factors: Sequence[float], unit_factor: float | None = None) -> np.ndarray:
    """Rebuild a sequence of magnified flow images, one per amplification factor.

    Args:
        flow: ``(H, W, 3)`` uint8 flow image (u, v, optical strain), each channel min-max
            normalised per image.
        factors: Amplification factors ``a``, in output order.
        unit_factor: The factor at which ``flow`` is returned unchanged; ``None`` means
            ``min(factors)``. See the module docstring.

    Returns:
        ``(L, H, W, 3)`` uint8, frame ``i`` = ``median + gain_i * (flow - median)`` per channel,
        rounded and clipped to 0..255.

    Raises:
        ValueError: ``flow`` is not an ``(H, W, 3)`` uint8 array, or the factors are invalid.
    """
    if flow.ndim != 3 or flow.shape[2] != 3 or flow.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 flow image, got shape {flow.shape} dtype {flow.dtype}")
    gains = flow_gains(factors, unit_factor)

    values = flow.astype(np.float32)
    reference = np.median(values, axis=(0, 1), keepdims=True)
    deviation = values - reference

    frames = reference[None] + gains.astype(np.float32)[:, None, None, None] * deviation[None]
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)
