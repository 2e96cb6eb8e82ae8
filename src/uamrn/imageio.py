"""Reading one image file with OpenCV, with errors that name the file and the fix.

The image readers of :mod:`uamrn.spotting`, :mod:`uamrn.data.flow` and
:mod:`uamrn.train.features` call :func:`read_image`, so the checks (the file exists, OpenCV
can decode it) are made in one place. Each caller passes the fix for its own users, because
the fix differs: a frame given to ``uamrn predict`` is replaced, while a dataset sample's
file may instead be removed with its sample.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["read_image", "read_rgb"]


def read_image(path: str | Path, fix: str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Read an image file as OpenCV decodes it, in OpenCV's channel order (BGR).

    Args:
        path: The image file.
        fix: What the user should do when the file cannot be decoded; the error message
            ends with it.
        flags: ``cv2.imread`` flags; ``cv2.IMREAD_COLOR`` gives ``(H, W, 3)`` uint8.

    Returns:
        The decoded array, ``(H, W, 3)`` uint8 BGR with the default flags.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: OpenCV cannot decode the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    image = cv2.imread(str(path), flags)
    if image is None:
        raise ValueError(f"cannot decode image {path}; {fix}")
    return image


def read_rgb(path: str | Path, fix: str) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB; grey images are expanded to three channels.

    Args:
        path: The image file.
        fix: What the user should do when the file cannot be decoded; the error message
            ends with it.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: OpenCV cannot decode the file.
    """
    return cv2.cvtColor(read_image(path, fix), cv2.COLOR_BGR2RGB)
