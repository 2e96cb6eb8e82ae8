"""Face detection and 68 facial landmarks with dlib.

The detector is dlib's HOG frontal-face detector. The landmarks come from dlib's 68-point
shape predictor as shipped by the ``face-recognition-models`` package. That predictor was
trained on the iBUG 300-W data set, whose licence excludes commercial use, so the landmark
model (and anything that ships it) carries that restriction.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import dlib
import numpy as np

__all__ = ["FaceNotFoundError", "Landmarks", "detect_landmarks", "model_dir"]

logger = logging.getLogger(__name__)

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"

# Longest image side, in pixels, for HOG detection. Larger images are shrunk first because
# detection on a 1350-pixel photo takes seconds. The 68 points are fitted at full resolution.
DETECT_MAX_SIDE = 640


class FaceNotFoundError(ValueError):
    """No face was found in an image; the message names the image."""


@dataclass(frozen=True)
class Landmarks:
    """The highest-scoring face of an image.

    Attributes:
        points: (68, 2) float32 landmark coordinates (x, y) in image pixels, in the iBUG
            68-point order (0-16 jaw, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 mouth).
        box: Detector box (left, top, right, bottom) in image pixels.
        score: Detector score of that box (higher is more confident).
    """

    points: np.ndarray
    box: tuple[int, int, int, int]
    score: float


def model_dir() -> Path:
    """Folder of ``face-recognition-models``' model files, found without importing it.

    Importing the package runs ``pkg_resources``, which recent setuptools no longer ships,
    so only its location is looked up.

    Raises:
        FileNotFoundError: The package is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package face-recognition-models not found; install it with pip install face-recognition-models"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@lru_cache(maxsize=1)
def _detector() -> dlib.fhog_object_detector:
    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _predictor() -> dlib.shape_predictor:
    path = model_dir() / PREDICTOR_FILE
    if not path.is_file():
        raise FileNotFoundError(f"68-point landmark model {path} not found; reinstall face-recognition-models")
    return dlib.shape_predictor(str(path))


def detect_landmarks(image: np.ndarray, name: str = "image", upsample: int = 1) -> Landmarks:
    """Detect the highest-scoring face and its 68 landmarks.

    Args:
        image: uint8 image, (H, W) grey or (H, W, 3) RGB.
        name: Image name used in the error message (file path or clip id).
        upsample: Times the (possibly shrunk) image is doubled before HOG detection, to
            find small faces.

    Returns:
        The landmarks of the face with the highest detector score.

    Raises:
        FaceNotFoundError: No face detected; the message names the image.
        ValueError: The array is not a uint8 grey or RGB image.
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"{name}: expected a uint8 (H, W) or (H, W, 3) image, got {image.dtype} {image.shape}")
    image = np.ascontiguousarray(image)

    scale = min(1.0, DETECT_MAX_SIDE / max(image.shape[:2]))
    small = image if scale == 1.0 else _resize(image, scale)
    rects, scores, _ = _detector().run(small, upsample, 0.0)
    if not rects:
        raise FaceNotFoundError(
            f"no face found in {name}; check that the image shows a frontal face, or crop it closer to the face"
        )

    best = int(np.argmax(scores))
    rect = rects[best]
    box = tuple(int(round(v / scale)) for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))
    shape = _predictor()(image, dlib.rectangle(*box))
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    logger.debug("%s: %d faces, kept score %.2f box %s", name, len(rects), scores[best], box)
    return Landmarks(points=points, box=box, score=float(scores[best]))


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
