"""CAS(ME)^3 part A reader: the coding CSV with frame paths, plus the colour frames.

Supported layout: ``spNO.1/b/color/175.jpg`` under ``--root``, or under ``--root``'s
``part_A`` or ``data/part_A`` folder. Annotations: ``casme3_part_A.csv`` (columns Subject,
Filename, Onset, Apex, Offset, emotion, imagename_onset, imagename_apex; one row per
micro-expression, several per video). The clip id is ``<Filename>_<Onset>`` because one
video (``Filename``) can hold several micro-expressions.
"""

from __future__ import annotations

import logging
from pathlib import Path

from uamrn.config import DataConfig
from uamrn.data.classes import class_map
from uamrn.data.frames import build_sample_set
from uamrn.data.sample import SampleSet
from uamrn.data.sheets import ClipRecord, cell_text, find_annotations, read_sheet, require_root, table_records

__all__ = ["load", "read_records"]

logger = logging.getLogger(__name__)

ANNOTATION_PATTERNS = ("casme3_part_A*.csv", "cas(me)3_part_A*.csv", "CAS(ME)3_part_A*.xlsx", "casme3_part_A*.xlsx")
FRAME_FOLDERS = (".", "part_A", "data/part_A", "part_A/data/part_A")

_COLUMNS = {
    "subject": ("Subject",),
    "video": ("Filename",),
    "onset": ("Onset", "Onset Frame", "OnsetFrame"),
    "apex": ("Apex", "Apex Frame", "ApexFrame"),
    "emotion": ("emotion", "Estimated Emotion"),
}
_OPTIONAL = {
    "offset": ("Offset", "Offset Frame", "OffsetFrame"),
    "onset_path": ("imagename_onset",),
    "apex_path": ("imagename_apex",),
}


def load(cfg: DataConfig) -> SampleSet:
    """Read CAS(ME)^3 part A in the supported layout; see the module docstring."""
    root = require_root(cfg, "casme3")
    classes = class_map("casme3", cfg.classes)
    annotations = find_annotations(cfg, root, "casme3", ANNOTATION_PATTERNS)
    frames_root = frame_root(root)
    logger.info("casme3: annotations %s, frames under %s", annotations, frames_root)

    records = read_records(annotations)
    return build_sample_set("casme3", records, classes, lambda r: clip_folder(frames_root, r), cfg)


def frame_root(root: Path) -> Path:
    """Find the folder that contains the ``spNO.*`` subject folders."""
    for name in FRAME_FOLDERS:
        folder = root / name
        if folder.is_dir() and any(p.name.lower().startswith("spno") for p in folder.iterdir()):
            return folder.resolve()
    raise FileNotFoundError(
        f"no CAS(ME)^3 subject folders (spNO.1 ...) in {root} or its {', '.join(FRAME_FOLDERS[1:])} folders; "
        "point --root at the folder that contains them"
    )


def clip_folder(frames_root: Path, record: ClipRecord) -> Path:
    """Return the folder of a record's frames: the onset path's folder, else ``subject/video/color``."""
    if record.paths is not None:
        return frames_root / Path(record.paths[0]).parent
    return frames_root / record.subject / record.clip.rsplit("_", 1)[0] / "color"


def read_records(path: Path) -> list[ClipRecord]:
    """Parse the CAS(ME)^3 part A coding file into clip records.

    Raises:
        ValueError: No header row, or a row without a readable onset, subject or video
            name; the message names the file, row and column.
    """
    table = read_sheet(path, _COLUMNS, _OPTIONAL)
    table["clip"] = [f"{cell_text(v)}_{cell_text(o)}" for v, o in zip(table["video"], table["onset"])]
    records = table_records(table, path, cell_text)

    with_paths = []
    for record, onset_path, apex_path in zip(records, table["onset_path"], table["apex_path"]):
        paths = (cell_text(onset_path), cell_text(apex_path)) if cell_text(onset_path) else None
        with_paths.append(ClipRecord(**{**record.__dict__, "paths": paths}))
    return with_paths
