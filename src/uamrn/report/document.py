"""A report as a list of blocks (headings, paragraphs, tables, figures), rendered to Markdown.

The same blocks render to self-contained HTML in :mod:`uamrn.report.html`, so both outputs
always hold the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Heading", "Paragraph", "BulletList", "Table", "Figure", "Report", "to_markdown"]


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class BulletList:
    items: list[str]


@dataclass
class Table:
    """A table with a caption; ``key`` names it so tests can find it in the Markdown."""

    key: str
    caption: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Figure:
    """A PNG written beside the report; ``path`` is absolute, the Markdown links it relatively."""

    path: Path
    caption: str


Block = Heading | Paragraph | BulletList | Table | Figure


@dataclass
class Report:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def tables(self) -> dict[str, Table]:
        return {b.key: b for b in self.blocks if isinstance(b, Table)}

    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table_markdown(table: Table) -> list[str]:
    lines = [f"<a id=\"{table.key}\"></a>", f"**{table.caption}**", ""]
    lines.append("| " + " | ".join(_escape_cell(h) for h in table.header) + " |")
    lines.append("|" + "|".join("---" for _ in table.header) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_escape_cell(c) for c in row) + " |")
    for note in table.notes:
        lines.extend(["", note])
    return lines


def to_markdown(report: Report, out_dir: Path) -> str:
    """Render ``report`` as Markdown; figure links are relative to ``out_dir``."""
    lines = [f"# {report.title}", ""]
    for block in report.blocks:
        if isinstance(block, Heading):
            lines.append("#" * block.level + " " + block.text)
        elif isinstance(block, Paragraph):
            lines.append(block.text)
        elif isinstance(block, BulletList):
            lines.extend(f"- {item}" for item in block.items)
        elif isinstance(block, Table):
            lines.extend(_table_markdown(block))
        elif isinstance(block, Figure):
            link = Path(block.path).resolve().relative_to(Path(out_dir).resolve()).as_posix()
            lines.append(f"![{block.caption}]({link})")
            lines.extend(["", f"*{block.caption}*"])
        lines.append("")
    return "\n".join(lines)
