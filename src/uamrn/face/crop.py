"""Crop one onset/apex pair with a single face box taken from the onset's 68 landmarks.

The box is fixed on the onset and applied unchanged to the apex, so head drift between
the frames cannot enter their difference. With ``rotate=True`` the eye line of the onset is
made horizontal; rotation and crop form one affine warp, applied to both frames alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from uamrn.face.detect import Landmarks, detect_landmarks

__all__ = ["CropResult", "crop_pair", "face_box"]

# iBUG 68-point indices of the two eyes (image left, image right).
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)


@dataclass(frozen=True)
class CropResult:
    """A cropped pair and where it came from.

    Attributes:
        onset: (size, size, 3) uint8 RGB crop of the onset frame.
        apex: (size, size, 3) uint8 RGB crop of the apex frame, same box.
        box: Square face box (x0, y0, x1, y1) in onset pixels; after rotation about the
            box centre when ``angle`` is not 0.
        landmarks: (68, 2) float32 onset landmarks in original onset pixels.
        angle: Eye-line angle in degrees that the rotation removed (0 without rotation).
    """

    onset: np.ndarray
    apex: np.ndarray
    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    angle: float


def face_box(points: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """Square box around landmarks, grown by ``margin`` times its side on every side."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) * (0.5 + margin)
    return (float(cx - half), float(cy - half), float(cx + half), float(cy + half))


def crop_pair(
    onset: np.ndarray,
    apex: np.ndarray,
    size: int = 224,
    rotate: bool = False,
    *,
    margin: float = 0.1,
    name: str = "clip",
    landmarks: Landmarks | None = None,
) -> CropResult:
    """Crop onset and apex with the face box of the onset's landmarks, resized to size x size.

    Args:
        onset: uint8 onset frame, (H, W) grey or (H, W, 3) RGB.
        apex: uint8 apex frame of the same shape.
        size: Side of the square output in pixels.
        rotate: Make the onset's eye line horizontal, rotating both frames and the box.
        margin: Extra border around the landmark box, as a fraction of its side, per side.
        name: Clip or file name used in error messages.
        landmarks: Onset landmarks already found; detected when None.

    Returns:
        The two crops (RGB, 3 channels even for grey input), the box and the landmarks.
        Parts of the box outside the image are filled by repeating the border pixels.

    Raises:
        ValueError: Onset and apex differ in shape, or are not uint8 images; names the clip.
        FaceNotFoundError: No face on the onset; names the clip.
    """
    if onset.shape != apex.shape:
        raise ValueError(
            f"{name}: onset {onset.shape[:2]} and apex {apex.shape[:2]} differ in size; "
            "both frames must come from the same video at the same resolution"
        )
    onset, apex = _rgb(onset, name), _rgb(apex, name)
    if landmarks is None:
        landmarks = detect_landmarks(onset, name=f"onset of {name}")
    points = landmarks.points

    angle = _eye_angle(points) if rotate else 0.0
    centre = points.mean(axis=0)
    rotation = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)
    rotated = cv2.transform(points[None].astype(np.float64), rotation)[0]
    box = face_box(rotated, margin)

    # Map the box of the rotated image onto the output square: scale, then shift.
    scale = size / (box[2] - box[0])
    crop = np.array([[scale, 0.0, -box[0] * scale], [0.0, scale, -box[1] * scale]])
    warp = crop @ np.vstack([rotation, [0.0, 0.0, 1.0]])

    # warpAffine has no area filter, so a large reduction first shrinks the whole frame with
    # INTER_AREA (against aliasing) and the warp then works at about the output scale.
    shrink = min(1.0, scale)
    if shrink < 1.0:
        warp = warp @ np.diag([1.0 / shrink, 1.0 / shrink, 1.0])

    def apply(image: np.ndarray) -> np.ndarray:
        if shrink < 1.0:
            shape = (max(1, round(image.shape[1] * shrink)), max(1, round(image.shape[0] * shrink)))
            image = cv2.resize(image, shape, interpolation=cv2.INTER_AREA)
        return cv2.warpAffine(image, warp[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    return CropResult(onset=apply(onset), apex=apply(apex), box=box, landmarks=points, angle=angle)


def _eye_angle(points: np.ndarray) -> float:
    """Angle in degrees of the line from the left to the right eye centre."""
    left = points[_LEFT_EYE].mean(axis=0)
    right = points[_RIGHT_EYE].mean(axis=0)
    return math.degrees(math.atan2(float(right[1] - left[1]), float(right[0] - left[0])))


def _rgb(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(f"{name}: frames must be uint8 images, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise ValueError(f"{name}: expected an (H, W) or (H, W, 3) image, got shape {image.shape}")
