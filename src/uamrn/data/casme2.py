"""CASME II reader: the coding spreadsheet (or a 5-class list) plus the frame folders.

Supported layouts, under ``--root``, in order of preference when several are present:
``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg``, ``CASME2-RAW/sub01/EP02_01f/img46.jpg``,
``Cropped/sub01/EP02_01f/reg_img46.jpg`` (also ``CASME2_Cropped``), or ``--root`` pointing
straight at the folder that holds ``sub01`` ... ``sub26``.

Annotations: the coding sheet ``CASME2-coding-*.xlsx`` (columns Subject, Filename,
OnsetFrame, ApexFrame, OffsetFrame, Estimated Emotion) or a header-less class list
``subject,filename,onset,apex,offset,label`` with codes 1 happiness, 2 surprise, 3 disgust,
4 repression, 5 others.
"""

from __future__ import annotations

import logging
from pathlib import Path

from uamrn.config import DataConfig
from uamrn.data.classes import class_map
from uamrn.data.frames import build_sample_set
from uamrn.data.sample import SampleSet
from uamrn.data.sheets import (
    ClipRecord,
    cell_text,
    find_annotations,
    read_coding_records,
    require_root,
)

__all__ = ["load", "read_records", "LAYOUTS"]

logger = logging.getLogger(__name__)

LAYOUTS = ("CASME2_RAW_selected", "CASME2-RAW", "CASME2_RAW", "Cropped", "CASME2_Cropped", "CASME2-Cropped")
ANNOTATION_PATTERNS = ("CASME2-coding*.xlsx", "CASME2_coding*.xlsx", "casme2*5class*.csv")
LIST_CODES = {"1": "happiness", "2": "surprise", "3": "disgust", "4": "repression", "5": "others"}

_COLUMNS = {
    "subject": ("Subject", "sub"),
    "clip": ("Filename", "File name", "Clip", "Episode"),
    "onset": ("OnsetFrame", "Onset Frame", "Onset"),
    "apex": ("ApexFrame", "Apex Frame", "Apex", "ApexFrame1"),
    "emotion": ("Estimated Emotion", "Emotion", "EstimatedEmotion"),
}
_OPTIONAL = {"offset": ("OffsetFrame", "Offset Frame", "Offset")}


def load(cfg: DataConfig) -> SampleSet:
    """Read CASME II in one of the supported layouts; see the module docstring."""
    root = require_root(cfg, "casme2")
    classes = class_map("casme2", cfg.classes)
    annotations = find_annotations(cfg, root, "casme2", ANNOTATION_PATTERNS)
    frames_root = frame_root(root)
    logger.info("casme2: annotations %s, frames under %s", annotations, frames_root)

    records = read_records(annotations)
    return build_sample_set("casme2", records, classes, lambda r: frames_root / r.subject / r.clip, cfg)


def frame_root(root: Path) -> Path:
    """Find the folder of the ``subNN`` folders: ``root`` itself or its first layout sub-folder."""
    if any(p.is_dir() and p.name.startswith("sub") for p in root.iterdir()):
        return root
    for name in LAYOUTS:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(
        f"no CASME II frame folders in {root}: expected sub01 ... or one of {', '.join(LAYOUTS)}; "
        "point --root at the folder that contains them"
    )


def subject_id(value: object) -> str:
    """Folder spelling of a subject: ``01``, ``1``, 1.0 and ``sub01`` all give ``sub01``."""
    text = cell_text(value).lower()
    text = text.removeprefix("sub")
    return f"sub{int(text):02d}" if text.isdigit() else f"sub{text}"


def read_records(path: Path) -> list[ClipRecord]:
    """Parse a CASME II coding sheet or 5-class list into clip records.

    Raises:
        ValueError: A row without a readable onset frame, subject or clip; the message
            names the file, row and column.
    """
    return read_coding_records(path, _COLUMNS, _OPTIONAL, LIST_CODES, subject_id)
