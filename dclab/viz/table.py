"""A small table shown as HTML, for a page that would otherwise import pandas for one table (notebook 01).

pandas costs a reader's kernel ~25 MB of its own memory (``benchmarks/page_memory.py``); a page that
only shows a few rows needs none of it.
"""
from __future__ import annotations

from html import escape
from typing import Any, Iterable, Mapping, NamedTuple, Sequence


class Table(NamedTuple):
    """Rows of named cells; the ``index`` columns come first, as row headers. Shown as HTML in a notebook."""

    columns: list[str]
    rows: list[list[Any]]
    index: int = 0  # how many leading columns are row headers

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{escape(str(c))}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join((f"<th>{cell(v)}</th>" if i < self.index else f"<td>{cell(v)}</td>")
                             for i, v in enumerate(row)) + "</tr>"
            for row in self.rows
        )
        return f'<table class="dclab-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def cell(value: Any) -> str:
    """A table cell's text: integers with thousands separators, floats to 6 significant digits (as pandas shows them)."""
    if isinstance(value, bool) or value is None:
        return escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return escape(str(value))


def table(rows: Iterable[Mapping[str, Any]], index: Sequence[str] = ()) -> Table:
    """``rows`` (dicts with the same keys) as a :class:`Table`, the ``index`` keys first as row headers."""
    rows = list(rows)
    rest = [k for k in (rows[0] if rows else {}) if k not in index]
    columns = [*index, *rest]
    return Table(columns, [[r.get(c) for c in columns] for r in rows], len(index))
