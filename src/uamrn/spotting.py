"""Reading a clip (a folder of frames or a video file) and spotting its apex frame.

The apex is spotted as the frame that differs most from the onset, taken to be the first
frame: the mean absolute grey-level difference after a light Gaussian blur, which keeps
sensor noise from deciding the choice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from uamrn import imageio

__all__ = ["IMAGE_SUFFIXES", "list_frames", "read_clip", "read_image", "spot_apex"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _natural_key(path: Path) -> list:
    # "img9" sorts before "img10", as frame numbers are meant.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_frames(folder: Path) -> list[Path]:
    """List the image files of a frame folder in natural order (``img9`` before ``img10``).

    Raises:
        FileNotFoundError: When the folder does not exist or contains no image file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"clip folder not found: {folder}")
    frames = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not frames:
        raise FileNotFoundError(
            f"no image files ({', '.join(IMAGE_SUFFIXES)}) in clip folder {folder}; "
            "give a folder of frames or a video file"
        )
    return frames


def read_image(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); grey images are expanded to three channels.

    Raises:
        FileNotFoundError: When the file does not exist.
        ValueError: When OpenCV cannot decode it.
    """
    return imageio.read_rgb(path, fix="give a JPEG, PNG, BMP or TIFF file")


def _read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"cannot open video {path}; give a video OpenCV can decode (e.g. AVI, MP4) or a folder of frames")
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    return frames


def read_clip(path: Path) -> list[np.ndarray]:
    """Read every frame of a clip, in order, as RGB uint8 (H, W, 3) arrays.

    Args:
        path: A folder of frame images (natural file-name order) or a video file.

    Returns:
        The frames; at least two, since a clip needs an onset and an apex.

    Raises:
        FileNotFoundError: When the path does not exist or the folder contains no image.
        ValueError: When the video cannot be decoded, the frames differ in size, or the
            clip has fewer than two frames.
    """
    path = Path(path)
    if path.is_dir():
        frames = [read_image(p) for p in list_frames(path)]
    elif path.is_file():
        frames = _read_video(path)
    else:
        raise FileNotFoundError(f"clip not found: {path}; give a folder of frames or a video file")

    if len(frames) < 2:
        raise ValueError(
            f"clip {path} has {len(frames)} frame(s); a clip needs at least an onset and an apex frame, "
            "or give the pair with --onset and --apex"
        )
    sizes = {frame.shape for frame in frames}
    if len(sizes) > 1:
        raise ValueError(f"frames of clip {path} differ in size ({sorted(sizes)}); resize them to one size")
    return frames


def spot_apex(frames: Sequence[np.ndarray], blur_sigma: float = 1.0) -> int:
    """Return the index of the frame that differs most from the first (onset) frame.

    Args:
        frames: At least two frames of one size, uint8 (H, W) or (H, W, 3) RGB.
        blur_sigma: Gaussian blur applied before differencing, pixels.

    Returns:
        Index in ``1..len(frames) - 1`` of the spotted apex; ties go to the earliest.

    Raises:
        ValueError: With fewer than two frames.
    """
    if len(frames) < 2:
        raise ValueError(f"apex spotting needs at least two frames, got {len(frames)}")

    def grey(frame: np.ndarray) -> np.ndarray:
        plane = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
        return cv2.GaussianBlur(plane.astype(np.float32), (0, 0), blur_sigma)

    onset = grey(frames[0])
    scores = [float(np.mean(np.abs(grey(frame) - onset))) for frame in frames[1:]]
    return 1 + int(np.argmax(scores))
