"""One self-contained HTML page per report: the charts, the figures as JSON, and what made them.

The page needs nothing at view time: Bokeh's script is inlined (the `html` extra installs Bokeh, chosen because
it embeds its whole runtime in the page and draws on a canvas offline), the report's JSON (the same object
`--format json` prints) sits in a `<script type="application/json" id="flopcalc-data">` block, and the command
line, flopcalc's version and the date are in the header. Charts are built by the command's renderer
(`render/count_html.py`, ...) as Bokeh models; this module only assembles the page.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import accumulate
from typing import Any

from ..errors import UsageError
from ..files import to_json
from . import colors

# Bokeh's core runtime only (about 1.3 MB): the widgets, tables, WebGL and MathJax bundles stay out of the page.
BOKEH_COMPONENTS = ("bokeh",)
HTML_EXTRA_HINT = "pip install 'flopcalc[html]' (Bokeh draws the charts)"


@dataclass(frozen=True)
class Section:
    """A heading, an optional paragraph, and either a chart (a Bokeh model) or a small table of text cells."""

    title: str
    chart: Any = None
    text: str = ""
    rows: Sequence[Sequence[str]] = ()
    header: Sequence[str] = ()


def require_bokeh() -> Any:
    """Bokeh, or the one-line hint that `--format html` needs the `html` extra."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        raise UsageError("--format html needs Bokeh, which is not installed", HTML_EXTRA_HINT, field="format") from None
    return bokeh


PAN_AND_ZOOM = "pan,wheel_zoom,box_zoom,reset"  # a chart read at several scales
PAN_AND_ZOOM_X = "xpan,xwheel_zoom,reset"  # a long row of bars: along x only


def page_figure(tools: str = "", **options: Any) -> Any:
    """A Bokeh figure as wide as the page, with `tools` in a toolbar above it, or no toolbar when it has none."""
    from bokeh.plotting import figure

    return figure(sizing_mode="stretch_width", tools=tools, toolbar_location="above" if tools else None, **options)


def step_segments(parts: Sequence[tuple[str, float | Fraction]]) -> dict[str, list[Any]]:
    """A training step's parts (its phases' seconds, its FLOPs by pass), in order, as adjacent segments of one bar:
    each part's left and right edge (added up exactly when the amounts are Fractions) and its colour."""
    edges = list(accumulate((amount for _, amount in parts), initial=0))
    return {
        "left": [float(edge) for edge in edges[:-1]],
        "right": [float(edge) for edge in edges[1:]],
        "color": [colors.STEP_PARTS[part] for part, _ in parts],
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flopcalc")
    except PackageNotFoundError:
        return "unknown"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table>{f'<thead><tr>{head}</tr></thead>' if head else ''}<tbody>{body}</tbody></table>"


def data_block(data: Any) -> str:
    """The report's JSON inside a script tag: `<`, `>` and `&` escaped so no value can end the block."""
    text = to_json(data).rstrip("\n")  # the same strict JSON `--format json` prints
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="flopcalc-data">{text}</script>'


_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto; max-width: 1100px;
       color: #1b1b1b; padding: 0 16px; }
header { border-bottom: 1px solid #ccc; margin-bottom: 16px; }
header h1 { font-size: 1.4em; margin: 0 0 4px 0; }
header p { margin: 2px 0; color: #555; font-size: 0.9em; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }
section { margin: 20px 0; page-break-inside: avoid; }
section h2 { font-size: 1.1em; margin: 0 0 6px 0; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
td:not(:first-child) { text-align: right; }
@media print { body { margin: 0; max-width: none; } }
"""


def render_page(
    title: str,
    sections: Sequence[Section],
    data: Any,
    command_line: str,
    *,
    summary: Sequence[Sequence[str]] = (),
    notes: Sequence[str] = (),
    now: _dt.datetime | None = None,
) -> str:
    """The whole HTML page: header (title, command line, version, date), summary, sections, notes, data."""
    require_bokeh()
    from bokeh.embed import components
    from bokeh.resources import Resources

    charts = [section.chart for section in sections if section.chart is not None]
    script, divs = components(charts) if charts else ("", ())
    runtime = "\n".join(Resources(mode="inline", components=list(BOKEH_COMPONENTS)).js_raw)
    stamp = (now or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        f"<script>{runtime}</script>",
        script,
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p>Command: <code id="flopcalc-command">{html.escape(command_line)}</code></p>',
        f'<p>flopcalc <span id="flopcalc-version">{html.escape(_version())}</span>, '
        f'<span id="flopcalc-date">{stamp}</span>. 1 multiply-add = 2 FLOPs.</p>',
        "</header>",
    ]
    if summary:
        parts.append(f"<section>{_table((), summary)}</section>")
    chart_divs = iter(divs)
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        if section.chart is not None:
            parts.append(next(chart_divs))
        if section.rows:
            parts.append(_table(section.header, section.rows))
        parts.append("</section>")
    if notes:
        parts.append("<section><h2>Notes</h2><ul>")
        parts.extend(f"<li>{html.escape(note)}</li>" for note in notes)
        parts.append("</ul></section>")
    parts += [data_block(data), "</body>", "</html>"]
    return "\n".join(parts) + "\n"
