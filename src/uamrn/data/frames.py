"""Frame folders of raw databases: numbering, apex choice, and turning records into samples.

Every supported layout names a frame by a trailing number (``img46.jpg``, ``reg_img46.jpg``,
``006_05562.jpg``, ``image0559740.bmp``, ``175.jpg``), so one index by that number serves all
readers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from uamrn.config import DataConfig
from uamrn.data.classes import ClassMap
from uamrn.data.sample import Sample, SampleSet
from uamrn.data.sheets import ClipRecord

__all__ = ["IMAGE_SUFFIXES", "build_sample_set", "index_frames", "spot_apex"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
_TRAILING_NUMBER = re.compile(r"(\d+)$")

# Frames are shrunk to this width before apex spotting; the largest change survives it.
_SPOT_WIDTH = 96


def index_frames(folder: Path) -> dict[int, Path]:
    """Map frame number -> image path for the images in ``folder`` (not recursive)."""
    frames: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        match = _TRAILING_NUMBER.search(path.stem)
        if match:
            frames.setdefault(int(match.group(1)), path)
    return frames


def spot_apex(frames: list[Path]) -> Path:
    """Return the frame that differs most from the first (onset) frame.

    The difference is the mean absolute grey-level difference on frames shrunk to
    ``_SPOT_WIDTH`` pixels wide.

    Raises:
        ValueError: A frame cannot be decoded; the message names it.
    """
    if len(frames) < 2:
        return frames[-1]
    onset = _small_grey(frames[0])
    scores = [float(np.abs(_small_grey(f) - onset).mean()) for f in frames[1:]]
    return frames[1 + int(np.argmax(scores))]


def _small_grey(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"cannot decode image {path}; the file is corrupt or not an image")
    height = max(1, round(image.shape[0] * _SPOT_WIDTH / image.shape[1]))
    return cv2.resize(image, (_SPOT_WIDTH, height), interpolation=cv2.INTER_AREA).astype(np.float32)


def build_sample_set(
    database: str,
    records: Iterable[ClipRecord],
    classes: ClassMap,
    clip_folder: Callable[[ClipRecord], Path],
    cfg: DataConfig,
) -> SampleSet:
    """Turn annotation records into samples with their frame paths.

    Args:
        database: Database key written into every sample.
        records: Clips as the annotation file lists them.
        classes: Map from raw emotion to class; clips it leaves out are skipped (logged).
        clip_folder: Where a record's frames live (the folder may be absent).
        cfg: Data configuration: ``apex`` rule and ``allow_missing``.

    Returns:
        The samples in record order; with ``cfg.allow_missing`` the clips whose frames are
        absent are listed in ``missing`` instead of raising.

    Raises:
        ValueError: Unknown emotion label, naming the clip and the annotation row.
        FileNotFoundError: A clip folder or a named frame is absent and missing files are
            not allowed; the message names the clip and the path.
    """
    samples: list[Sample] = []
    missing: list[str] = []
    left_out: dict[str, int] = {}

    records = list(records)
    for record in tqdm(records, desc=f"reading {database}", unit="clip", disable=len(records) < 50):
        key = f"{database}/{record.subject}/{record.clip}"
        if record.emotion not in classes.emotions:
            known = ", ".join(sorted(classes.emotions))
            raise ValueError(
                f"{record.source} ({key}): unknown emotion label {record.emotion!r}; "
                f"{database} uses {known}; correct the cell"
            )
        label = classes.label(record.emotion)
        if label is None:
            left_out[record.emotion] = left_out.get(record.emotion, 0) + 1
            continue

        try:
            onset, apex, frames = _locate(record, clip_folder(record), cfg, key)
        except FileNotFoundError as err:
            if not cfg.allow_missing:
                raise FileNotFoundError(f"{err}; pass --allow-missing to skip such clips and list them") from err
            logger.warning("%s", err)
            missing.append(key)
            continue
        samples.append(Sample(database, record.subject, record.clip, label, onset=onset, apex=apex, frames=frames))

    if left_out:
        logger.info("%s: class set %s leaves out %s", database, classes.name, left_out)
    if missing:
        logger.warning("%s: %d clips listed but not found on disk: %s", database, len(missing), ", ".join(missing))
    return SampleSet(database, classes.class_names, samples, missing)


def _locate(record: ClipRecord, folder: Path, cfg: DataConfig, key: str) -> tuple[Path, Path, tuple[Path, ...]]:
    """Find onset, apex and the onset..offset frames of one clip."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{key}: clip folder {folder} not found ({record.source})")
    index = index_frames(folder)
    if not index:
        raise FileNotFoundError(f"{key}: no numbered images in {folder} ({record.source})")

    def frame(number: int, role: str) -> Path:
        if number not in index:
            span = f"{min(index)}..{max(index)}"
            raise FileNotFoundError(
                f"{key}: {role} frame {number} named in {record.source} not found in {folder} (frames there: {span})"
            )
        return index[number]

    onset = frame(record.onset, "onset")
    last = record.offset if record.offset is not None else max(index)
    if last < record.onset:
        logger.warning("%s: offset %d is before onset %d (%s); using the frames up to the last one",
                       key, last, record.onset, record.source)
        last = max(index)
    frames = tuple(index[n] for n in sorted(index) if record.onset <= n <= last)

    if cfg.apex == "spotted":
        apex = spot_apex(list(frames))
    elif cfg.apex == "auto" and record.apex is not None and _apex_usable(record, index, last, key):
        apex = frame(record.apex, "apex")
    else:
        apex = frames[len(frames) // 2]
        if cfg.apex == "auto":
            logger.debug("%s: apex not annotated (%s); using the middle frame %s", key, record.source, apex.name)
    return onset, apex, frames


def _apex_usable(record: ClipRecord, index: dict[int, Path], last: int, key: str) -> bool:
    """Check an annotated apex outside onset..offset; such an apex is kept only if its frame exists.

    The real sheets contain such typos (SAMM 032_3_1 gives apex 1930 for onset 4896), and a
    clip folder often holds only the onset..offset frames.
    """
    if record.onset <= record.apex <= last:
        return True
    if record.apex in index:
        logger.warning("%s: apex %d lies outside onset..offset %d..%d (%s); keeping the annotated apex",
                       key, record.apex, record.onset, last, record.source)
        return True
    logger.warning("%s: apex %d lies outside onset..offset %d..%d (%s) and has no frame; using the middle frame",
                   key, record.apex, record.onset, last, record.source)
    return False
