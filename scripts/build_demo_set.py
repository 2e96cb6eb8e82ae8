"""Build the bundled demo faces from the Face Research Lab London Set (FRLL).

For every neutral frontal face this script detects 68 landmarks with dlib, crops a square
around them, downsamples the crop and writes it into ``src/uamrn/data/demo/`` together with
the landmarks in crop coordinates, the FRLL licence and the attribution. The generator in
``uamrn.data.demo`` turns these faces into synthetic onset/apex pairs at demo time.

Usage:
    python scripts/build_demo_set.py [--frll ../shared/data/frll_london] [--size 256]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
from pathlib import Path

import cv2
import dlib
import numpy as np
from tqdm import tqdm

log = logging.getLogger("build_demo_set")

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "uamrn" / "data" / "demo"

ATTRIBUTION = """# Attribution

The face images in `faces/` are derived from the Face Research Lab London Set:

DeBruine, L. & Jones, B. (2017). Face Research Lab London Set.
doi:10.6084/m9.figshare.5047666.v5

Licence: Creative Commons Attribution 4.0 International (CC BY 4.0); the full text is in
`LICENSE.md` beside this file.

Changes made by the uamrn project (`scripts/build_demo_set.py`): from each neutral frontal
image (`neutral_front/NNN_03.jpg`, 1350x1350) a square of {margin}x the dlib 68-landmark
bounding box, centred on it, was cropped, resized to {size}x{size} and saved as JPEG at
quality {quality}. `landmarks.json` holds the 68 dlib landmarks of each crop, in crop pixel
coordinates. The micro-expression motions used by `uamrn demo` are synthetic warps of these
neutral faces; the people photographed did not make them.
"""


def dlib_models_dir() -> Path:
    """Locate the ``models/`` folder of face-recognition-models without importing the package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("face-recognition-models is not installed; pip install face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def detect_landmarks(image_rgb: np.ndarray, detector, predictor, work_size: int = 675) -> np.ndarray:
    """Detect the largest face and return its 68 landmarks (68, 2) in the image's pixels.

    Detection runs on a copy downscaled to ``work_size`` for speed; the landmark
    predictor then runs on the full-resolution image inside the rescaled box.
    """
    scale = work_size / max(image_rgb.shape[:2])
    small = cv2.resize(image_rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    boxes = detector(small, 1)
    if not boxes:
        raise ValueError("no face found")

    box = max(boxes, key=lambda b: b.width() * b.height())
    full_box = dlib.rectangle(
        int(box.left() / scale), int(box.top() / scale), int(box.right() / scale), int(box.bottom() / scale)
    )
    shape = predictor(image_rgb, full_box)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def crop_square(image_rgb: np.ndarray, landmarks: np.ndarray, margin: float, size: int):
    """Crop a square of ``margin`` times the landmark box side, resized to ``size``.

    Returns:
        The crop (size, size, 3) uint8 and the landmarks mapped into it (68, 2).
    """
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    centre = (low + high) / 2
    side = margin * float((high - low).max())
    x0, y0 = centre - side / 2

    # An affine map keeps sub-pixel accuracy and pads with the border if the square
    # leaves the image.
    scale = size / side
    matrix = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
    crop = cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    mapped = landmarks @ matrix[:, :2].T + matrix[:, 2]
    return crop, mapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frll", type=Path, default=REPO.parent / "shared" / "data" / "frll_london",
                        help="FRLL folder containing neutral_front/ and LICENSE.md")
    parser.add_argument("--size", type=int, default=256, help="side of the saved crops, pixels")
    parser.add_argument("--margin", type=float, default=1.8, help="crop side as a multiple of the landmark box side")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the saved crops")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    sources = sorted((args.frll / "neutral_front").glob("*_03.jpg"))
    if not sources:
        raise FileNotFoundError(f"no neutral_front/*_03.jpg images under {args.frll}; pass --frll")

    models = dlib_models_dir()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))

    faces_dir = OUT / "faces"
    if faces_dir.exists():
        shutil.rmtree(faces_dir)
    faces_dir.mkdir(parents=True)

    landmarks_out: dict[str, list[list[float]]] = {}
    for path in tqdm(sources, desc="FRLL faces"):
        identity = path.stem.split("_")[0]
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        try:
            points = detect_landmarks(image, detector, predictor)
        except ValueError:
            log.warning("skipped %s: dlib found no face", path)
            continue

        crop, mapped = crop_square(image, points, args.margin, args.size)
        cv2.imwrite(str(faces_dir / f"{identity}.jpg"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, args.quality])
        landmarks_out[identity] = np.round(mapped, 2).tolist()

    (OUT / "landmarks.json").write_text(json.dumps(landmarks_out, separators=(",", ":")) + "\n")
    shutil.copyfile(args.frll / "LICENSE.md", OUT / "LICENSE.md")
    (OUT / "ATTRIBUTION.md").write_text(ATTRIBUTION.format(margin=args.margin, size=args.size, quality=args.quality))
    log.info("wrote %d faces to %s", len(landmarks_out), OUT)


if __name__ == "__main__":
    main()
