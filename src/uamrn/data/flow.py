"""Onset-to-apex optical flow exported as a MEGC2019-composite-style image.

The MEGC2019 composite stores each sample as a 28 x 28 RGB PNG whose channels are the
horizontal flow u, the vertical flow v and the optical strain, each min-max normalised to
0..255 within the image. ``export_flow`` rebuilds such an image from an onset and an apex
frame, so raw databases can feed the models trained on composite-style inputs.

Steps: both frames are converted to grey, and TV-L1 flow (OpenCV's ``DualTVL1OpticalFlow``
with its default parameters) runs from onset to apex at full resolution. The flow is
resized to the output size with area averaging, and the optical strain
``sqrt(ux^2 + vy^2 + 0.5 * (uy + vx)^2)`` is taken from the gradients of that resized flow
(``ux`` is du/dx on the output grid, and so on). Each channel is min-max normalised last,
which is what makes every channel of every composite image span exactly 0..255.
``docs/magnification.md`` compares this order with the real composite images.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from uamrn import imageio
from uamrn.magnify.linear import check_pair

__all__ = [
    "export_flow",
    "normalise_channel",
    "optical_strain",
    "read_frame",
    "save_flow_image",
    "tvl1_flow",
]

logger = logging.getLogger(__name__)


def _to_grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    if image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    raise ValueError(f"frames must be grey or RGB, got {image.shape[2]} channels; drop the alpha channel first")


def tvl1_flow(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    """Compute dense TV-L1 optical flow from onset to apex.

    Args:
        onset: Onset frame, uint8 RGB (H, W, 3) or grey (H, W).
        apex: Apex frame, same shape.

    Returns:
        float32 array (H, W, 2): horizontal flow u and vertical flow v in pixels, positive
        to the right and downwards.
    """
    check_pair(onset, apex)
    solver = cv2.optflow.DualTVL1OpticalFlow_create()
    flow = solver.calc(_to_grey(onset), _to_grey(apex), None)
    logger.debug("TV-L1 flow on %s frames, max |u| %.2f px, max |v| %.2f px", onset.shape[:2], *np.abs(flow).max(axis=(0, 1)))
    return flow


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Compute the optical strain magnitude of a flow field.

    Args:
        flow: float array (H, W, 2) with u and v.

    Returns:
        float32 array (H, W): ``sqrt(ux^2 + vy^2 + 0.5 * (uy + vx)^2)`` with central
        differences (one-sided at the border).
    """
    u_dy, u_dx = np.gradient(flow[:, :, 0])
    v_dy, v_dx = np.gradient(flow[:, :, 1])
    return np.sqrt(u_dx**2 + v_dy**2 + 0.5 * (u_dy + v_dx) ** 2).astype(np.float32)


def normalise_channel(channel: np.ndarray) -> np.ndarray:
    """Min-max normalise one channel to uint8 0..255.

    A constant channel (no motion at all) maps to 0, because it has no range to stretch.
    """
    low, high = float(channel.min()), float(channel.max())
    if high - low <= np.finfo(np.float32).eps:
        return np.zeros(channel.shape, np.uint8)
    scaled = (channel.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def export_flow(onset: np.ndarray, apex: np.ndarray, size: int = 28) -> np.ndarray:
    """Build a composite-style flow image from an onset and an apex frame.

    Args:
        onset: Onset frame, uint8 RGB (H, W, 3) or grey (H, W).
        apex: Apex frame, same shape.
        size: Side of the square output in pixels (the composite uses 28).

    Returns:
        uint8 array (size, size, 3), channels u, v, optical strain in RGB order, each
        spanning 0..255 unless it is constant.

    Raises:
        ValueError: On mismatched or invalid frames, or a size below 2.
    """
    if size < 2:
        raise ValueError(f"flow image size must be at least 2 pixels because strain needs gradients, got {size}")
    flow = tvl1_flow(onset, apex)
    small = cv2.resize(flow, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, 2)
    strain = optical_strain(small)

    channels = [normalise_channel(small[:, :, 0]), normalise_channel(small[:, :, 1]), normalise_channel(strain)]
    return np.stack(channels, axis=-1)


def read_frame(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3).

    Raises:
        FileNotFoundError: When the file does not exist.
        ValueError: When the file is not a readable image.
    """
    return imageio.read_rgb(path, fix="the file is corrupt or not an image format OpenCV reads")


def save_flow_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB flow image as PNG, atomically (temporary file, then rename).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_png_atomic(path, image)
    return path


def _write_png_atomic(path: Path, rgb: np.ndarray) -> None:
    temporary = path.with_name(f".{path.name}.tmp.png")
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    if not cv2.imwrite(str(temporary), bgr):
        raise ValueError(f"cannot write image {path}; check that the folder is writable")
    temporary.replace(path)
