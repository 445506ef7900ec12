"""Building blocks of the self-contained HTML reports: escaping, elements, the page shell with its inline CSS.

Every text that comes from a guest, a recipe or a result file goes through `esc`; a page loads nothing
(its Content-Security-Policy allows only inline styles and data: images, so no script can ever run).
"""

from __future__ import annotations

import base64
import html
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence

Attrs = Mapping[str, object]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
:root { --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #57606a; --line: #d0d7de; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.note { color: var(--muted); }
.result-passed td.result, .verdict-passed { color: var(--ok); }
.result-warning { background: #fff8c5; } .result-warning td.result { color: var(--warn); font-weight: 600; }
.result-failed { background: #ffebe9; } .result-failed td.result { color: var(--bad); font-weight: 600; }
.result-skipped { color: var(--muted); } .attempt-failed { background: #ffebe9; }
.verdict-failed { color: var(--bad); font-weight: 600; }
.message { white-space: pre-wrap; word-break: break-word; max-width: 60ch; }
.chart { overflow-x: auto; max-width: 100%; border: 1px solid var(--line); padding: 4px; }
.chart img { display: block; max-width: none; }
.flag { white-space: nowrap; display: inline-block; padding: 0 6px; border-radius: 8px; background: #ddf4ff;
        font-size: 12px; }
.flag-excluded, .flag-end-of-life { background: #eaeef2; } .flag-UNVERIFIED { background: #ffebe9; }
dl.props { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; margin: 6px 0; }
dl.props dt { color: var(--muted); } dl.props dd { margin: 0; }
svg text { font: 11px system-ui, sans-serif; fill: #1f2328; }
"""


def esc(value: object) -> str:
    """Text (any value) made safe for an HTML or inline-SVG text node or a quoted attribute value."""
    return html.escape(str(value), quote=True)


def attrs_html(attrs: Attrs) -> str:
    """` name="value"` pairs; None leaves an attribute out, True writes it bare."""
    parts = []
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        parts.append(f" {name}" if value is True else f' {name}="{esc(value)}"')
    return "".join(parts)


def el(tag: str, body_html: str = "", attrs: Attrs | None = None) -> str:
    """One element around HTML that is already safe (escape text with `esc` first)."""
    return f"<{tag}{attrs_html(attrs or {})}>{body_html}</{tag}>"


def void(tag: str, attrs: Attrs) -> str:
    """An element without content or end tag (img, meta)."""
    return f"<{tag}{attrs_html(attrs)}>"


def text_el(tag: str, text: object, attrs: Attrs | None = None) -> str:
    """One element around a text."""
    return el(tag, esc(text), attrs)


def table(headers: Sequence[str], rows: Iterable[str], attrs: Attrs | None = None) -> str:
    """A table: the header texts, then rows already rendered with `tr`."""
    head = el("tr", "".join(text_el("th", h) for h in headers))
    return el("table", el("thead", head) + el("tbody", "".join(rows)), attrs)


def tr(cells_html: Sequence[str], attrs: Attrs | None = None) -> str:
    """A row of cells already rendered as <td> elements."""
    return el("tr", "".join(cells_html), attrs)


def td(text: object, cls: str | None = None) -> str:
    return text_el("td", text, {"class": cls})


def link(path: str, label: str) -> str:
    """A relative link to a file beside the page (the path is percent-encoded, '/' kept)."""
    return el("a", esc(label), {"href": urllib.parse.quote(path)})


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def num(value: float) -> str:
    """A recorded number as a data attribute holds it: 55.7, 30, 0.25."""
    return f"{value:.10g}"


def seconds(value: float | None) -> str:
    """'55.7 s', or an en dash for a time that was not recorded."""
    return "\u2013" if value is None else f"{value:.1f} s"


def props(items: Iterable[tuple[str, object]]) -> str:
    """A definition list of (name, value) texts; empty values are left out."""
    body = "".join(text_el("dt", k) + text_el("dd", v) for k, v in items if v not in (None, ""))
    return el("dl", body, {"class": "props"})


def page(title: str, body_html: str) -> str:
    """A whole page: nothing outside it is loaded (inline CSS, data: images, no script)."""
    head = (f'<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style>")
    return f'<!DOCTYPE html>\n<html lang="en"><head>{head}</head>\n<body>\n{body_html}\n</body></html>\n'
