"""``report.html``: one self-contained page for a run's results, shared by curation and evaluation.

A page is a *payload* (plain JSON: title, headline numbers, tables, charts, the items, the rejects and a
provenance footer) plus one script and one stylesheet (``html_page.js``, ``html_page.css``, shipped as package
data) that draw it in the browser. Everything is inline: no network request, no server, nothing to install;
the page's Content-Security-Policy (``default-src 'none'``) makes any request a reported violation instead.

Untrusted text (problems, chains, model outputs) never becomes markup. The payload sits in a
``<script type="application/json">`` block with every ``<``, ``>`` and ``&`` written as a JSON ``\\u`` escape,
so nothing in it can close the block or open a tag, and the script inserts every string with ``textContent``.
LaTeX is shown as source (no renderer is bundled: the page stays small and shows exactly what the model wrote).

The payload keys the script reads (`render_page` checks none of them: a missing section is simply not drawn):

- ``title``, ``intro``; ``headline``: ``[[label, value], ...]``;
- ``funnel``: ``funnel.json``'s stage rows (a table and a chart of chains and problems per stage);
- ``tables``: ``[{"title", "columns", "rows"}]``; ``charts``: specs from `histogram` and `bar_chart`;
  ``charts_left_out``: one line per chart left out for having nothing to show, saying why;
- ``items``: ``{"title", "note", "view", "rows", "index"}``: every row, and per row ``{"id", "domain", "status",
  "score"}`` for the filters; each row is drawn as an element with ``data-item-id``. ``view`` names the fields
  drawn as texts (``texts``), as answers (``answers``), the quality cue words to highlight (``cues``), and the
  names to show for scores that stand in for another (``score_labels``: key -> name);
- ``rejects``: ``{"title", "note", "groups": [{"stage", "reason", "count", "shown"}], "rows", "problems"}``; each
  reject drawn carries ``data-reject-reason``, and shows ``problems[row.problem_id]`` (``{"problem", "gold"}``)
  beside its evidence;
- ``footer``: ``{"facts": [[label, value]], "manifest": {...}}``: provenance, the whole manifest foldable.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from eval.records import write_text_atomic

ASSETS = Path(__file__).resolve().parent
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"


@cache
def asset(name: str) -> str:
    """The text of a shipped asset (``html_page.js``, ``html_page.css``)."""
    return (ASSETS / name).read_text(encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)  # a Path, a date: shown as text rather than failing the whole page


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as strings (JSON has no such numbers; the browser's parser refuses them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def safe_json(payload: Any) -> str:
    """``payload`` as compact JSON that is safe inside ``<script type="application/json">``: no ``<``, ``>`` or
    ``&`` is left, so no text in it can end the block (``</script>``) or start markup."""
    try:
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=_jsonable, allow_nan=False)
    except ValueError:  # a NaN somewhere: rare, so the normal path does not pay for the walk
        text = json.dumps(_finite(payload), ensure_ascii=False, separators=(",", ":"), default=_jsonable)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_page(payload: Mapping[str, Any]) -> str:
    """The whole page: CSP, stylesheet, the payload as JSON, the script that draws it."""
    title = html.escape(str(payload.get("title", "report")))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>\n{asset('html_page.css')}</style>\n</head>\n<body>\n"
        "<noscript>This report draws itself with JavaScript; its data is in the block below.</noscript>\n"
        '<main id="report"></main>\n'
        f'<script type="application/json" id="report-data">{safe_json(payload)}</script>\n'
        f"<script>\n{asset('html_page.js')}</script>\n</body>\n</html>\n"
    )


def write_page(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write `render_page` of ``payload`` to ``path`` atomically; returns the path."""
    target = Path(path)
    write_text_atomic(target, render_page(payload))
    return target


def histogram(
    title: str,
    series: Mapping[str, Iterable[float]],
    xlabel: str,
    bins: int = 20,
    span: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """A histogram chart: every series counted on the same ``bins`` edges (over ``span``, else the data's range),
    so overlaid series compare bin by bin; a pool of millions becomes ``bins`` numbers per series."""
    values = {label: [float(v) for v in vs if v is not None and math.isfinite(v)] for label, vs in series.items()}
    present = [v for vs in values.values() for v in vs]
    low, high = span or ((min(present), max(present)) if present else (0.0, 1.0))
    high = high if high > low else low + 1.0
    width = (high - low) / bins
    edges = [round(low + i * width, 6) for i in range(bins + 1)]
    counted = []
    for label, vs in values.items():
        counts = [0] * bins
        for v in vs:
            counts[min(bins - 1, max(0, int((v - low) / width)))] += 1
        counted.append({"label": f"{label} (n={len(vs)})", "values": counts})
    return {"kind": "hist", "title": title, "xlabel": xlabel, "edges": edges, "series": counted}


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str = "",
    horizontal: bool = False,
    log: bool = False,
    percent: bool = False,
) -> dict[str, Any]:
    """Grouped bars, one group per category and one bar per series (``percent``: values are shares in [0, 1])."""
    return {
        "kind": "bars",
        "title": title,
        "xlabel": xlabel,
        "categories": list(categories),
        "series": [{"label": label, "values": list(values)} for label, values in series.items()],
        "horizontal": horizontal,
        "log": log,
        "percent": percent,
    }
