"""Per-sample figures: the magnified sequence (UAMRN paper, Figure 1) and the LSH attention
matrix of a saved fold model (Figure 4), for one chosen test sample."""

from __future__ import annotations

import logging
from pathlib import Path

from uamrn.report.document import Block, Paragraph
from uamrn.report.runs import RunCollection

__all__ = ["sample_blocks"]

log = logging.getLogger(__name__)


def sample_blocks(coll: RunCollection, fig_dir: Path, sample: str | None = None) -> list[Block]:
    """Figures for one sample, or a paragraph saying why they could not be drawn."""
    return [Paragraph("Per-sample figures are not available in this version.")]
