"""Write one section of benchmarks/RESULTS.md, leaving the other scripts' sections alone."""
from __future__ import annotations

import datetime
import platform
import re
import shlex
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# dclab benchmark results\n\n"
    "Each section is written by one script under `benchmarks/`, with the command that produced it.\n"
    "The machine is shared and noisy: compare ratios measured in the same run, not absolute times.\n"
)


def machine() -> str:
    """A one-line description of where the numbers were measured."""
    return (
        f"{platform.machine()}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {datetime.date.today().isoformat()}"
    )


def current_command() -> str:
    """The command line that is running now, as a reader would retype it."""
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def write_section(name: str, markdown: str, command: str | None = None) -> Path:
    """Replace (or append) the section ``name`` of RESULTS.md with ``markdown``."""
    body = (
        f"<!-- begin {name} -->\n{markdown.strip()}\n\n"
        f"Command: `{command or current_command()}`  \nMachine: {machine()}\n<!-- end {name} -->"
    )
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"<!-- begin {re.escape(name)} -->.*?<!-- end {re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text)
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    RESULTS.write_text(text)
    return RESULTS
