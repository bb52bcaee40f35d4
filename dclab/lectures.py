"""The start page's content: the lecture notebooks in order, their reading times, and a map of the lecture.

``table_of_contents_html`` lists the notebooks with a reading time computed from the notebook files
themselves (``reading_time``), so the estimate stays true when a notebook changes; ``lecture_map_html``
places each notebook in the four parts of Song Han's lecture (CS231n 2017, lecture 15).
"""
from __future__ import annotations

import ast
import json
import math
import re
from html import escape
from pathlib import Path
from typing import NamedTuple

from dclab.serve import NOTEBOOKS


class Lecture(NamedTuple):
    notebook: str
    title: str
    summary: str


LECTURES = [
    Lecture("01_hardware_and_number_formats.ipynb", "Hardware and number formats",
            "Why compression matters: a roofline measured on your machine, the energy of a DRAM read, and fp32 to fp8 bit by bit."),
    Lecture("02_pruning.ipynb", "Pruning",
            "Drop the small weights, retrain the rest: drag the threshold and watch accuracy and the sparse file size."),
    Lecture("03_weight_sharing.ipynb", "Weight sharing",
            "Trained k-means quantization: a few shared weights per layer, and a codebook fine-tuned by grouped gradients."),
    Lecture("04_huffman_coding.ipynb", "Huffman coding",
            "Frequent symbols get short codes: the last 20-30% of Deep Compression, and the papers' tables reproduced."),
    Lecture("05_squeezenet.ipynb", "SqueezeNet",
            "Small by design: Fire modules, the design space, and SqueezeNet plus Deep Compression."),
    Lecture("06_deep_compression_dashboard.ipynb", "The Deep Compression dashboard",
            "The capstone: prune, share and Huffman-code a LeNet live, and download the real .dcz file."),
    Lecture("07_how_far_can_it_go.ipynb", "How far can it go?",
            "Past the paper: real files on a rate-accuracy chart beside the later records, and a network of your own."),
]
START_PAGE = "00_start_here.ipynb"

# -- first-run compute time ---------------------------------------------------------------------------------

FIRST_RUN_SECONDS: dict[str, int] = {
    "00_start_here.ipynb": 1, "01_hardware_and_number_formats.ipynb": 17, "02_pruning.ipynb": 92,
    "03_weight_sharing.ipynb": 31, "04_huffman_coding.ipynb": 20, "05_squeezenet.ipynb": 73,
    "06_deep_compression_dashboard.ipynb": 5, "07_how_far_can_it_go.ipynb": 28,
}
"""Seconds each notebook took to run the first time after ``prepare`` (its experiments computed once),
measured by ``benchmarks/notebook_times.py`` (its section of benchmarks/RESULTS.md; a test keeps the two equal).
Later runs read the cached results and take seconds."""

# -- reading time -------------------------------------------------------------------------------------------

WORDS_PER_MINUTE = 200
"""Reading speed for the notebooks' prose (a common figure for technical text)."""
WIDGET_MINUTES = 3.0
"""Time to try out one interactive widget (a cell that calls something from ``dclab.widgets``)."""
OUTPUT_MINUTES = 0.5
"""Time to look at the output of any other code cell that shows something (a figure, a table, a printout)."""


class ReadingTime(NamedTuple):
    """What a notebook asks of its reader: words of prose, widgets, other outputs, exercises."""

    words: int
    widgets: int
    outputs: int
    exercises: int

    @property
    def minutes(self) -> int:
        """Whole minutes, rounded up: words at ``WORDS_PER_MINUTE``, plus each widget and output."""
        return math.ceil(self.words / WORDS_PER_MINUTE + self.widgets * WIDGET_MINUTES + self.outputs * OUTPUT_MINUTES)


_MARKUP = re.compile(r"\]\([^)]*\)|<[^>]+>|https?://\S+")  # link targets, HTML tags, bare URLs: not read


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def count_words(markdown: str) -> int:
    """Words a reader reads in ``markdown``: link targets, HTML tags and URLs left out."""
    return len(re.findall(r"[\w'][\w'.,:;/-]*", _MARKUP.sub(" ", markdown)))


def _widget_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Names imported from ``dclab.widgets`` (functions) and names bound to its modules."""
    functions: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "dclab.widgets" or node.module.startswith("dclab.widgets."):
                functions |= {a.asname or a.name for a in node.names}
            elif node.module == "dclab":
                modules |= {a.asname or a.name for a in node.names if a.name == "widgets"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name.startswith("dclab.widgets")}
    return functions, modules


def _calls_widget(tree: ast.AST, functions: set[str], modules: set[str]) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in functions:
                return True
            while isinstance(func, ast.Attribute):
                func = func.value
            if isinstance(func, ast.Name) and func.id in modules:
                return True
    return False


def _parse(code: str) -> ast.Module:
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        return ast.parse(code)
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


def reading_time(path: Path | str) -> ReadingTime:
    """Count a notebook's prose words, widget cells, other cells that show an output, and exercises.

    Example: ``reading_time(NOTEBOOKS / "02_pruning.ipynb").minutes``.
    """
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    words = sum(count_words(_source(c)) for c in cells if c["cell_type"] == "markdown")
    trees = [_parse(_source(c)) for c in cells if c["cell_type"] == "code"]
    functions: set[str] = set()
    modules: set[str] = set()
    for tree in trees:
        f, m = _widget_names(tree)
        functions |= f
        modules |= m
    widgets = outputs = 0
    for tree in trees:
        if _calls_widget(tree, functions, modules):
            widgets += 1
        elif tree.body and isinstance(tree.body[-1], ast.Expr):  # the cell shows its last value or prints
            outputs += 1
    exercises = sum("### BEGIN SOLUTION" in _source(c) for c in cells if c["cell_type"] == "code")
    return ReadingTime(words, widgets, outputs, exercises)


def reading_times(folder: Path = NOTEBOOKS) -> dict[str, ReadingTime]:
    """``{notebook file name: ReadingTime}`` for the start page and every lecture found in ``folder``."""
    names = [START_PAGE] + [lec.notebook for lec in LECTURES]
    return {name: reading_time(folder / name) for name in names if (folder / name).is_file()}


def _time_text(t: ReadingTime) -> str:
    exercises = f", {t.exercises} exercises" if t.exercises > 1 else (", 1 exercise" if t.exercises else "")
    widgets = f", {t.widgets} widget{'s' if t.widgets > 1 else ''}" if t.widgets else ""
    return f"about {t.minutes} min{widgets}{exercises}"


def table_of_contents_html(folder: Path = NOTEBOOKS) -> str:
    """The start page's list of lectures, each linked to its dashboard, with its reading time."""
    times = reading_times(folder)
    items = []
    for i, lec in enumerate(LECTURES, start=1):
        t = times.get(lec.notebook)
        first = FIRST_RUN_SECONDS.get(lec.notebook)
        compute = f"; first run {math.ceil(first / 60)} min of computing" if first else ""
        when = (f' <span class="dclab-reading-time" data-minutes="{t.minutes}" style="font-size:0.9em">'
                f"({escape(_time_text(t) + compute)})</span>") if t else ""
        items.append(f'<li><a href="{escape(lec.notebook)}"><b>{i}. {escape(lec.title)}</b></a>{when}: '
                     f"{escape(lec.summary)}</li>")
    total = sum(times[lec.notebook].minutes for lec in LECTURES if lec.notebook in times)
    note = (f'<p class="dclab-reading-total">About {total} minutes in all: prose read at {WORDS_PER_MINUTE} words a '
            f"minute, {WIDGET_MINUTES:g} minutes per widget and {OUTPUT_MINUTES:g} per figure or table, counted "
            "from the notebooks themselves; exercises take extra. The first run's computing (after <code>prepare</code>) was "
            "measured on a 2-core machine (benchmarks/notebook_times.py); later runs read it from the cache.</p>") if times else ""
    return ('<ol class="dclab-lectures" style="font-size:1.1em;line-height:1.8">\n' + "\n".join(items)
            + f"\n</ol>\n{note}")


# -- the lecture's map --------------------------------------------------------------------------------------

class Topic(NamedTuple):
    """One topic of the lecture and the dclab notebooks that teach it (none: see "beyond this course")."""

    name: str
    notebooks: tuple[str, ...] = ()
    note: str = ""


class Part(NamedTuple):
    title: str
    topics: tuple[Topic, ...]


LECTURE_MAP = (
    Part("Hardware 101 (the introduction)", (
        Topic("the devices: CPU, GPU, FPGA, ASIC", ("01_hardware_and_number_formats.ipynb",)),
        Topic("number representation: fp32, fp16, bf16, fp8, int8, fixed point", ("01_hardware_and_number_formats.ipynb",)),
        Topic("energy: a DRAM read costs over 100x an SRAM read", ("01_hardware_and_number_formats.ipynb",)),
    )),
    Part("1. Algorithms for efficient inference", (
        Topic("pruning", ("02_pruning.ipynb", "06_deep_compression_dashboard.ipynb"), "CNNs and an LSTM"),
        Topic("Deep Compression and the later records on the LeNets", ("07_how_far_can_it_go.ipynb",),
              "real files beside published figures"),
        Topic("weight sharing (trained quantization)", ("03_weight_sharing.ipynb", "06_deep_compression_dashboard.ipynb")),
        Topic("Huffman coding", ("04_huffman_coding.ipynb", "06_deep_compression_dashboard.ipynb")),
        Topic("quantization to fewer bits", ("01_hardware_and_number_formats.ipynb", "03_weight_sharing.ipynb"),
              "post-training; quantization-aware training is beyond this course"),
        Topic("low-rank approximation", ("03_weight_sharing.ipynb",), "the SVD baseline of Figure 6"),
        Topic("compact models: SqueezeNet (+ Deep Compression)", ("05_squeezenet.ipynb",)),
        Topic("binary and ternary nets (trained ternary quantization)", (), "beyond this course"),
        Topic("Winograd transformation", (), "beyond this course"),
    )),
    Part("2. Hardware for efficient inference", (
        Topic("the roofline model", ("01_hardware_and_number_formats.ipynb",), "measured on your machine"),
        Topic("Google's TPU", ("01_hardware_and_number_formats.ipynb",), "named only; the paper is below"),
        Topic("EIE: inference on the compressed model", ("01_hardware_and_number_formats.ipynb",),
              "what it runs, beside dense vs sparse timed on your CPU; the accelerator itself is beyond this course"),
    )),
    Part("3. Algorithms for efficient training", (
        Topic("parallelization (data and model parallel)", (), "beyond this course"),
        Topic("mixed-precision training with fp16 and fp32", (), "beyond this course (the formats: notebook 01)"),
        Topic("model distillation", (), "beyond this course"),
        Topic("DSD: dense-sparse-dense training", (), "beyond this course (its first step, prune and retrain: notebook 02)"),
    )),
    Part("4. Hardware for efficient training", (
        Topic("GPUs for training (Volta's tensor cores)", (), "beyond this course"),
        Topic("TPU v2 (Cloud TPU)", (), "beyond this course"),
    )),
)
"""The four parts of the lecture, after its "Hardware 101", and where dclab teaches each topic."""


def lecture_map_html() -> str:
    """The lecture's parts and topics as a table: which dclab notebook covers each (start page)."""
    number = {lec.notebook: i for i, lec in enumerate(LECTURES, start=1)}
    rows = []
    for part in LECTURE_MAP:
        for k, topic in enumerate(part.topics):
            head = (f'<td rowspan="{len(part.topics)}" style="vertical-align:top;padding:2px 10px 2px 0">'
                    f"<b>{escape(part.title)}</b></td>") if k == 0 else ""
            where = ", ".join(f"{number[n]} {escape(_title(n))}" for n in topic.notebooks) or "&mdash;"
            note = f" <i>({escape(topic.note)})</i>" if topic.note else ""
            rows.append(f'<tr>{head}<td style="padding:2px 10px">{escape(topic.name)}</td>'
                        f'<td style="padding:2px 10px">{where}{note}</td></tr>')
    return ('<table class="dclab-lecture-map" style="border-collapse:collapse;text-align:left">'
            '<tr><th style="text-align:left">part of the lecture</th><th style="text-align:left">topic</th>'
            '<th style="text-align:left">dclab notebook</th></tr>' + "\n".join(rows) + "</table>")


def _title(notebook: str) -> str:
    return next(lec.title for lec in LECTURES if lec.notebook == notebook)
