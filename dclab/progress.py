"""Progress bars: a widget in a notebook, a live bar on a terminal, a line now and then in a log.

Every loop that takes long in dclab asks :func:`progress_bar` for its bar, so a CI log or a
server's log gets a line every ``LOG_INTERVAL_S`` seconds instead of one per step.
"""
from __future__ import annotations

import sys

import tqdm.auto
import tqdm.autonotebook
from tqdm import tqdm as terminal_tqdm

LOG_INTERVAL_S = 30.0


def in_notebook() -> bool:
    """Whether tqdm.auto chose its notebook widget (a Jupyter kernel with ipywidgets)."""
    return tqdm.autonotebook.tqdm.__module__ == "tqdm.notebook"


def progress_bar(total: int, desc: str, *, enabled: bool = True, leave: bool = False) -> terminal_tqdm:
    """A tqdm bar for ``total`` steps that suits where the output goes (``leave``: keep it on a terminal)."""
    if not enabled:
        return terminal_tqdm(total=total, desc=desc, disable=True)
    if in_notebook():
        # kept on the page when done: a bar that closes its widget leaves a view of a closed model in the
        # notebook's output, which Voila's page then fails to render ("widget model not found")
        return tqdm.auto.tqdm(total=total, desc=desc, leave=True)
    if sys.stderr.isatty():
        return terminal_tqdm(total=total, desc=desc, leave=leave)
    # a log file or a pipe: no redraws, a line now and then, and the last state kept
    return terminal_tqdm(total=total, desc=desc, leave=True, mininterval=LOG_INTERVAL_S,
                         maxinterval=LOG_INTERVAL_S, ascii=True, file=_LogLines())


class _LogLines:
    """Where a bar in a log writes: each redraw becomes a line of its own (tqdm redraws with a carriage return)."""

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:
            sys.stderr.write(line + "\n")

    def flush(self) -> None:
        sys.stderr.flush()
