"""The bundled demo set: synthetic subtle facial motions on real neutral faces.

The package ships downsampled neutral frontal faces of the Face Research Lab London Set
(CC BY 4.0, see ``data/demo/ATTRIBUTION.md``) with their 68 dlib landmarks. From each face
the generator makes onset/apex pairs: the onset is the neutral face and the apex is the same
face warped by a smooth displacement field built from Gaussian radial basis functions centred
on the landmarks that the facial action moves. **The motions are synthetic**; the people
photographed never made them. The set exists so that the whole pipeline can run, offline and
within minutes, on a machine without a licensed micro-expression database.

Classes, with the facial action unit (AU) they imitate and their default share, which is
imbalanced like CASME II:

- ``lip_corner_raise`` (AU12): both lip corners move up and outwards, 50 %.
- ``brow_lowering`` (AU4): the inner brows move down and towards each other, 30 %.
- ``inner_brow_raise`` (AU1): the inner brows move up, 20 %.

The peak displacement of each sample is drawn uniformly between ``amplitude_min`` and
``amplitude_max`` pixels, measured in the 224x224 face crop that the pipeline makes, so
most motions are near or below one pixel there. Each frame gets independent Gaussian sensor
noise. Everything is drawn from one seeded ``numpy.random.Generator``, so a seed fixes
the set.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from uamrn.config import DataConfig
from uamrn.data.sample import Sample, SampleSet
from uamrn.fileio import atomic_write

__all__ = [
    "CLASS_NAMES",
    "DemoSpec",
    "bundled_faces",
    "default_root",
    "displacement_field",
    "generate",
    "load",
    "warp_face",
]

log = logging.getLogger(__name__)

CLASS_NAMES = ("lip_corner_raise", "brow_lowering", "inner_brow_raise")
CLASS_SHARES = (0.5, 0.3, 0.2)

# Control points per class: (dlib 68-point index, unit direction (dx, dy) in image
# coordinates with y pointing down, relative weight). The left/right pairs mirror.
_UP_OUT = 1 / np.sqrt(2)
ACTIONS: dict[str, tuple[tuple[int, tuple[float, float], float], ...]] = {
    "lip_corner_raise": (
        (48, (-_UP_OUT, -_UP_OUT), 1.0),
        (54, (_UP_OUT, -_UP_OUT), 1.0),
        (49, (-0.3, -0.95), 0.4),
        (53, (0.3, -0.95), 0.4),
    ),
    "brow_lowering": (
        (21, (0.45, 0.89), 1.0),
        (22, (-0.45, 0.89), 1.0),
        (20, (0.3, 0.95), 0.6),
        (23, (-0.3, 0.95), 0.6),
    ),
    "inner_brow_raise": (
        (21, (0.0, -1.0), 1.0),
        (22, (0.0, -1.0), 1.0),
        (20, (0.0, -1.0), 0.6),
        (23, (0.0, -1.0), 0.6),
    ),
}

# The pipeline's face crop is the landmark box grown by a margin of 0.1 per side
# (SequenceConfig.face_margin), i.e. about 1.2 box sides, resized to 224 pixels. The
# generator uses this ratio to express amplitudes in pixels of that crop.
# NOTE: if the face crop's margin changes, amplitudes in crop pixels change with it.
CROP_SIDE_PER_BOX = 1.2
CROP_SIZE = 224


@dataclass(frozen=True)
class DemoSpec:
    """Parameters of a generated demo set, saved beside it as ``spec.json``.

    Attributes:
        n_subjects: Number of FRLL identities used, the first ones in sorted order.
        samples_per_subject: Onset/apex pairs per identity.
        amplitude_min: Smallest peak displacement, pixels of the 224x224 face crop.
        amplitude_max: Largest peak displacement, pixels of the 224x224 face crop.
        sigma: Width of each Gaussian radial basis function, as a fraction of the
            landmark box side.
        noise: Standard deviation of the Gaussian sensor noise added to each frame,
            grey levels (0..255).
        seed: Seed of the random generator.
    """

    n_subjects: int = 24
    samples_per_subject: int = 8
    amplitude_min: float = 0.3
    amplitude_max: float = 2.0
    sigma: float = 0.09
    noise: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_subjects < 2:
            raise ValueError(f"n_subjects must be at least 2 for leave-one-subject-out, got {self.n_subjects}")
        if self.samples_per_subject < 1:
            raise ValueError(f"samples_per_subject must be at least 1, got {self.samples_per_subject}")
        if not 0 < self.amplitude_min <= self.amplitude_max:
            raise ValueError(
                f"amplitude range {self.amplitude_min}..{self.amplitude_max} px is invalid; "
                "give 0 < amplitude_min <= amplitude_max"
            )


def bundled_faces() -> dict[str, tuple[Path, np.ndarray]]:
    """Return the shipped faces: identity -> (image path, 68 landmarks (68, 2) float64)."""
    folder = Path(str(resources.files("uamrn.data").joinpath("demo")))
    table = folder / "landmarks.json"
    if not table.is_file():
        raise FileNotFoundError(
            f"bundled demo faces not found at {folder}; reinstall uamrn, or rebuild them with "
            "scripts/build_demo_set.py"
        )

    landmarks = json.loads(table.read_text())
    faces = {}
    for identity in sorted(landmarks):
        points = np.asarray(landmarks[identity], dtype=np.float64)
        faces[identity] = (folder / "faces" / f"{identity}.jpg", points)
    return faces


def displacement_field(
    shape: tuple[int, int], landmarks: np.ndarray, action: str, peak: float, sigma: float
) -> np.ndarray:
    """Build the displacement field of one facial action.

    Each control point contributes ``peak * weight * direction * exp(-r^2 / (2 s^2))``,
    with ``r`` the distance from the landmark and ``s = sigma * box side``.

    Args:
        shape: Image (H, W).
        landmarks: 68 dlib landmarks (68, 2), image pixels.
        action: One of ``CLASS_NAMES``.
        peak: Displacement at a weight-1 control point, image pixels.
        sigma: Radial basis width as a fraction of the landmark box side.

    Returns:
        float32 array (H, W, 2) of (dx, dy) in image pixels.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown facial action {action!r}; choose one of {', '.join(CLASS_NAMES)}")

    box_side = float(np.ptp(landmarks, axis=0).max())
    width = sigma * box_side
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)

    field = np.zeros((*shape, 2), np.float32)
    for index, direction, weight in ACTIONS[action]:
        cx, cy = landmarks[index]
        bump = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * width**2))
        field[..., 0] += peak * weight * direction[0] * bump
        field[..., 1] += peak * weight * direction[1] * bump
    return field


def warp_face(image: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Move the image content along a displacement field (H, W, 2), bicubic.

    The field is small and smooth, so the inverse map is approximated by
    ``source = target - field``; the error is second order in the displacement.
    """
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = xs - field[..., 0]
    map_y = ys - field[..., 1]
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def _noisy(image: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    if noise <= 0:
        return image
    noisy = image.astype(np.float32) + rng.normal(0.0, noise, image.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _write_image(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"failed to write {path}; check that the folder is writable")


def generate(out_dir: Path, spec: DemoSpec = DemoSpec()) -> SampleSet:
    """Generate the demo set into ``out_dir`` and return it.

    Writes ``<subject>/<clip>/onset.png`` and ``apex.png`` (lossless, so the sub-pixel
    motion survives), ``labels.csv`` and ``spec.json``. ``labels.csv`` is written last
    through a temporary file, so a folder that has it is complete.

    Args:
        out_dir: Destination folder, created if needed.
        spec: What to generate.

    Returns:
        The generated ``SampleSet`` named ``demo``.
    """
    faces = bundled_faces()
    if spec.n_subjects > len(faces):
        raise ValueError(f"n_subjects {spec.n_subjects} exceeds the {len(faces)} bundled faces; lower it")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    rows = []
    samples = []

    identities = list(faces)[: spec.n_subjects]
    for identity in tqdm(identities, desc="demo set", unit="subject"):
        image_path, landmarks = faces[identity]
        face = cv2.imread(str(image_path))
        if face is None:
            raise FileNotFoundError(f"cannot read bundled face {image_path}; reinstall uamrn")
        face = cv2.cvtColor(face, cv2.COLOR_BGR2RGB)
        crop_scale = CROP_SIDE_PER_BOX * float(np.ptp(landmarks, axis=0).max()) / CROP_SIZE

        for index in range(spec.samples_per_subject):
            label = int(rng.choice(len(CLASS_NAMES), p=CLASS_SHARES))
            amplitude = float(rng.uniform(spec.amplitude_min, spec.amplitude_max))
            field = displacement_field(face.shape[:2], landmarks, CLASS_NAMES[label], amplitude * crop_scale, spec.sigma)

            onset = _noisy(face, spec.noise, rng)
            apex = _noisy(warp_face(face, field), spec.noise, rng)

            clip = f"{index:02d}"
            clip_dir = out_dir / identity / clip
            clip_dir.mkdir(parents=True, exist_ok=True)
            _write_image(clip_dir / "onset.png", onset)
            _write_image(clip_dir / "apex.png", apex)

            rows.append((identity, clip, label, CLASS_NAMES[label], f"{amplitude:.3f}"))
            samples.append(_sample(out_dir, identity, clip, label))

    (out_dir / "spec.json").write_text(json.dumps(spec.__dict__, indent=2) + "\n")
    _write_labels(out_dir / "labels.csv", rows)
    log.info("generated %d demo samples from %d subjects in %s", len(samples), len(identities), out_dir)
    return SampleSet("demo", CLASS_NAMES, samples)


def _sample(root: Path, subject: str, clip: str, label: int) -> Sample:
    clip_dir = root / subject / clip
    return Sample("demo", subject, clip, label, onset=clip_dir / "onset.png", apex=clip_dir / "apex.png")


def _write_labels(path: Path, rows: list[tuple]) -> None:
    def write(temp: Path) -> None:
        with open(temp, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(("subject", "clip", "label", "class_name", "amplitude_px"))
            writer.writerows(rows)

    atomic_write(path, write)


def default_root() -> Path:
    """Folder of the default generated set: ``$UAMRN_CACHE/demo`` or ``~/.cache/uamrn/demo``."""
    cache = os.environ.get("UAMRN_CACHE")
    base = Path(cache) if cache else Path.home() / ".cache" / "uamrn"
    return base / "demo"


def load(cfg: DataConfig) -> SampleSet:
    """Read a generated demo set from ``cfg.root``, generating the default set if absent.

    Args:
        cfg: Data configuration; ``cfg.root`` is the generated folder (default
            ``default_root()``). A folder without ``labels.csv`` gets the default set.

    Returns:
        The ``SampleSet`` named ``demo`` with classes ``CLASS_NAMES``.

    Raises:
        ValueError: When ``labels.csv`` names a class not in ``CLASS_NAMES``.
        FileNotFoundError: When a listed onset or apex image is missing and
            ``cfg.allow_missing`` is off.
    """
    root = Path(cfg.root) if cfg.root is not None else default_root()
    labels = root / "labels.csv"
    if not labels.is_file():
        log.info("no generated demo set in %s; generating the default one", root)
        generate(root)

    samples, missing = [], []
    with labels.open(newline="") as stream:
        for row in csv.DictReader(stream):
            if row["class_name"] not in CLASS_NAMES:
                raise ValueError(
                    f"{labels}: unknown class {row['class_name']!r}; expected one of {', '.join(CLASS_NAMES)}"
                )
            sample = _sample(root, row["subject"], row["clip"], CLASS_NAMES.index(row["class_name"]))
            if sample.onset.is_file() and sample.apex.is_file():
                samples.append(sample)
            elif cfg.allow_missing:
                missing.append(sample.key)
            else:
                raise FileNotFoundError(
                    f"demo sample {sample.key}: {sample.onset} or {sample.apex} is missing; "
                    f"delete {labels} to regenerate the set"
                )
    return SampleSet("demo", CLASS_NAMES, samples, missing)
