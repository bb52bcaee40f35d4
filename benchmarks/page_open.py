"""Benchmark: how long each notebook takes to open under Voila, in a real browser, on a warm cache (issue 13).

    DCLAB_DATA=../shared/data python benchmarks/page_open.py [--no-fill] [--no-profile] [--notebooks 00 01 ...]

1. **Fill the cache** (unless ``--no-fill``): every notebook 00-06 runs once top to bottom in a fresh
   kernel (nbclient), so dclab's cache holds every experiment: a "warm cache".
2. **Profile** (unless ``--no-profile``): every notebook runs once more in a fresh kernel, with nbclient's
   timestamps of each cell; the slowest cells of each notebook go in the report (what a page waits for).
3. **Open the pages**: Voila starts on 127.0.0.1 exactly as ``python -m dclab serve`` starts it
   (``dclab.serve.start_voila``: the repository's ``voila.json``, the ``dclab`` template). Once the server's
   processes are idle (its preheated kernels have run their notebooks), headless Chromium opens every
   notebook in a new browser context (first visit after the server started), then, after the server is
   idle again, every notebook once more (second visit).

In the page, a MutationObserver installed before any of Voila's scripts runs notes, in
``performance.now()`` (milliseconds since the navigation started):

- **first content**: the first moment an output of a code cell is visible (``.jp-OutputArea-output``
  with a non-zero box that ``checkVisibility()`` accepts);
- **complete**: the last change to the page before it stays unchanged for ``QUIET_MS``, once Voila's
  loading spinner is gone (every cell has run) and every plotly figure on the page is drawn.

Between visits the script waits until the Voila process and its kernels use less than ``IDLE_CPU`` of one
core (at most ``--idle-timeout`` seconds; the wait is reported), because a used preheated kernel is
replaced at once by a new one that runs its notebook again, and on a 2-core machine that run would slow the
next page. Every time is printed beside the 1-minute load average.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402

from dclab.serve import CHROMIUM, CHROMIUM_FLAGS, NOTEBOOKS, start_voila, stop  # noqa: E402

FIRST_CONTENT_GOAL_S = 3.0
COMPLETE_GOAL_S = 10.0
QUIET_MS = 3000
IDLE_CPU = 0.10  # fraction of one core
PAGE_TIMEOUT_S = 300

OBSERVER = """(() => {
  const s = window.__pageopen = {first: null, spinnerGone: null, last: 0, mutations: 0, scheduled: false};
  const visible = e => {
    const box = e.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && (e.checkVisibility ? e.checkVisibility() : true);
  };
  const check = () => {
    s.scheduled = false;
    const now = performance.now();
    if (s.first === null) {
      for (const e of document.querySelectorAll('.jp-OutputArea-output')) {
        if (visible(e)) { s.first = now; break; }
      }
    }
    if (s.spinnerGone === null && document.getElementById('rendered_cells') && !document.getElementById('loading'))
      s.spinnerGone = now;
  };
  new MutationObserver(() => {
    s.last = performance.now();
    s.mutations++;
    if (!s.scheduled && (s.first === null || s.spinnerGone === null)) { s.scheduled = true; setTimeout(check, 0); }
  }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
})();"""

STATE = """() => {
  const s = window.__pageopen || {};
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
  return {first: s.first, spinnerGone: s.spinnerGone, last: s.last, now: performance.now(), mutations: s.mutations,
          outputs: document.querySelectorAll('.jp-OutputArea-output').length,
          widgets: document.querySelectorAll('.jupyter-widgets').length,
          plots: plots.length, drawn: plots.filter(p => p.querySelector('.main-svg')).length,
          missing: (document.body ? document.body.innerText.match(/[Mm]odel not found/g) || [] : []).length};
}"""


def notebooks(prefixes: list[str] | None) -> list[Path]:
    """Notebooks 00-06 (or those whose names start with ``prefixes``), in order."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in paths if not prefixes or any(p.name.startswith(x) for x in prefixes)]


def run_notebook(path: Path) -> tuple[float, list[dict]]:
    """Run ``path`` in a fresh kernel; (seconds, [{cell, seconds, source}] for its code cells)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3", record_timing=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    cells = []
    for i, cell in enumerate(nb.cells):
        timing = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type != "code" or "shell.execute_reply" not in timing:
            continue
        t0, t1 = (_timestamp(timing[k]) for k in ("iopub.execute_input", "shell.execute_reply"))
        first = next((line for line in cell.source.splitlines() if line.strip() and not line.startswith("#")), "")
        cells.append({"cell": i, "seconds": t1 - t0, "source": first[:70]})
    return seconds, cells


def _timestamp(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def server_cpu_seconds(pid: int, name: str = "") -> float:
    """CPU seconds used so far by the process ``pid`` and all its children (Voila and its kernels); with
    ``name``, only by the children whose process name contains it (``"chrom"``: a benchmark's browsers)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = ([] if name else [root]) + [p for p in root.children(recursive=True) if not name or name in p.name()]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def kernel_memory(pid: int) -> tuple[int, float, float]:
    """(kernels, their unique memory in GB, their resident memory in GB) among the server's children."""
    import psutil

    kernels, uss, rss = 0, 0.0, 0.0
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0.0, 0.0
    for p in children:
        try:
            if "ipykernel" not in " ".join(p.cmdline()):
                continue
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        kernels, uss, rss = kernels + 1, uss + info.uss / 1e9, rss + info.rss / 1e9
    return kernels, uss, rss


def wait_until_idle(pid: int, timeout_s: float, window_s: float = 3.0) -> float:
    """Wait until the server uses under ``IDLE_CPU`` of a core over ``window_s``; the seconds waited."""
    start = time.monotonic()
    before = server_cpu_seconds(pid)
    while time.monotonic() - start < timeout_s:
        time.sleep(window_s)
        now = server_cpu_seconds(pid)
        if now - before < IDLE_CPU * window_s:
            break
        before = now
    return time.monotonic() - start


def open_page(browser, base: str, name: str) -> dict:
    """Open one notebook in a new browser context; its first-content and complete times (seconds)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    outside: list[str] = []

    def refuse(route) -> None:
        outside.append(route.request.url)
        route.fulfill(status=200, content_type="text/css", body="")

    context.route(lambda url: not url.startswith(base), refuse)
    context.add_init_script(OBSERVER)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    load = os.getloadavg()[0]
    page.goto(f"{base}/voila/render/{name}", wait_until="commit", timeout=PAGE_TIMEOUT_S * 1000)
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    state: dict = {}
    while time.monotonic() < deadline:
        time.sleep(0.25)
        try:
            state = page.evaluate(STATE)
        except Exception:  # noqa: BLE001 - the page is navigating or busy; ask again
            continue
        done = state["spinnerGone"] is not None and state["plots"] == state["drawn"]
        if done and state["now"] - max(state["last"], state["spinnerGone"]) > QUIET_MS:
            break
    complete = max(state.get("last") or 0, state.get("spinnerGone") or 0) / 1000 if state.get("spinnerGone") else None
    timed_out = time.monotonic() >= deadline
    context.close()
    return {
        "notebook": name,
        "first_s": None if state.get("first") is None else state["first"] / 1000,
        "spinner_s": None if state.get("spinnerGone") is None else state["spinnerGone"] / 1000,
        "complete_s": None if timed_out else complete,
        "load": load,
        "load_after": os.getloadavg()[0],
        "outputs": state.get("outputs"), "widgets": state.get("widgets"),
        "plots": state.get("plots"), "drawn": state.get("drawn"), "missing_models": state.get("missing"),
        "errors": errors, "outside_requests": outside,
    }


def preheated(log: Path, name: str) -> int:
    """How often Voila's log says it served ``name`` from a preheated kernel."""
    return len(re.findall(rf"Using pre-heated kernel: \S+ for {re.escape(name)}", log.read_text(errors="replace")))


def measure_pages(paths: list[Path], idle_timeout: float, visits: int) -> dict:
    from playwright.sync_api import sync_playwright

    log = Path("/tmp") / f"dclab-page-open-{os.getpid()}.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc, base = start_voila(out)
    results: list[dict] = []
    try:
        answered = time.monotonic() - started
        settle = wait_until_idle(proc.pid, idle_timeout)
        memory = kernel_memory(proc.pid)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
            for visit in range(1, visits + 1):
                for path in paths:
                    waited = settle if (visit == 1 and path == paths[0]) else wait_until_idle(proc.pid, idle_timeout)
                    used_before = preheated(log, path.name)
                    since_start = time.monotonic() - started
                    row = open_page(browser, base, path.name)
                    row.update(visit=visit, idle_wait_s=waited, since_start_s=since_start,
                               preheated=preheated(log, path.name) > used_before)
                    results.append(row)
                    print(json.dumps(row), flush=True)
            browser.close()
    finally:
        stop(proc)
    return {"answered_s": answered, "settle_s": settle, "memory": memory, "rows": results, "log": str(log)}


def _fmt(x: float | None, goal: float) -> str:
    if x is None:
        return "timed out"
    return f"**{x:.1f}**" if x > goal else f"{x:.1f}"


def table(rows: list[dict]) -> list[str]:
    """The page-open table: one line per notebook, four columns per visit."""
    by = {(r["notebook"], r["visit"]): r for r in rows}
    names = list(dict.fromkeys(r["notebook"] for r in rows))
    visits = sorted({r["visit"] for r in rows})
    head = "| notebook | " + " | ".join(
        f"visit {v}: first content (s) | visit {v}: complete (s) | visit {v}: preheated | visit {v}: load" for v in visits)
    lines = [head + " |", "|---" * (1 + 4 * len(visits)) + "|"]
    for name in names:
        cells = []
        for v in visits:
            r = by[(name, v)]
            cells += [_fmt(r["first_s"], FIRST_CONTENT_GOAL_S), _fmt(r["complete_s"], COMPLETE_GOAL_S),
                      "yes" if r["preheated"] else "no", f"{r['load']:.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def report(pages: dict, profile: dict[str, tuple[float, list[dict]]], baseline: dict | None) -> str:
    rows = pages["rows"]
    lines = table(rows)
    met = [r for r in rows if r["first_s"] is not None and r["complete_s"] is not None
           and r["first_s"] <= FIRST_CONTENT_GOAL_S and r["complete_s"] <= COMPLETE_GOAL_S]
    problems = [f"{r['notebook']} (visit {r['visit']}): {len(r['errors'])} page error(s) ({'; '.join(r['errors'][:2])})"
                for r in rows if r["errors"]]
    problems += [f"{r['notebook']} (visit {r['visit']}): {r['drawn']} of {r['plots']} figures drawn"
                 for r in rows if r["plots"] != r["drawn"]]
    problems += [f"{r['notebook']} (visit {r['visit']}): 'model not found' shown {r['missing_models']} time(s)"
                 for r in rows if r["missing_models"]]
    problems += [f"{r['notebook']} (visit {r['visit']}): {len(r['outside_requests'])} request(s) beyond 127.0.0.1"
                 for r in rows if r["outside_requests"]]
    text = [
        "## Opening each notebook under Voila (issue 13, part 3)",
        "",
        ("Voila started as `python -m dclab serve` starts it (`dclab.serve.start_voila`, the repository's `voila.json`), "
        "headless Chromium, a warm cache (every notebook had run once: its experiments are in dclab's cache). "
        "Times from the navigation: **first content** = the first output of a code cell visible; **complete** = the "
        f"last change to the page before {QUIET_MS / 1000:.0f} s without any, once Voila's spinner is gone and every "
        f"figure is drawn. Goal: first content within {FIRST_CONTENT_GOAL_S:.0f} s, complete within "
        f"{COMPLETE_GOAL_S:.0f} s (bold: missed). Visit 1 is the first visit after the server started, visit 2 the next "
        "one; before each visit the script waited until the server was idle (its preheated kernels had run their "
        f"notebooks): {pages['settle_s']:.0f} s after the server answered (it answered {pages['answered_s']:.1f} s "
        f"after its start; then {pages['memory'][0]} idle kernels held {pages['memory'][1]:.1f} GB of their own memory, "
        f"{pages['memory'][2]:.1f} GB resident with shared libraries), then "
        f"{', '.join(format(r['idle_wait_s'], '.0f') for r in rows[1:])} s. 'preheated': Voila's log says it served the "
        "page from a preheated kernel. Load: the 1-minute load average when the visit started, on "
        f"{os.cpu_count()} CPUs (the machine is shared)."),
        "",
        *lines,
        "",
        f"{len(met)} of {len(rows)} visits meet both goals.",
    ]
    if baseline:
        text += ["", f"Before these changes ({baseline.get('label') or 'an earlier run'}), measured by the same script "
                 "the same way:", "", *table(baseline["rows"])]
        if baseline.get("profile"):
            text += ["", "and the slowest cells then (kernel run, seconds): " + "; ".join(
                f"{name[:2]} {seconds:.0f} s: " + ", ".join(
                    f"[{c['cell']}] {c['seconds']:.1f} `{c['source'].replace('|', '/')}`"
                    for c in sorted(cells, key=lambda c: -c["seconds"])[:2])
                for name, (seconds, cells) in baseline["profile"].items()) + "."]
    if profile:
        text += ["", ("Where a page's time goes: each notebook run once more in a fresh kernel (nbclient, warm cache, "
                      "no Voila), its total and its slowest code cells (seconds):"), "",
                 "| notebook | kernel run (s) | slowest cells: [cell index] seconds, first line |", "|---|---|---|"]
        for name, (seconds, cells) in profile.items():
            top = sorted(cells, key=lambda c: -c["seconds"])[:4]
            text.append(f"| {name} | {seconds:.1f} | " + "; ".join(
                f"[{c['cell']}] {c['seconds']:.1f} `{c['source'].replace('|', '/')}`" for c in top) + " |")
    text += ["", "Problems seen: " + ("; ".join(problems) if problems else "none (no page error, every figure "
                                        "drawn, no widget model missing, no request beyond 127.0.0.1).")]
    return "\n".join(text)


def _plain(x: float | None) -> str:
    return "timed out" if x is None else f"{x:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", help="name prefixes, e.g. 00 01 05 (default: all 00-06)")
    parser.add_argument("--no-fill", action="store_true", help="the cache is already warm: do not run the notebooks first")
    parser.add_argument("--no-profile", action="store_true", help="skip the per-cell profile")
    parser.add_argument("--visits", type=int, default=2)
    parser.add_argument("--idle-timeout", type=float, default=240, help="longest wait for an idle server (s)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--baseline", type=Path, help="a --json file of an earlier run, quoted beside this one")
    parser.add_argument("--label", default="", help="what this run measures (kept in the --json file)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set DCLAB_CHROMIUM")

    paths = notebooks(args.notebooks)
    if not args.no_fill:
        for path in paths:
            seconds, _ = run_notebook(path)
            print(f"filled the cache: {path.name} ran in {seconds:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    profile = {}
    if not args.no_profile:
        for path in paths:
            profile[path.name] = run_notebook(path)
            print(f"profile: {path.name} {profile[path.name][0]:.1f} s", flush=True)
    pages = measure_pages(paths, args.idle_timeout, args.visits)
    if args.json:
        args.json.write_text(json.dumps({"label": args.label, **pages, "profile": profile}, indent=1))
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    markdown = report(pages, profile, baseline)
    print(markdown)
    if not args.no_write:
        write_section("page-open", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
