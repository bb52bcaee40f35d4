"""Benchmark: one Voila server under a classroom's load (issue 14).

    DCLAB_DATA=../shared/data python benchmarks/classroom.py [--readers 10] [--lecture 03] [--moves 3] [--cull-after 120]

One Voila server on 127.0.0.1, started as ``python -m dclab serve`` starts it (``dclab.serve.voila_command``:
the repository's ``voila.json``, template ``dclab``, a preheated kernel per notebook), with kernel culling made
short for the benchmark (``--MappingKernelManager.cull_idle_timeout=--cull-after``, ``cull_interval=--cull-every``;
the repository's config culls after 15 minutes). Once its preheated kernels have run their notebooks and it is
idle, ``--readers`` readers start at the same moment, each a Playwright browser context in one headless
Chromium. Each reader opens the capstone dashboard (notebook 06), moves its fc bits slider ``--moves`` times,
then opens a lecture page in a second tab (``--lecture``, default notebook 03) and moves its bit-width slider
``--moves`` times; both tabs stay open until every reader is done, then all readers leave (contexts closed).

Measured:

- **time to first chart**: from the navigation to the first plotly chart drawn on the page (``.js-plotly-plot``
  with its ``.main-svg``), noted in the page by a MutationObserver installed before Voila's scripts run;
- **slider redraw**: from the ``keydown`` on a slider handle to the first DOM change after which the chart
  differs (06: the waterfall's labels; 03: the traces' paths), while the other readers still open and move;
- **memory per kernel**: every kernel of the server (found by ``psutil``; each reader's kernels identified by
  the kernel id in its pages' websocket URLs), RSS, USS (private pages, what each more student costs) and PSS,
  sampled every few seconds; the server's totals before the readers, with every reader on, and after they left;
- **culling**: how long until the server is back to its kernel count before the readers, and its memory then.

A single run is bounded (about 10 minutes with the defaults): ``--time-limit`` for all readers together (a page not
drawn by then counts as not opened; a slider move waits at most ``REDRAW_TIMEOUT_S``), ``--cull-timeout`` for the
culling; readers are reduced (and the report says so) when the machine has less free memory than ``--readers``
need (``MB_PER_READER``). A kernel culled while the readers are on is counted; one just handed out from the
preheated pool should never be (``dclab.serve.HandOutKernelManager`` starts its idle clock at the hand-out).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402
from page_open import server_cpu_seconds as cpu_seconds, wait_until_idle  # noqa: E402

from dclab.serve import CHROMIUM, CHROMIUM_FLAGS, start_voila, stop  # noqa: E402

DASHBOARD = "06_deep_compression_dashboard.ipynb"
LECTURES = {"02": "02_pruning.ipynb", "03": "03_weight_sharing.ipynb"}
# per page: the widget's figure once drawn, the slider moved, the key, and what of the figure a redraw changes
PAGES = {
    DASHBOARD: {"ready": ".dclab-figure .waterfalllayer text", "slider": ".dclab-fc-bits", "key": "ArrowLeft",
                "root": ".dclab-dashboard", "signature": ".dclab-figure .waterfalllayer text"},
    "03_weight_sharing.ipynb": {"ready": ".dclab-bits-figure .cartesianlayer .overplot path", "key": "ArrowRight",
                                "slider": ".dclab-bits-slider", "root": ".dclab-bit-width",
                                "signature": ".dclab-bits-figure .cartesianlayer .overplot path"},
    "02_pruning.ipynb": {"ready": ".dclab-prune-figure .cartesianlayer .overplot path", "key": "ArrowLeft",
                         "slider": ".dclab-prune-sparsity", "root": ".dclab-prune-explorer",
                         "signature": ".dclab-prune-figure .cartesianlayer .overplot path"},
}
MB_PER_READER = 1800  # two kernels (~0.5 GB own memory each, more while they start) and two Chromium tabs
SAMPLE_S = 3.0
REDRAW_TIMEOUT_S = 30

FIRST_CHART = """(() => {
  const s = window.__classroom = {chart: null};
  new MutationObserver((_, obs) => {
    if (s.chart === null && document.querySelector('.js-plotly-plot .main-svg')) { s.chart = performance.now(); obs.disconnect(); }
  }).observe(document, {subtree: true, childList: true});
})();"""

REDRAW = """(cfg) => {
  const root = document.querySelector(cfg.root);
  const sig = () => Array.from(root.querySelectorAll(cfg.signature)).map(e => e.getAttribute('d') || e.textContent).join('|');
  const s = window.__redraw = {t0: null, t: null, before: null};
  document.addEventListener('keydown', () => Object.assign(s, {t0: performance.now(), t: null, before: sig()}), true);
  new MutationObserver(() => { if (s.t0 !== null && s.t === null && sig() !== s.before) s.t = performance.now(); })
    .observe(root, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


# ---------------------------------------------------------------- the server and its kernels


def private_dirty(pid: int) -> int:
    """``Private_Dirty`` of ``pid`` (bytes, from ``/proc/<pid>/smaps_rollup``): its own anonymous memory."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def kernel_memory(server_pid: int) -> dict[str, dict]:
    """``{kernel id: {pid, rss, uss, pss, own}}`` (bytes) of every ipykernel the server runs."""
    import psutil

    out = {}
    try:
        children = psutil.Process(server_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for p in children:
        try:
            cmd = p.cmdline()
            if not any("ipykernel" in c for c in cmd):
                continue
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        kid = next((Path(c).stem.removeprefix("kernel-") for c in cmd if c.endswith(".json")), str(p.pid))
        out[kid] = {"pid": p.pid, "rss": info.rss, "uss": info.uss, "pss": info.pss, "own": private_dirty(p.pid)}
    return out


def totals(kernels: dict[str, dict]) -> dict:
    return {"kernels": len(kernels), **{k: sum(v[k] for v in kernels.values()) for k in ("rss", "uss", "pss", "own")}}


def process_memory(pid: int) -> dict:
    """RSS/USS/PSS of one process (the Voila server itself)."""
    import psutil

    try:
        info = psutil.Process(pid).memory_full_info()
    except psutil.Error:
        return {"rss": 0, "uss": 0, "pss": 0}
    return {"rss": info.rss, "uss": info.uss, "pss": info.pss}


def chromium_memory(pid: int) -> int:
    """Summed USS of the Chromium processes under this script (the readers' side, not the server's)."""
    import psutil

    total = 0
    for p in psutil.Process(pid).children(recursive=True):
        try:
            if "chrom" in p.name():
                total += p.memory_full_info().uss
        except psutil.Error:
            pass
    return total


class Sampler(threading.Thread):
    """Samples the server's kernels every ``SAMPLE_S`` seconds: the timeline and each kernel's largest memory."""

    def __init__(self, server_pid: int) -> None:
        super().__init__(daemon=True)
        self.server_pid, self.timeline, self.peak_by_kernel, self.stopped = server_pid, [], {}, threading.Event()
        self.start_time = time.monotonic()

    def sample(self) -> dict:
        kernels = kernel_memory(self.server_pid)
        for kid, m in kernels.items():
            peak = self.peak_by_kernel.setdefault(kid, dict(m))
            for k in ("rss", "uss", "pss", "own"):
                peak[k] = max(peak[k], m[k])
        row = {"t": time.monotonic() - self.start_time, "load": os.getloadavg()[0], **totals(kernels)}
        self.timeline.append(row)
        return row

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_S):
            self.sample()


# ---------------------------------------------------------------- the readers


async def open_and_move(context, base: str, name: str, moves: int, deadline: float, reader: int) -> dict:
    """Open ``name`` in a new tab of ``context``; its first-chart time, its kernel and its slider redraws
    (nothing is waited for past ``deadline``, a ``time.monotonic()``)."""
    spec = PAGES[name]
    page = await context.new_page()
    kernels: list[str] = []
    errors: list[str] = []
    page.on("websocket", lambda ws: kernels.append(ws.url.split("/api/kernels/")[1].split("/")[0])
            if "/api/kernels/" in ws.url else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    row = {"reader": reader, "page": name, "load": os.getloadavg()[0], "first_chart_s": None, "ready_s": None,
           "redraw_ms": [], "errors": errors}
    start = time.monotonic()
    left = lambda: max(1.0, deadline - time.monotonic()) * 1000  # noqa: E731  (milliseconds)
    try:
        if time.monotonic() > deadline:
            raise TimeoutError("the readers' time was up before this page was opened")
        await page.goto(f"{base}/voila/render/{name}", wait_until="commit", timeout=left())
        await page.wait_for_selector(spec["ready"], timeout=left())
        row["ready_s"] = time.monotonic() - start
        chart = await page.evaluate("() => window.__classroom.chart")
        row["first_chart_s"] = None if chart is None else chart / 1000
        await page.evaluate(REDRAW, spec)
        handle = page.locator(f"{spec['root']} {spec['slider']} .noUi-handle")
        for _ in range(moves):
            if time.monotonic() > deadline:
                break
            await handle.focus()
            await page.keyboard.press(spec["key"])
            try:
                await page.wait_for_function("() => window.__redraw.t !== null", polling=20,
                                             timeout=min(REDRAW_TIMEOUT_S * 1000, left()))
                row["redraw_ms"].append(await page.evaluate("() => window.__redraw.t - window.__redraw.t0"))
            except Exception:  # noqa: BLE001 - no redraw within REDRAW_TIMEOUT_S: recorded as such
                row["redraw_ms"].append(None)
            await page.wait_for_timeout(300)
    except Exception as exc:  # noqa: BLE001 - a page that did not open in time is a result, not a crash
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    row["kernel"] = kernels[0] if kernels else None
    row["load_after"] = os.getloadavg()[0]
    print(json.dumps({k: v for k, v in row.items() if k != "errors"}), flush=True)
    return row


async def reader(browser, base: str, index: int, pages: list[str], moves: int,
                 deadline: float) -> tuple[list[dict], object]:
    """One reader: a browser context that opens ``pages`` one after the other, each left open."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    await context.route(lambda url: not url.startswith(base),
                        lambda route: route.fulfill(status=200, content_type="text/css", body=""))
    await context.add_init_script(FIRST_CHART)
    rows = [await open_and_move(context, base, name, moves, deadline, index) for name in pages]
    return rows, context


async def classroom(base: str, n: int, pages: list[str], moves: int, time_limit: float, sampler: Sampler,
                    log: Path) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        start = time.monotonic()
        cpu_start = cpu_seconds(sampler.server_pid), cpu_seconds(os.getpid(), "chrom")
        results = await asyncio.gather(*(reader(browser, base, i, pages, moves, start + time_limit) for i in range(n)))
        readers_s = time.monotonic() - start
        cpu = {"server": cpu_seconds(sampler.server_pid) - cpu_start[0],
               "chromium": cpu_seconds(os.getpid(), "chrom") - cpu_start[1]}
        log_at_leave = log.stat().st_size
        on = sampler.sample()  # every reader still has both tabs open
        kernels_on = kernel_memory(sampler.server_pid)
        browser_uss = chromium_memory(os.getpid())
        for _, context in results:
            await context.close()
        left_at = time.monotonic()
        await browser.close()
    return {"rows": [r for rows, _ in results for r in rows], "readers_s": readers_s, "on": on, "cpu": cpu,
            "kernels_on": kernels_on, "browser_uss": browser_uss, "left_at": left_at, "log_at_leave": log_at_leave}


# ---------------------------------------------------------------- report


def pct(xs: list[float], q: float) -> float | None:
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def _s(x: float | None, unit: str = "s", digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f} {unit}"


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB"


def _mb(x: float) -> str:
    return f"{x / 2**20:.0f}"


def log_events(log: Path, at_leave: int) -> dict:
    """From Voila's log: kernels culled (in all, and while the readers were on), which of those had just been
    handed out from the preheated pool, and how many pages were served from it."""
    text = log.read_text(errors="replace")
    during = text[:at_leave]
    handed = set(re.findall(r"Using pre-heated kernel: ([\w-]+)", during))
    culled_during = re.findall(r"Culling 'idle' kernel '\w+' \(([\w-]+)\)", during)
    return {"culled": text.count("Culling 'idle' kernel"), "culled_during": len(culled_during),
            "culled_handed_out": len([k for k in culled_during if k in handed]),
            "preheated": len(re.findall(r"Using pre-heated kernel", text))}


def report(r: dict) -> str:
    rows, args = r["rows"], r["args"]
    lines = [f"## Voila under a classroom's load: {r['readers']} readers (issue 14)", ""]
    asked = f" (asked for {args['readers']}; {r['reduced']})" if r.get("reduced") else ""
    lecture = r["pages"][1][:2] if len(r["pages"]) > 1 else None
    lines.append(
        f"One Voila server as `python -m dclab serve` starts it (`voila.json`: a preheated kernel per notebook; "
        f"culling after {args['cull_after']} s idle, checked every {args['cull_every']} s, for the benchmark) and "
        f"**{r['readers']} readers**{asked} starting at the same moment (given {args['time_limit']:.0f} s in all), each a browser context in one headless "
        f"Chromium: the capstone dashboard (06), its fc bits slider moved {args['moves']} times"
        + (f", then lecture {lecture} in a second tab, its bit-width slider moved {args['moves']} times" if lecture else "")
        + f"; both tabs kept open until every reader was done ({r['readers_s']:.0f} s after they started), then "
        f"every reader left. {os.cpu_count()} CPUs, shared with other work: 1-minute load average "
        f"{r['load_start']:.1f} before the readers, {r['load_max']:.1f} at most while they read.")
    lines += ["", "| page | opened | first chart p50 | first chart p95 | slider redraw p50 | slider redraw p95 | "
              "redraws missing | kernel own memory (MB, median / max) | USS (MB, median) | PSS (MB, median) | "
              "RSS (MB, median) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    kernels_on = r["kernels_on"]
    for name in r["pages"]:
        page_rows = [x for x in rows if x["page"] == name]
        ok = [x for x in page_rows if x["ready_s"] is not None]
        redraws = [m for x in ok for m in x["redraw_ms"]]
        mem = [r["peaks"][x["kernel"]] for x in page_rows if x.get("kernel") in r["peaks"]]
        now = [kernels_on[x["kernel"]] for x in page_rows if x.get("kernel") in kernels_on]
        med = (lambda k, src: statistics.median(m[k] for m in src) if src else 0)  # noqa: E731
        lines.append(
            f"| {name[:2]} | {len(ok)} of {len(page_rows)} | {_s(pct([x['first_chart_s'] for x in ok], 0.5))} | "
            f"{_s(pct([x['first_chart_s'] for x in ok], 0.95))} | "
            f"{_s(pct(redraws, 0.5), 'ms', 0)} | {_s(pct(redraws, 0.95), 'ms', 0)} | "
            f"{sum(m is None for m in redraws)} of {len(redraws)} | **{_mb(med('own', now))}** / "
            f"{_mb(max((m['own'] for m in mem), default=0))} | {_mb(med('uss', now))} | {_mb(med('pss', now))} | "
            f"{_mb(med('rss', now))} |")
    b, on, after, ev = r["before"], r["on"], r["after"], r["events"]
    lines += [
        "",
        "First chart: from the navigation to the first plotly chart drawn (Voila's lab template shows a page once "
        "all its cells have run, so this is the page's wait). Slider redraw: from the key press on the slider to "
        "the chart changed, while the other readers still open pages and move. Kernel memory: each reader's "
        "kernel with both tabs open (median over readers; max: the largest any sample saw). **own** = "
        "`Private_Dirty` (`/proc/<pid>/smaps_rollup`): memory that belongs to that kernel alone, what one more "
        "student costs. USS adds library pages only it maps; PSS shares the libraries' pages (torch's) among the "
        "kernels; RSS counts them in full for each.",
        "",
        "| server's kernels | count | own total | USS total | PSS total | RSS total | 1-min load |",
        "|---|---|---|---|---|---|---|",
        f"| before the readers (idle, preheated) | {b['kernels']} | {_gb(b['own'])} | {_gb(b['uss'])} | "
        f"{_gb(b['pss'])} | {_gb(b['rss'])} | {b['load']:.1f} |",
        f"| every reader on | {on['kernels']} | {_gb(on['own'])} | {_gb(on['uss'])} | {_gb(on['pss'])} | "
        f"{_gb(on['rss'])} | {on['load']:.1f} |",
        f"| {r['culled_s']:.0f} s after they left | {after['kernels']} | {_gb(after['own'])} | {_gb(after['uss'])} | "
        f"{_gb(after['pss'])} | {_gb(after['rss'])} | {after['load']:.1f} |",
        "",
        (f"Culling {'returned' if r['culled'] else 'had not returned'} the server to its kernel count before the "
         f"readers ({b['kernels']}) {r['culled_s']:.0f} s after they left ({ev['culled']} kernels culled in all). "
         f"Most seen at once: {r['max_kernels']} kernels, {_gb(r['max_own'])} own memory. The Voila server process "
         f"itself (it keeps each preheated page rendered): {_mb(r['server']['own'])} MB own at the end. Chromium (the "
         f"readers' side) held {_gb(r['browser_uss'])} USS for {len(r['pages']) * r['readers']} tabs. "
         f"{ev['preheated']} pages were served from a preheated kernel. CPU used while the readers were on: "
         f"{r['cpu']['server']:.0f} s by the server and its kernels, {r['cpu']['chromium']:.0f} s by Chromium "
         f"(in a classroom the browsers run on the students' machines), in {r['readers_s']:.0f} s on "
         f"{os.cpu_count()} CPUs."),
    ]
    failed = []
    late = [f"{x['page'][:2]} (reader {x['reader']})" for x in rows if x.get("error")]
    if late:
        failed.append(f"{len(late)} page(s) not drawn in time: {', '.join(late)}")
    messages: dict[str, list[str]] = {}
    for x in rows:
        for e in dict.fromkeys(x["errors"]):
            messages.setdefault(e[:120], []).append(f"{x['page'][:2]} (reader {x['reader']})")
    failed += [f"page error '{m}' on {len(where)} page(s): {', '.join(where)}" for m, where in messages.items()]
    if ev["culled_during"]:
        failed.append(f"{ev['culled_during']} kernel(s) culled while the readers were on, {ev['culled_handed_out']} "
                      "of them just handed out from the preheated pool (dclab.serve.HandOutKernelManager should "
                      "prevent that: a page whose kernel is culled before its browser connects never comes alive)")
    lines += ["", "Problems: " + ("; ".join(failed) if failed else "none (every page opened, no page error, no "
                                  "kernel culled under a reader).")]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--lecture", default="03", choices=[*LECTURES, "none"], help="the lecture page each reader opens")
    parser.add_argument("--moves", type=int, default=3, help="slider moves per page")
    parser.add_argument("--cull-after", type=int, default=120,
                        help="cull_idle_timeout for the benchmark (s)")
    parser.add_argument("--cull-every", type=int, default=10, help="cull_interval for the benchmark (s)")
    parser.add_argument("--time-limit", type=float, default=360,
                        help="the readers' time (s): pages not open by then count as not opened")
    parser.add_argument("--cull-timeout", type=float, default=200, help="longest wait for culling (s)")
    parser.add_argument("--idle-timeout", type=float, default=240, help="longest wait for the idle server (s)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--section", default="classroom", help="the section of RESULTS.md to write")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set DCLAB_CHROMIUM")
    import psutil

    pages = [DASHBOARD] + ([] if args.lecture == "none" else [LECTURES[args.lecture]])
    readers, reduced = args.readers, ""
    log = Path("/tmp") / f"dclab-classroom-{os.getpid()}.log"
    with open(log, "wb") as out:
        proc, base = start_voila(out, extra_args=[f"--MappingKernelManager.cull_idle_timeout={args.cull_after}",
                                                      f"--MappingKernelManager.cull_interval={args.cull_every}"])
    try:
        settle = wait_until_idle(proc.pid, args.idle_timeout)
        free_mb = psutil.virtual_memory().available / 2**20
        fit = int((free_mb - 2048) // MB_PER_READER)
        if fit < readers:
            readers, reduced = max(1, fit), f"{free_mb / 1024:.1f} GB free fits {max(1, fit)}"
        sampler = Sampler(proc.pid)
        before = sampler.sample()
        print(f"server idle after {settle:.0f} s: {before}; {readers} readers", flush=True)
        sampler.start()
        result = asyncio.run(classroom(base, readers, pages, args.moves, args.time_limit, sampler, log))
        culled = False
        while time.monotonic() - result["left_at"] < args.cull_timeout:
            now = sampler.sample()
            if now["kernels"] <= before["kernels"]:
                culled = True
                break
            time.sleep(SAMPLE_S)
        culled_s = time.monotonic() - result["left_at"]
        after = sampler.sample()
        sampler.stopped.set()
        server = process_memory(proc.pid) | {"own": private_dirty(proc.pid)}
    finally:
        stop(proc)
    timeline = sampler.timeline
    out = {"args": vars(args) | {"json": str(args.json)}, "readers": readers, "reduced": reduced, "pages": pages,
           "load_start": before["load"], "before": before, "on": result["on"], "after": after, "culled": culled,
           "culled_s": culled_s, "readers_s": result["readers_s"], "rows": result["rows"],
           "kernels_on": result["kernels_on"], "peaks": sampler.peak_by_kernel, "browser_uss": result["browser_uss"],
           "server": server, "max_kernels": max(t["kernels"] for t in timeline),
           "max_own": max(t["own"] for t in timeline), "load_max": max(t["load"] for t in timeline),
           "events": log_events(log, result["log_at_leave"]), "cpu": result["cpu"], "timeline": timeline,
           "log": str(log)}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    markdown = report(out)
    print(markdown)
    if not args.no_write:
        write_section(args.section, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
