"""SAMM reader: the FACS coding spreadsheet (or a 5-class list) plus the frame folders.

Supported layout: ``SAMM/006/006_1_2/006_05562.jpg``; ``--root`` may be the ``SAMM``
folder or its parent. The frame number is the digits after the last underscore.

Annotations: ``SAMM_Micro_FACS_Codes*.xlsx``, whose header row (Subject, Filename, Onset
Frame, Apex Frame, Offset Frame, Estimated Emotion) follows 13 lines of notes in v2, or a
header-less class list ``subject,filename,onset,apex,offset,label`` with codes 1 anger,
2 contempt, 3 happiness, 4 surprise, 5 other.
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

__all__ = ["load", "read_records"]

logger = logging.getLogger(__name__)

ANNOTATION_PATTERNS = ("SAMM_Micro_FACS_Codes*.xlsx", "samm*5class*.csv")
LIST_CODES = {"1": "anger", "2": "contempt", "3": "happiness", "4": "surprise", "5": "other"}

_COLUMNS = {
    "subject": ("Subject",),
    "clip": ("Filename", "File name"),
    "onset": ("Onset Frame", "OnsetFrame", "Onset"),
    "apex": ("Apex Frame", "ApexFrame", "Apex"),
    "emotion": ("Estimated Emotion", "Emotion"),
}
_OPTIONAL = {"offset": ("Offset Frame", "OffsetFrame", "Offset")}


def load(cfg: DataConfig) -> SampleSet:
    """Read SAMM in the supported layout; see the module docstring."""
    root = require_root(cfg, "samm")
    classes = class_map("samm", cfg.classes)
    annotations = find_annotations(cfg, root, "samm", ANNOTATION_PATTERNS)
    frames_root = root / "SAMM" if (root / "SAMM").is_dir() else root
    logger.info("samm: annotations %s, frames under %s", annotations, frames_root)

    records = read_records(annotations)
    return build_sample_set("samm", records, classes, lambda r: frames_root / r.subject / r.clip, cfg)


def subject_id(value: object) -> str:
    """Folder spelling of a subject: zero-padded to 3 digits (``6`` and 6.0 give ``006``)."""
    text = cell_text(value)
    return f"{int(text):03d}" if text.isdigit() else text


def read_records(path: Path) -> list[ClipRecord]:
    """Parse a SAMM coding sheet or 5-class list into clip records.

    Raises:
        ValueError: No header row, or a row without a readable onset, subject or clip; the
            message names the file, row and column.
    """
    return read_coding_records(path, _COLUMNS, _OPTIONAL, LIST_CODES, subject_id)
