"""Shared fixtures: where the real (licence-restricted) data lives, and skipping without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The real data folder: ``$UAMRN_SHARED_DATA`` or ``../shared/data`` beside the checkout."""
    return Path(os.environ.get("UAMRN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path}; set UAMRN_SHARED_DATA to run this test")
    return path


def require(path: Path) -> Path:
    """Skip the calling test with a reason when one real-data file or folder is absent."""
    if not path.exists():
        pytest.skip(f"real data not found: {path}")
    return path
