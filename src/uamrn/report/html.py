"""Self-contained HTML rendering of a :class:`~uamrn.report.document.Report`.

Figures are embedded as base64 PNG data URIs, so the single file can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
import re

from uamrn.report.document import BulletList, Figure, Heading, Paragraph, Report, Table

__all__ = ["to_html"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eee; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; }
figcaption { font-style: italic; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str) -> str:
    """Escape ``text`` and turn the two Markdown inline forms the report uses into tags."""
    escaped = html.escape(text)
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    return _BOLD.sub(r"<strong>\1</strong>", escaped)


def _table(table: Table) -> list[str]:
    out = [f'<table id="{html.escape(table.key)}">', f"<caption>{_inline(table.caption)}</caption>"]
    out.append("<tr>" + "".join(f"<th>{_inline(h)}</th>" for h in table.header) + "</tr>")
    for row in table.rows:
        out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    out.extend(f"<p>{_inline(note)}</p>" for note in table.notes)
    return out


def _figure(figure: Figure) -> list[str]:
    data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
    caption = _inline(figure.caption)
    return [
        "<figure>",
        f'<img src="data:image/png;base64,{data}" alt="{html.escape(figure.caption)}">',
        f"<figcaption>{caption}</figcaption>",
        "</figure>",
    ]


def to_html(report: Report) -> str:
    """Render ``report`` as one HTML page with its figures embedded."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(report.title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
    ]
    for block in report.blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            out.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, BulletList):
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            out.extend(_table(block))
        elif isinstance(block, Figure):
            out.extend(_figure(block))
    out.append("</body></html>")
    return "\n".join(out)
