"""Parsing helpers shared by the raw-database readers: coding sheets and frame numbers.

Coding sheets change between releases. Columns get renamed (``OnsetFrame`` / ``Onset Frame``),
note lines precede the header (SAMM), and number columns contain text (a CASME II
``ApexFrame`` cell is ``/``). Subject ids lose their zero padding when a spreadsheet program
reads them as numbers. These helpers absorb those differences and name the file, row and
column of any cell they cannot use.
"""

from __future__ import annotations

import logging
import math
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from uamrn.config import DataConfig

__all__ = [
    "ClipRecord",
    "find_annotations",
    "frame_number",
    "normalise_name",
    "read_class_list",
    "read_coding_records",
    "read_sheet",
    "require_root",
    "table_records",
]

logger = logging.getLogger(__name__)

# Rows scanned for the header line; SAMM puts 13 lines of notes above it.
HEADER_SEARCH_ROWS = 40


@dataclass(frozen=True)
class ClipRecord:
    """One clip as an annotation file lists it, before class mapping and file lookup.

    Attributes:
        subject: Subject id in the database's folder spelling (``sub01``, ``006``, ``s01``).
        clip: Clip id, unique within the subject.
        emotion: Raw emotion label, lower case (``happiness``, ``anger``, ``positive``).
        onset: Onset frame number.
        apex: Apex frame number, or None when not annotated or unreadable.
        offset: Offset frame number, or None when not given.
        source: Where the record came from, for messages (``file.xlsx row 31``).
        paths: Explicit onset and apex image paths relative to the root, when the file gives them.
    """

    subject: str
    clip: str
    emotion: str
    onset: int
    apex: int | None
    offset: int | None
    source: str
    paths: tuple[str, str] | None = None


def normalise_name(text: object) -> str:
    """Lower-case a column name and drop everything but letters and digits."""
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def require_root(cfg: DataConfig, database: str) -> Path:
    """Return ``cfg.root`` as a folder, or raise naming the option to set."""
    if cfg.root is None:
        raise ValueError(f"dataset {database!r} needs the database folder; give it with --root PATH")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{database} root {root} is not a folder; give the database folder with --root PATH")
    return root


def find_annotations(cfg: DataConfig, root: Path, database: str, patterns: Iterable[str]) -> Path:
    """Locate the annotation file: ``cfg.annotations``, else a file matching ``patterns``.

    The search covers ``root`` and its direct sub-folders.

    Raises:
        FileNotFoundError: The given file is absent, or no file matches.
        ValueError: Several files match, so the choice would be a guess.
    """
    if cfg.annotations is not None:
        path = Path(cfg.annotations).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{database} annotation file {path} not found; check --annotations")
        return path

    patterns = list(patterns)
    found: list[Path] = []
    for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        for pattern in patterns:
            found.extend(sorted(folder.glob(pattern)))
    found = list(dict.fromkeys(p for p in found if p.is_file() and not p.name.startswith("~$")))

    if not found:
        raise FileNotFoundError(
            f"no {database} annotation file matching {', '.join(patterns)} in {root} or its sub-folders; "
            "give it with --annotations FILE"
        )
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise ValueError(f"several {database} annotation files in {root} ({names}); choose one with --annotations FILE")
    return found[0]


def _read_raw(path: Path) -> pd.DataFrame:
    """Read a spreadsheet or CSV with no header and every cell as an object."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        try:
            return pd.read_excel(path, header=None, dtype=object)
        except (OSError, ValueError, zipfile.BadZipFile, KeyError) as err:
            # pandas' own advice for an unknown format ("specify an engine") does not help a
            # user whose file is simply not a workbook, so it is replaced.
            raise ValueError(
                f"annotation file {path} is not a valid {suffix} spreadsheet ({type(err).__name__}); "
                "open it in a spreadsheet program and save it as .xlsx, or export the sheet as .csv"
            ) from err
    try:
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read annotation file {path}: {err}") from err
    raise ValueError(f"annotation file {path} has unsupported type {suffix!r}; use .xlsx or .csv")


def read_sheet(
    path: Path,
    required: Mapping[str, Iterable[str]],
    optional: Mapping[str, Iterable[str]] | None = None,
) -> pd.DataFrame:
    """Read a coding sheet whose header row may sit below note lines.

    Args:
        path: ``.xlsx`` or ``.csv`` file. Only the first worksheet is read.
        required: Output column name -> accepted header spellings; compared after
            :func:`normalise_name`, so ``Onset Frame`` matches ``onsetframe``.
        optional: The same for columns that may be absent (filled with None).

    Returns:
        One row per non-empty data row, columns named by the keys of ``required`` and
        ``optional``, plus ``row``: the 1-based line number a spreadsheet program shows.

    Raises:
        ValueError: The file cannot be read, or no row within the first
            ``HEADER_SEARCH_ROWS`` contains every required column; the message lists them.
    """
    raw = _read_raw(path)
    optional = optional or {}
    accepted = {key: {normalise_name(a) for a in aliases} for key, aliases in {**required, **optional}.items()}

    for header_row in range(min(HEADER_SEARCH_ROWS, len(raw))):
        cells = [normalise_name(c) if not _is_blank(c) else "" for c in raw.iloc[header_row]]
        positions = {}
        for key, aliases in accepted.items():
            matches = [i for i, cell in enumerate(cells) if cell in aliases]
            if matches:
                positions[key] = matches[0]
        if all(key in positions for key in required):
            break
    else:
        names = ", ".join(f"{key} ({' / '.join(sorted(required[key]))})" for key in required)
        raise ValueError(
            f"{path}: no header row with the columns {names} in the first {HEADER_SEARCH_ROWS} rows; "
            "check that this is the right annotation file or rename the columns"
        )

    body = raw.iloc[header_row + 1 :]
    table = pd.DataFrame({key: body.iloc[:, pos] for key, pos in positions.items()})
    for key in optional:
        if key not in table:
            table[key] = None
    table["row"] = [i + 1 for i in range(header_row + 1, len(raw))]
    keep = ~table.drop(columns="row").map(_is_blank).all(axis=1)
    table = table[keep].reset_index(drop=True)
    table.attrs["headers"] = {key: cell_text(raw.iloc[header_row, pos]) for key, pos in positions.items()}
    return table


def read_class_list(path: Path, names: list[str]) -> pd.DataFrame:
    """Read a header-less class list such as ``subject,filename,onset,apex,offset,label``.

    Raises:
        ValueError: The file cannot be read or has fewer columns than ``names``.
    """
    raw = _read_raw(path)
    if raw.shape[1] < len(names):
        raise ValueError(
            f"{path}: expected {len(names)} columns ({','.join(names)}) without a header, found {raw.shape[1]}; "
            "check that this is a class list file"
        )
    table = raw.iloc[:, : len(names)].copy()
    table.columns = names
    table["row"] = range(1, len(table) + 1)
    keep = ~table.drop(columns="row").map(_is_blank).all(axis=1)
    return table[keep].reset_index(drop=True)


def frame_number(value: object) -> int | None:
    """Parse a frame-number cell: an int, an integral float or a digit string; else None."""
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.0+)?", text):
        return int(float(text))
    return None


def cell_text(value: object) -> str:
    """Convert a cell to stripped text, writing integral floats without ``.0``."""
    if _is_blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _is_blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def table_records(table: pd.DataFrame, path: Path, subject_id: Callable[[object], str]) -> list[ClipRecord]:
    """Turn a table with columns subject, clip, onset, apex, offset, emotion, row into records.

    An unreadable apex cell is logged and left None, so the reader falls back to the middle
    frame. An unreadable onset cell is an error because no rule can replace it.

    Raises:
        ValueError: Empty subject or clip cell, or an onset that is not a frame number;
            the message names the file, row and column.
    """
    headers = {"onset": "onset", "apex": "apex", **table.attrs.get("headers", {})}
    records = []
    for row in table.itertuples(index=False):
        where = f"{path.name} row {row.row}"
        subject, clip = cell_text(row.subject), cell_text(row.clip)
        if not subject or not clip:
            raise ValueError(f"{where}: empty subject or clip-name cell; fill it or delete the row")
        subject = subject_id(subject)

        onset = frame_number(row.onset)
        if onset is None:
            raise ValueError(
                f"{where} ({subject}/{clip}), column {headers['onset']}: {row.onset!r} is not a frame number; "
                "correct the cell"
            )
        apex = frame_number(row.apex)
        if apex is None:
            logger.warning(
                "%s (%s/%s), column %s: %r is not a frame number; the middle frame is used as apex",
                where, subject, clip, headers["apex"], row.apex,
            )

        records.append(
            ClipRecord(
                subject=subject,
                clip=clip,
                emotion=cell_text(row.emotion).lower(),
                onset=onset,
                apex=apex,
                offset=frame_number(row.offset),
                source=where,
            )
        )
    return records


def read_coding_records(
    path: Path,
    columns: Mapping[str, Iterable[str]],
    optional: Mapping[str, Iterable[str]],
    list_codes: Mapping[str, str],
    subject_id: Callable[[object], str],
) -> list[ClipRecord]:
    """Parse a coding sheet, or a header-less class list (``.csv``), into clip records.

    Args:
        path: The coding sheet (read with :func:`read_sheet`) or a class list with the
            columns ``subject,filename,onset,apex,offset,label``.
        columns: Required sheet columns, as for :func:`read_sheet`.
        optional: Optional sheet columns, as for :func:`read_sheet`.
        list_codes: Class-list label code -> emotion name; an unknown code ``7`` becomes the
            emotion ``code 7``.
        subject_id: Converts a subject cell to the database's folder spelling.

    Raises:
        ValueError: No header row, or a row without a readable onset, subject or clip; the
            message names the file, row and column.
    """
    if path.suffix.lower() == ".csv":
        table = read_class_list(path, ["subject", "clip", "onset", "apex", "offset", "emotion"])
        table["emotion"] = [list_codes.get(cell_text(v), f"code {cell_text(v)}") for v in table["emotion"]]
    else:
        table = read_sheet(path, columns, optional)
    return table_records(table, path, subject_id)
