"""The magnified sequence of one clip: read onset and apex, crop the face, magnify.

``build_sequence`` is the step between a reader's ``Sample`` and the frozen front end. Two
caches under ``cache_dir`` make reruns cheap, both keyed by the SHA-256 of the onset and
apex file contents plus every setting that changes the result:

- ``crops/<key>.npz``: the 224 x 224 onset and apex crops, box and landmarks. Face
  detection runs once per clip, whatever the magnification settings.
- ``sequences/<key>.npy``: the whole sequence, for the learned magnifier only. The linear
  magnifier is rebuilt from the cached crops because that takes milliseconds, less than
  reading 32 cached frames back.

``preprocess`` runs ``build_sequence`` over a sample set and returns the samples that can be
used. It writes the clips that failed, with the reason, to ``preprocessing.json`` and
``preprocessing.csv`` in the run directory, so one clip without a detectable face does not
stop a run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from uamrn.config import RunConfig
from uamrn.data.sample import Sample, SampleSet
from uamrn.fileio import atomic_write
from uamrn.face.crop import CropResult, crop_pair
from uamrn.face.detect import FaceNotFoundError
from uamrn.magnify.linear import magnify_linear

__all__ = ["CROP_SIZE", "InputImageError", "build_sequence", "crop_sample", "preprocess"]

logger = logging.getLogger(__name__)

CROP_SIZE = 224

# Bump when cropping or magnification changes, so stale cache entries are not reused.
CACHE_VERSION = 1


class InputImageError(ValueError):
    """An onset or apex image is unreadable, or the two differ in size; names the clip."""


def build_sequence(sample: Sample, cfg: RunConfig, cache_dir: Path | None = None) -> np.ndarray:
    """Rebuild the magnified sequence of a clip from its onset and apex frames.

    Args:
        sample: The clip; ``onset`` and ``apex`` must be image paths.
        cfg: Run config: ``sequence`` sets the factors, the magnifier, the face margin and
            the eye-line rotation.
        cache_dir: Folder for the crop and sequence caches; None computes everything.

    Returns:
        (L, 224, 224, 3) uint8 RGB, one frame per amplification factor, ascending.

    Raises:
        FileNotFoundError: The onset or apex file is absent; names the clip.
        InputImageError: A frame cannot be decoded, or onset and apex differ in size.
        FaceNotFoundError: No face on the onset; names the clip.
        ValueError: The learned magnifier is chosen without a weights file.
    """
    onset_bytes, apex_bytes = _read_bytes(sample, "onset"), _read_bytes(sample, "apex")
    crop_key = _crop_key(onset_bytes, apex_bytes, cfg)
    factors = cfg.sequence.factors()

    if cfg.sequence.magnifier == "linear":
        crop = _cached_crop(sample, onset_bytes, apex_bytes, cfg, crop_key, cache_dir)
        return magnify_linear(crop.onset, crop.apex, factors)

    weights = _learned_weights(cfg)
    settings = {"crop": crop_key, "factors": factors, "weights": _digest(weights.read_bytes())}
    key = _digest(json.dumps(settings, sort_keys=True).encode())
    path = cache_dir / "sequences" / f"{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        return np.load(path)

    crop = _cached_crop(sample, onset_bytes, apex_bytes, cfg, crop_key, cache_dir)
    sequence = _learned_magnifier(str(weights)).magnify(crop.onset, crop.apex, factors)
    if path is not None:
        _atomic_save(path, lambda handle: np.save(handle, sequence))
    return sequence


def crop_sample(sample: Sample, cfg: RunConfig, cache_dir: Path | None = None) -> CropResult:
    """Read and crop the onset and apex of a clip, through the crop cache when given.

    Raises:
        The same errors as :func:`build_sequence` for reading and cropping.
    """
    onset_bytes, apex_bytes = _read_bytes(sample, "onset"), _read_bytes(sample, "apex")
    return _cached_crop(sample, onset_bytes, apex_bytes, cfg, _crop_key(onset_bytes, apex_bytes, cfg), cache_dir)


def preprocess(sample_set: SampleSet, cfg: RunConfig, run_dir: Path, cache_dir: Path | None = None) -> SampleSet:
    """Build every sequence once, report the clips that fail, and return the usable ones.

    Failures (no face, unreadable image, onset and apex of different sizes, file gone) are
    written to ``run_dir/preprocessing.json`` and ``run_dir/preprocessing.csv`` with the
    clip key and the reason, logged as warnings, and added to the returned set's
    ``skipped`` mapping (key to reason), apart from the files missing on disk. Other errors
    propagate.

    Args:
        sample_set: Samples with onset and apex frame paths.
        cfg: Run config, as for :func:`build_sequence`.
        run_dir: Run directory; created when absent.
        cache_dir: Cache folder; with it, later ``build_sequence`` calls reuse the work.

    Returns:
        A copy of ``sample_set`` without the failed samples.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    kept, failed = [], []
    for sample in tqdm(sample_set.samples, desc="face crop", unit="clip", disable=len(sample_set.samples) < 20):
        try:
            build_sequence(sample, cfg, cache_dir)
        except (FaceNotFoundError, InputImageError, FileNotFoundError) as err:
            logger.warning("preprocessing failed for %s: %s", sample.key, err)
            failed.append({"key": sample.key, "subject": sample.subject, "clip": sample.clip,
                           "error": type(err).__name__, "reason": str(err)})
            continue
        kept.append(sample)

    summary = {
        "dataset": sample_set.name,
        "n_samples": len(sample_set.samples),
        "n_preprocessed": len(kept),
        "n_failed": len(failed),
        "failed": failed,
        "missing_on_disk": list(sample_set.missing),
    }
    _atomic_save(run_dir / "preprocessing.json", lambda handle: handle.write(json.dumps(summary, indent=2).encode()))
    _atomic_save(run_dir / "preprocessing.csv", lambda handle: handle.write(_failures_csv(failed).encode()))
    if failed:
        logger.warning("%d of %d clips could not be preprocessed; see %s", len(failed), len(sample_set.samples),
                       run_dir / "preprocessing.csv")

    skipped = {**sample_set.skipped, **{row["key"]: row["reason"] for row in failed}}
    return SampleSet(sample_set.name, sample_set.class_names, kept, list(sample_set.missing), skipped)


def _failures_csv(failed: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["key", "subject", "clip", "error", "reason"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(failed)
    return text.getvalue()


def _read_bytes(sample: Sample, role: str) -> bytes:
    path = getattr(sample, role)
    if path is None:
        raise ValueError(f"{sample.key}: no {role} frame; the reader gave no {role} path for this clip")
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{sample.key}: {role} frame {path} not found") from err


def _decode(data: bytes, sample: Sample, role: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        path = getattr(sample, role)
        raise InputImageError(f"{sample.key}: cannot decode {role} frame {path}; the file is corrupt or not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _crop_key(onset_bytes: bytes, apex_bytes: bytes, cfg: RunConfig) -> str:
    settings = {"version": CACHE_VERSION, "size": CROP_SIZE, "margin": cfg.sequence.face_margin,
                "align_eyes": cfg.sequence.align_eyes}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(_digest(onset_bytes).encode())
    digest.update(_digest(apex_bytes).encode())
    return digest.hexdigest()[:40]


def _cached_crop(
    sample: Sample, onset_bytes: bytes, apex_bytes: bytes, cfg: RunConfig, key: str, cache_dir: Path | None
) -> CropResult:
    path = Path(cache_dir) / "crops" / f"{key}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        with np.load(path) as entry:
            return CropResult(entry["onset"], entry["apex"], tuple(entry["box"].tolist()), entry["landmarks"],
                              float(entry["angle"]))

    onset, apex = _decode(onset_bytes, sample, "onset"), _decode(apex_bytes, sample, "apex")
    if onset.shape != apex.shape:
        raise InputImageError(
            f"{sample.key}: onset {sample.onset} is {onset.shape[1]}x{onset.shape[0]} but apex {sample.apex} is "
            f"{apex.shape[1]}x{apex.shape[0]} pixels; both frames must come from the same video"
        )
    crop = crop_pair(onset, apex, size=CROP_SIZE, rotate=cfg.sequence.align_eyes, margin=cfg.sequence.face_margin,
                     name=sample.key)
    if path is not None:
        _atomic_save(path, lambda handle: np.savez(handle, onset=crop.onset, apex=crop.apex, box=np.array(crop.box),
                                                   landmarks=crop.landmarks, angle=crop.angle))
    return crop


def _learned_weights(cfg: RunConfig) -> Path:
    weights = cfg.sequence.learned_weights
    if weights is None:
        raise ValueError("the learned magnifier needs a weights file; set sequence.learned_weights in the config")
    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise FileNotFoundError(f"learned magnifier weights {weights} not found; check sequence.learned_weights")
    return weights


@lru_cache(maxsize=2)
def _learned_magnifier(weights: str):
    from uamrn.magnify.learned import LearnedMagnifier

    return LearnedMagnifier.from_file(weights)


def _atomic_save(path: Path, write) -> None:
    """Call ``write(binary_handle)`` on a temporary file, then move it onto ``path`` atomically."""

    def write_path(temp: Path) -> None:
        with open(temp, "wb") as handle:
            write(handle)

    atomic_write(path, write_path)
