"""Reader for the MEGC2019 composite database as distributed (3 classes, CASME II + SAMM + SMIC).

Layout under the root folder:

- ``combined_3class_gt.csv``: the official ground truth, no header, columns
  ``database,subject,filename,label`` with labels 0 negative, 1 positive, 2 surprise.
- ``flow/<subject>_<filename> .png``: onset-to-apex optical flow, 28x28 RGB (u, v, optical
  strain); the distributed names have a space before ``.png``.
- ``apex/<subject>_<filename>.jpg``: the cropped apex face, 224x224. SMIC apex names write
  the subject number without zero padding inside the filename (``s01_s1_ne_01.jpg`` for
  filename ``s01_ne_01``); both spellings are tried.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from uamrn.config import DataConfig
from uamrn.data.sample import Sample, SampleSet

__all__ = ["CLASS_NAMES", "DATABASES", "GT_COLUMNS", "GT_FILE", "load", "read_ground_truth"]

logger = logging.getLogger(__name__)

GT_FILE = "combined_3class_gt.csv"
GT_COLUMNS = ("database", "subject", "filename", "label")
CLASS_NAMES = ("negative", "positive", "surprise")
DATABASES = ("casme2", "samm", "smic")
_MAX_LISTED = 10


def read_ground_truth(csv_path: Path) -> pd.DataFrame:
    """Read and validate the header-less ground-truth CSV.

    Args:
        csv_path: Path of ``combined_3class_gt.csv``.

    Returns:
        A frame with columns ``database, subject, filename, label`` (label as int), in file order.

    Raises:
        FileNotFoundError: The CSV does not exist.
        ValueError: Wrong column count, a header line, an unknown database or an unknown label.
    """
    if not csv_path.is_file():
        raise FileNotFoundError(f"ground-truth CSV not found: {csv_path}; --root must be the MEGC2019 folder holding {GT_FILE}")
    try:
        table = pd.read_csv(csv_path, header=None, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(
            f"cannot parse {csv_path} as CSV ({err}); expected no header and the columns {','.join(GT_COLUMNS)}"
        ) from err

    if table.shape[1] != len(GT_COLUMNS):
        raise ValueError(
            f"{csv_path} has {table.shape[1]} columns; expected {len(GT_COLUMNS)} without a header: "
            f"{','.join(GT_COLUMNS)}"
        )
    table.columns = list(GT_COLUMNS)
    table = table.apply(lambda column: column.str.strip())

    labels = []
    for line, value in enumerate(table["label"], start=1):
        if value not in {str(i) for i in range(len(CLASS_NAMES))}:
            hint = " (the file must have no header line)" if line == 1 else ""
            raise ValueError(
                f"unknown label {value!r} on line {line} of {csv_path}{hint}; "
                f"expected 0 {CLASS_NAMES[0]}, 1 {CLASS_NAMES[1]} or 2 {CLASS_NAMES[2]}"
            )
        labels.append(int(value))
    table["label"] = labels

    unknown = sorted(set(table["database"]) - set(DATABASES))
    if unknown:
        line = int(table.index[table["database"] == unknown[0]][0]) + 1
        raise ValueError(
            f"unknown database {unknown[0]!r} on line {line} of {csv_path}; expected one of {', '.join(DATABASES)}"
        )
    return table


def _selected_databases(cfg: DataConfig) -> list[str]:
    if not cfg.databases:
        return list(DATABASES)
    unknown = [name for name in cfg.databases if name not in DATABASES]
    if unknown:
        raise ValueError(
            f"unknown database {unknown[0]!r} in --databases; MEGC2019 contains {', '.join(DATABASES)}"
        )
    return list(dict.fromkeys(cfg.databases))


def _apex_path(apex_dir: Path, subject: str, filename: str) -> Path:
    path = apex_dir / f"{subject}_{filename}.jpg"
    if path.exists():
        return path

    # SMIC apex faces drop the zero padding of the subject number inside the filename.
    unpadded = re.sub(r"^s0*(\d+)_", r"s\1_", filename)
    alternative = apex_dir / f"{subject}_{unpadded}.jpg"
    return alternative if alternative.exists() else path


def _required_files(sample: Sample, data_input: str) -> list[Path]:
    if data_input == "flow":
        return [sample.flow]
    return [sample.flow, sample.apex]


def load(cfg: DataConfig) -> SampleSet:
    """Read the MEGC2019 composite samples of the selected databases.

    Args:
        cfg: ``root`` is the folder with the CSV, ``flow/`` and ``apex/``. ``databases``
            restricts the parts read. ``input`` decides which files are required: flow
            images for ``flow``, flow and apex images for ``apex+flow``. ``allow_missing``
            drops samples whose files are absent and records them instead of raising.

    Returns:
        The samples in CSV order, with class names ``negative, positive, surprise``.

    Raises:
        ValueError: No root given, an invalid CSV, an unknown database, ``input="frames"``
            (this composite has no onset frames), or a subject id shared by two databases.
        FileNotFoundError: The root or CSV is absent, or listed files are missing and
            ``allow_missing`` is off.
    """
    if cfg.root is None:
        raise ValueError(
            "megc2019 needs the data folder: pass --root PATH, the folder holding "
            f"{GT_FILE}, flow/ and apex/"
        )
    root = Path(cfg.root).expanduser()
    if root.exists() and not root.is_dir():
        raise FileNotFoundError(f"MEGC2019 root {root} is a file, not a folder; pass the folder holding {GT_FILE}")
    if not root.is_dir():
        raise FileNotFoundError(f"MEGC2019 root folder not found: {root}; pass the folder holding {GT_FILE}")
    if cfg.input == "frames":
        raise ValueError(
            "megc2019 provides flow and apex images but no onset frames, so input 'frames' is not available; "
            "use --input flow or --input apex+flow"
        )

    table = read_ground_truth(root / GT_FILE)
    databases = _selected_databases(cfg)
    table = table[table["database"].isin(databases)]

    owner: dict[str, str] = {}
    samples, missing, missing_paths = [], [], []
    for row in table.itertuples(index=False):
        if owner.setdefault(row.subject, row.database) != row.database:
            raise ValueError(
                f"subject {row.subject!r} appears in both {owner[row.subject]} and {row.database} in "
                f"{root / GT_FILE}; LOSO folds need subject ids unique across databases"
            )
        sample = Sample(
            database=row.database,
            subject=row.subject,
            clip=row.filename,
            label=row.label,
            apex=_apex_path(root / "apex", row.subject, row.filename),
            flow=root / "flow" / f"{row.subject}_{row.filename} .png",
        )
        absent = [path for path in _required_files(sample, cfg.input) if not path.is_file()]
        if absent:
            missing.append(sample.key)
            missing_paths.extend(absent)
        else:
            samples.append(sample)

    if missing and not cfg.allow_missing:
        listed = "\n  ".join(str(path) for path in missing_paths[:_MAX_LISTED])
        more = f"\n  ... and {len(missing_paths) - _MAX_LISTED} more" if len(missing_paths) > _MAX_LISTED else ""
        raise FileNotFoundError(
            f"{len(missing)} of {len(table)} listed samples have missing files:\n  {listed}{more}\n"
            "restore them, restrict --databases, or pass --allow-missing to skip and report them"
        )
    if missing:
        logger.warning("%d listed samples have missing files and are skipped (--allow-missing)", len(missing))
    if not samples:
        raise FileNotFoundError(f"no samples with files found under {root} for databases {', '.join(databases)}")

    return SampleSet(name="megc2019", class_names=CLASS_NAMES, samples=samples, missing=missing)
