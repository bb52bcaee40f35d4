"""The start page: reading times computed from the notebook files, every notebook listed, the lecture's map."""
from __future__ import annotations

import json
import math
import re

from conftest import NOTEBOOKS

from dclab import lectures
from dclab.lectures import LECTURE_MAP, LECTURES, START_PAGE, ReadingTime, count_words, reading_time


def _notebook(tmp_path, cells):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def _md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": [text]}


def _code(text):
    return {"cell_type": "code", "metadata": {}, "source": [text], "outputs": [], "execution_count": None}


def test_reading_time_counts_words_widgets_outputs_and_exercises(tmp_path):
    path = _notebook(tmp_path, [
        _md("# Title\n\n" + "word " * 398 + "[a link](https://example.com/long/path) <b>x</b>"),
        _code("from dclab.widgets.pruning import prune_explorer\nimport dclab.widgets.coding as wc"),
        _code("prune_explorer(model)"),           # a widget
        _code("wc.pipeline_widget()"),            # a widget, through its module
        _code("x = 1\nx"),                        # shows a value
        _code("y = 2"),                           # shows nothing
        _code("%matplotlib inline\nprint(y)"),    # magics are skipped; prints
        _code("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
    ])
    t = reading_time(path)
    assert t == ReadingTime(words=1 + 398 + 3, widgets=2, outputs=2, exercises=1)
    expected = 402 / lectures.WORDS_PER_MINUTE + 2 * lectures.WIDGET_MINUTES + 2 * lectures.OUTPUT_MINUTES
    assert t.minutes == math.ceil(expected)


def test_count_words_skips_link_targets_and_tags():
    assert count_words("See [the paper](https://arxiv.org/abs/1510.00149), <i>now</i>.") == 4
    assert count_words("`fire2` has 9x fewer") == 4


def test_reading_time_follows_the_file(tmp_path):
    short = reading_time(_notebook(tmp_path, [_md("word " * 200)]))
    longer = reading_time(_notebook(tmp_path, [_md("word " * 2000)]))
    assert (short.minutes, longer.minutes) == (1, 10)


def test_every_notebook_is_in_the_table_of_contents_with_its_computed_time():
    on_disk = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert sorted([START_PAGE] + [lec.notebook for lec in LECTURES]) == on_disk
    html = lectures.table_of_contents_html()
    toc = html[html.index('<ol class="dclab-lectures"'):html.index("</ol>")]
    assert re.findall(r'<a href="([^"]+)"', toc) == [lec.notebook for lec in LECTURES]  # links: the lectures only
    shown = dict(re.findall(r'<a href="([^"]+)">.*?data-minutes="(\d+)"', toc))
    for lec in LECTURES:
        t = reading_time(NOTEBOOKS / lec.notebook)
        assert t.words > 100 and t.widgets >= 1, f"{lec.notebook}: {t}"
        assert int(shown[lec.notebook]) == t.minutes
    total = sum(reading_time(NOTEBOOKS / lec.notebook).minutes for lec in LECTURES)
    assert f"About {total} minutes in all" in html


def test_table_of_contents_without_the_notebook_files(tmp_path):
    html = lectures.table_of_contents_html(tmp_path)  # an installed package without notebooks/
    assert html.count("<li>") == len(LECTURES) and "data-minutes" not in html


def test_lecture_map_has_the_four_parts_and_places_every_lecture():
    titles = [part.title for part in LECTURE_MAP]
    assert titles[1:] == ["1. Algorithms for efficient inference", "2. Hardware for efficient inference",
                          "3. Algorithms for efficient training", "4. Hardware for efficient training"]
    placed = {n for part in LECTURE_MAP for topic in part.topics for n in topic.notebooks}
    assert placed == {lec.notebook for lec in LECTURES}
    html = lectures.lecture_map_html()
    assert "<a " not in html  # the start page's only lecture links are the table of contents'
    for part in LECTURE_MAP:
        assert part.title in html
        assert all(t.notebooks or "beyond this course" in t.note for t in part.topics)


def test_start_page_shows_the_map_and_links_the_papers_beyond_the_course():
    nb = json.loads((NOTEBOOKS / START_PAGE).read_text())
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "table_of_contents_html()" in code and "lecture_map_html()" in code
    last = "".join(nb["cells"][-1]["source"])
    assert last.startswith("## Beyond this course")
    for arxiv in ("1612.01064", "1607.04381", "1602.01528", "1704.04760", "1712.05877", "1509.09308", "1710.03740"):
        assert f"(https://arxiv.org/abs/{arxiv})" in last, arxiv


def test_first_run_times_are_the_benchmarks_measurement():
    """The start page's first-run minutes are those benchmarks/notebook_times.py wrote to RESULTS.md."""
    import re

    from conftest import ROOT
    from dclab.lectures import FIRST_RUN_SECONDS, LECTURES

    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    section = text[text.index("<!-- begin notebook-times -->"):text.index("<!-- end notebook-times -->")]
    measured = {name: int(s) for name, s in re.findall(r"^\| (\d\d_\w+\.ipynb) \| (\d+) \|$", section, re.M)}
    assert FIRST_RUN_SECONDS == measured
    assert {lec.notebook for lec in LECTURES} <= set(measured)
