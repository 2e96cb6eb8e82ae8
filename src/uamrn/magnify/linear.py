"""Linear (Eulerian-style) magnification of the onset-to-apex change.

For amplification factor ``a`` the magnified frame is
``I_onset + (1 + a) * (I_apex - I_onset)``, computed in floating point with the signed
difference, rounded and clipped to 0..255. The absolute difference would discard the
direction of the motion, so the sign is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from uamrn.magnify.factors import check_factors

__all__ = ["check_pair", "magnify_linear"]


def check_pair(onset: np.ndarray, apex: np.ndarray) -> None:
    """Check that onset and apex are uint8 images of one shape (H, W) or (H, W, C).

    Raises:
        ValueError: Naming the frame (onset or apex) and the shape or dtype at fault.
    """
    for name, image in (("onset", onset), ("apex", apex)):
        if not isinstance(image, np.ndarray):
            raise ValueError(f"{name} frame must be a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise ValueError(
                f"{name} frame must be uint8 (0..255), got dtype {image.dtype}; "
                "convert with numpy.clip(x, 0, 255).astype(numpy.uint8)"
            )
        if image.ndim not in (2, 3) or image.size == 0:
            raise ValueError(f"{name} frame must have shape (H, W) or (H, W, C), got {image.shape}")
    if onset.shape != apex.shape:
        raise ValueError(
            f"onset frame {onset.shape} and apex frame {apex.shape} differ in shape; "
            "crop or resize both to the same size first"
        )


def magnify_linear(
    onset: np.ndarray, apex: np.ndarray, factors: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Magnify the onset-to-apex change linearly, one frame per amplification factor.

    Args:
        onset: Onset frame, uint8, shape (H, W, C) or (H, W).
        apex: Apex frame, same shape and dtype as ``onset``.
        factors: L amplification factors; factor ``a`` scales the change by ``1 + a``.

    Returns:
        uint8 array of shape (L, H, W, C) (or (L, H, W) for single-channel input), frames
        in the order of ``factors``.

    Raises:
        ValueError: On a dtype or shape mismatch, or invalid factors.
    """
    check_pair(onset, apex)
    gains = 1.0 + check_factors(factors)

    base = onset.astype(np.float32)
    change = apex.astype(np.float32) - base
    gains = gains.astype(np.float32).reshape((-1,) + (1,) * onset.ndim)

    frames = base[None] + gains * change[None]
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)
