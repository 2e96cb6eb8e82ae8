"""SMIC-HS reader: labels from the folder tree, apex from a sheet or a rule.

Supported layout: ``HS/s1/micro/positive/s1_po_01/image0123456.bmp`` (``negative`` and
``surprise`` alike); ``--root`` may be the ``HS`` folder or a parent of it. Frames are
numbered by their absolute camera index. The clip folders hold the frames from onset to
offset, so the first frame is the onset.

The original release does not annotate the apex. By default the apex is the middle frame,
as the UAMRN paper does; ``apex: spotted`` takes the frame that differs most from the
onset instead. An apex sheet given with ``--annotations`` (``smic_apex.xlsx`` with columns
clip, onset_frame, apex_frame, offset_frame, or a header-less class list
``subject,filename,onset,apex,offset,label``) supplies onset, apex and offset where it
lists the clip. Subject and clip ids are written zero-padded (``s01``, ``s01_po_01``), as
in the MEGC2019 composite ground truth.

The SMIC-E layout ``SMIC_HS_E/s20/s20_ne_01/image17581039.jpg`` (also under
``HS_long/`` or ``smic/HS_long/``) is read too. Its clip folders extend beyond the
micro-expression, so it needs the onset/offset sheet, and the label comes from the emotion
code of the clip name (``po``, ``ne``, ``sur``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from uamrn.config import DataConfig
from uamrn.data.classes import class_map
from uamrn.data.frames import build_sample_set, index_frames
from uamrn.data.sample import SampleSet
from uamrn.data.sheets import ClipRecord, cell_text, frame_number, read_class_list, read_sheet, require_root

__all__ = ["load", "clip_id", "read_apex_sheet", "scan_clips"]

logger = logging.getLogger(__name__)

EMOTIONS = ("positive", "negative", "surprise")
EMOTION_CODES = {"po": "positive", "ne": "negative", "sur": "surprise"}
LONG_LAYOUTS = ("SMIC_HS_E", "HS_long/SMIC_HS_E", "smic/HS_long/SMIC_HS_E")
_CLIP = re.compile(r"^s(\d+)_([a-z]+)_(\d+)$", re.IGNORECASE)


def load(cfg: DataConfig) -> SampleSet:
    """Read SMIC-HS in the supported layout; see the module docstring."""
    root = require_root(cfg, "smic")
    classes = class_map("smic", cfg.classes)
    clips, long_clips = scan_clips(root)

    sheet: dict[str, tuple[int, int | None, int | None, str]] = {}
    if long_clips and cfg.annotations is None:
        raise ValueError(
            f"SMIC-E clip folders in {root} run beyond the micro-expression, so onset and offset must come "
            "from a sheet; give smic_apex.xlsx (or a class list) with --annotations"
        )
    if cfg.annotations is not None:
        path = Path(cfg.annotations).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"smic apex sheet {path} not found; check --annotations")
        sheet = read_apex_sheet(path)
        unlisted = [clip for clip in clips if clip not in sheet]
        if long_clips and unlisted:
            raise ValueError(
                f"SMIC-E clips {', '.join(unlisted)} are not in {path.name}, so their onset is unknown; "
                "add them to the sheet or remove their folders"
            )
        if unlisted:
            logger.warning("smic: %d clips not in %s use the apex rule %r: %s", len(unlisted), path.name, cfg.apex, ", ".join(unlisted))

    records = []
    folders: dict[str, Path] = {}
    for clip, (subject, emotion, folder) in clips.items():
        folders[clip] = folder
        if clip in sheet:
            onset, apex, offset, source = sheet[clip]
        else:
            numbers = sorted(index_frames(folder))
            if not numbers:
                raise FileNotFoundError(f"smic/{subject}/{clip}: no numbered images in {folder}")
            onset, apex, offset, source = numbers[0], None, numbers[-1], f"folder {folder.name}"
        records.append(ClipRecord(subject, clip, emotion, onset, apex, offset, source))
    return build_sample_set("smic", records, classes, lambda r: folders[r.clip], cfg)


def clip_id(name: str) -> str:
    """Zero-padded clip id: ``s1_po_1`` and ``s01_po_01`` both give ``s01_po_01``."""
    match = _CLIP.match(name.strip())
    if not match:
        return name.strip()
    subject, emotion, number = match.groups()
    return f"s{int(subject):02d}_{emotion.lower()}_{int(number):02d}"


def scan_clips(root: Path) -> tuple[dict[str, tuple[str, str, Path]], bool]:
    """Find ``s*/micro/<emotion>/<clip>`` folders under ``root`` (or ``root/HS``), else SMIC-E ones.

    Returns:
        Clip id -> (subject id, emotion, clip folder), sorted by subject and clip; and
        whether the clips are SMIC-E long clips.

    Raises:
        FileNotFoundError: No clip folder is found; the message shows the layouts expected.
        ValueError: An emotion folder or clip name carries an unknown emotion.
    """
    base = root / "HS" if (root / "HS").is_dir() else root
    clips = {}
    for folder in sorted(base.glob("s*/micro/*/*")):
        if not folder.is_dir():
            continue
        emotion = folder.parent.name.lower()
        if emotion not in EMOTIONS:
            raise ValueError(
                f"smic clip {folder}: unknown emotion folder {folder.parent.name!r}; expected one of {', '.join(EMOTIONS)}"
            )
        subject = folder.parents[2].name.lower()
        subject = f"s{int(subject[1:]):02d}" if subject[1:].isdigit() else subject
        clips[clip_id(folder.name)] = (subject, emotion, folder)
    long_clips = not clips
    if long_clips:
        clips = _scan_long_clips(root)
    if not clips:
        raise FileNotFoundError(
            f"no SMIC-HS clips in {base}: expected s1/micro/positive/s1_po_01/image*.bmp, or the SMIC-E layout "
            "SMIC_HS_E/s01/s01_po_01/image*.jpg; point --root at the HS or SMIC_HS_E folder"
        )
    return dict(sorted(clips.items(), key=lambda item: (item[1][0], item[0]))), long_clips


def _scan_long_clips(root: Path) -> dict[str, tuple[str, str, Path]]:
    """Find SMIC-E ``s*/s*_<code>_*`` clip folders under ``root`` or one of ``LONG_LAYOUTS``."""
    clips = {}
    for base in [root, *(root / name for name in LONG_LAYOUTS)]:
        for folder in sorted(base.glob("s*/s*_*_*")):
            match = _CLIP.match(folder.name)
            if not folder.is_dir() or not match:
                continue
            code = match.group(2).lower()
            if code not in EMOTION_CODES:
                raise ValueError(
                    f"smic clip {folder}: unknown emotion code {code!r} in the name; expected one of "
                    f"{', '.join(EMOTION_CODES)}"
                )
            clip = clip_id(folder.name)
            clips[clip] = (clip.split("_")[0], EMOTION_CODES[code], folder)
        if clips:
            break
    return clips


def read_apex_sheet(path: Path) -> dict[str, tuple[int, int | None, int | None, str]]:
    """Read onset, apex and offset per clip from ``smic_apex.xlsx`` or a class list.

    Returns:
        Clip id (zero-padded) -> (onset, apex or None, offset or None, source row).

    Raises:
        ValueError: The file has neither layout, or a listed clip has no readable onset.
    """
    if path.suffix.lower() == ".csv":
        table = read_class_list(path, ["subject", "clip", "onset", "apex", "offset", "label"])
    else:
        table = read_sheet(
            path,
            {"clip": ("clip", "filename"), "onset": ("onset_frame", "onset"), "apex": ("apex_frame", "apex")},
            {"offset": ("offset_frame", "offset")},
        )

    entries = {}
    for row in table.itertuples(index=False):
        where = f"{path.name} row {row.row}"
        clip = clip_id(cell_text(row.clip))
        onset = frame_number(row.onset)
        if onset is None:
            raise ValueError(f"{where} ({clip}), onset column: {row.onset!r} is not a frame number; correct the cell")
        apex = frame_number(row.apex)
        if apex is None:
            logger.warning("%s (%s), apex column: %r is not a frame number; the apex rule applies", where, clip, row.apex)
        entries[clip] = (onset, apex, frame_number(row.offset), where)
    return entries
