"""Atomic file writes shared by every stage that saves results or caches.

A file is written to a temporary name in its destination folder and moved into place
with ``os.replace``, so a process killed at any moment leaves either the old file or the
new one, never a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text"]


def _umask() -> int:
    # os.umask can only be read by setting it; it is restored at once.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temp_path)`` on a temporary file beside ``path``, then move it onto ``path``.

    The file gets the permissions of a plain ``open()`` (0666 less the umask). ``mkstemp``
    alone would leave it readable by its owner only, which hides results from the other
    users of a shared cluster folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))
