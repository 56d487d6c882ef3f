"""HTML tables for notebooks: the runtime report, rows of dicts, layer traces, conversion parity."""

from __future__ import annotations

import html

import numpy as np
from IPython.display import HTML

from rvclab.pipeline import explore as vc_views

LONG_TOKEN = 32  # characters: a cell text without spaces at least this long may break anywhere


def breakable(text: str) -> str:
    """``text`` as cell HTML: escaped (a regex's ``(?P<name>`` shows as written), and a long token
    without spaces (a key path, a regex) may break anywhere, so a table fits the notebook's width
    instead of scrolling sideways (``word-break`` is one of the styles JupyterLab's sanitizer keeps)."""
    shown = html.escape(text, quote=False)
    if len(text) >= LONG_TOKEN and not any(c.isspace() for c in text):
        return f'<span style="word-break:break-all">{shown}</span>'
    return shown


def _fmt(v) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "NO"
    if isinstance(v, float | np.floating):
        return f"{v:.3g}" if v != 0 else "0"
    return breakable(str(v))


def info_table(info: dict):
    """A two-column HTML table of ``rvclab.info.collect()``."""
    rows = "".join(f"<tr><td><code>{k}</code></td><td>{breakable(str(v))}</td></tr>" for k, v in info.items())
    return HTML(f"<table>{rows}</table>")


NOT_APPLICABLE = "–"  # a cell with no value (None): the measure does not apply to the row
NOT_COMPARABLE = "n/a"  # a NaN (rvclab.metrics: not comparable, e.g. no frame voiced in both)


def _cell(v) -> str:
    """A table cell as printed: None -> a dash, NaN -> n/a, -0.0 -> 0.0, anything else as it is."""
    if v is None:
        return NOT_APPLICABLE
    if isinstance(v, float | np.floating) and v != v:
        return NOT_COMPARABLE
    if isinstance(v, float | np.floating) and v == 0:
        return str(abs(v))
    return breakable(str(v))


def f0_agreement_table(rows: list[dict]):
    """An HTML table of a list of dicts (one row each), values as they are (None as a dash)."""
    if not rows:
        return HTML("<i>(empty)</i>")
    head = "".join(f"<th>{k}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return HTML(f"<table><tr>{head}</tr>{body}</table>")


def rows_table(rows: list[dict], max_rows: int | None = None, caption: str = ""):
    """An HTML table of a list of dicts (one row each); ``max_rows`` keeps the first rows and
    says how many were left out."""
    if not rows:
        return HTML("<i>(empty)</i>")
    shown = rows if max_rows is None else rows[:max_rows]
    head = "".join(f"<th>{k}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r.values()) + "</tr>"
                   for r in shown)
    more = (f"<div><i>... {len(rows) - len(shown)} more rows</i></div>"
            if len(shown) < len(rows) else "")
    cap = f"<caption>{caption}</caption>" if caption else ""
    return HTML(f"<table>{cap}<tr>{head}</tr>{body}</table>{more}")


def parity_table(table, columns=("path", "module", "shape", "max_abs", "rel", "corr", "ok")):
    """A TraceTable as HTML: one row per traced layer in forward order, layers past tolerance
    in red and the first failure in bold, with a one-line summary on top."""
    first = table.first_failure()
    n_bad = sum(not r["ok"] for r in table)
    summary = (f"<div>{len(table)} layer outputs; {n_bad} past tolerance; first failure: "
               f"<code>{first['path'] if first else 'none'}</code></div>")
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = []
    for r in table:
        style = "" if r["ok"] else ' style="background:#fdd"'
        style = ' style="background:#fbb;font-weight:bold"' if r is first else style
        cells = "".join(f"<td>{_fmt(r[c])}</td>" for c in columns)
        body.append(f"<tr{style}>{cells}</tr>")
    return HTML(summary + f"<table><tr>{head}</tr>{''.join(body)}</table>")


def conversion_table(rows: dict, digits: int = 4):
    """{label: parity row} (``rvclab.pipeline.explore.parity_row``) as an HTML table, with numbers
    rounded to ``digits`` decimals and thresholded so the table reads the same on every machine
    (timings aside). Rows comparing two different conversions (an index on vs off, say) need fewer
    digits than torch-vs-MLX rows: there the last bits that differ between CPUs can change which
    neighbours retrieval picks."""
    return rows_table([{"case": label, **vc_views.stable(row, digits)} for label, row in rows.items()])
