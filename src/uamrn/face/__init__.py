"""Face detection, 68 landmarks and the onset-box crop of an onset/apex pair."""

from uamrn.face.crop import CropResult, crop_pair
from uamrn.face.detect import FaceNotFoundError, Landmarks, detect_landmarks

__all__ = ["CropResult", "FaceNotFoundError", "Landmarks", "crop_pair", "detect_landmarks"]
