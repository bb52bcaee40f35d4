"""Benchmark: what one reader's kernel costs in memory, page by page (issue 14).

    DCLAB_DATA=../shared/data python benchmarks/page_memory.py [--notebooks 02 03 ...] [--no-train] [--json F]

Every notebook runs top to bottom in a fresh kernel (nbclient, on a warm cache: no experiment is
computed, as when a student opens the page), then one more cell waits for the page's background preload
(``CompressionSession.preload``, notebook 06: a reader's kernel finishes it seconds later) and reads the kernel's own
``/proc/self/smaps_rollup`` and ``/proc/self/status``:

- **RSS**: resident pages, counting in full the shared libraries' file pages (``libtorch_cpu.so``...),
  which the operating system keeps once for all kernels;
- **own** (``Private_Dirty``: anonymous memory, the heap, tensors, Python objects): pages that belong to
  this kernel alone whatever else runs, what each more student really costs;
- **USS** (``Private_Clean + Private_Dirty``) also counts library pages no *other* process maps right now:
  measured alone, as here, a kernel's torch pages are "private"; beside other kernels they are shared and
  USS falls to about "own". **PSS**: own plus a share of the shared pages;
- **peak**: ``VmHWM``, the largest RSS during the run (a page can load something, use it and free it);
- the MNIST splits held in memory, and whether torchvision, pandas, scipy were imported.

Beside the pages, three reference kernels: an empty one, one that ran ``import torch``, and one that
imported what every page imports (torch, plotly, ipywidgets, dclab). And, unless ``--no-train``, the page
that trains: notebook 02 after its "retrain the survivors" button ran (2 epochs on the 60,000 training digits).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
MARK = "DCLAB-MEMORY "

MEASURE = """
import json as _json, sys as _sys, threading as _threading
def _memory():
    for _t in _threading.enumerate():
        if _t.name == 'dclab-preload':
            _t.join()  # what the page loads in the background (notebook 06's other network) is part of its cost
    out = {}
    for line in open('/proc/self/smaps_rollup'):
        parts = line.split()
        if len(parts) == 3 and parts[2] == 'kB':
            out[parts[0].rstrip(':')] = int(parts[1]) * 1024
    for line in open('/proc/self/status'):
        if line.startswith(('VmHWM', 'VmRSS')):
            key, value, _ = line.split()
            out[key.rstrip(':')] = int(value) * 1024
    import gc as _gc
    sizes = {len(o) for o in _gc.get_objects() if type(o).__name__ == 'Digits' and len(o) >= 10000}
    out['mnist'] = [f'{n // 1000}k' for n in sorted(sizes)]
    out['modules'] = sorted(m for m in ('torchvision', 'torch._dynamo', 'pandas', 'scipy', 'sklearn', 'matplotlib')
                            if m in _sys.modules)
    return out
print(%r + _json.dumps(_memory()))
""" % MARK

REFERENCES = {
    "empty kernel": "",
    "import torch": "import torch",
    "imports of every page": "import torch, plotly.graph_objects, ipywidgets, dclab.viz.style, dclab.zoo",
}

TRAIN = """
_box = [v for v in Out.values() if hasattr(v, 'retrain')][-1]
_box.epochs.value = 2
_box.retrain()
print('retrained', _box.retrain_button.disabled)
"""


def _cells(path: Path | None, code: str, extra: str = ""):
    import nbformat

    nb = nbformat.read(path, as_version=4) if path else nbformat.v4.new_notebook()
    if not path and code:
        nb.cells.append(nbformat.v4.new_code_cell(code))
    if extra:
        nb.cells.append(nbformat.v4.new_code_cell(extra))
    nb.cells.append(nbformat.v4.new_code_cell(MEASURE))
    return nb


def measure(name: str, path: Path | None = None, code: str = "", extra: str = "", folder: Path = NOTEBOOKS) -> dict:
    """Run a notebook (or ``code``) in a fresh kernel; its memory at the end (bytes) and seconds."""
    from nbclient import NotebookClient

    nb = _cells(path, code, extra)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    seconds = time.perf_counter() - start
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    line = next(ln for ln in text.splitlines() if ln.startswith(MARK))
    m = json.loads(line[len(MARK):])
    row = {"page": name, "seconds": seconds, "load": load, "rss": m["Rss"], "pss": m["Pss"],
           "private": m["Private_Clean"] + m["Private_Dirty"], "private_dirty": m["Private_Dirty"],
           "anonymous": m["Anonymous"], "peak": m["VmHWM"], "mnist": m["mnist"], "modules": m["modules"]}
    print(json.dumps(row), flush=True)
    return row


def _rollup(pid: int) -> dict:
    """A process's ``/proc/<pid>/smaps_rollup`` (bytes), read from outside while the other kernels run."""
    out = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        parts = line.split()
        if len(parts) == 3 and parts[2] == "kB":
            out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def measure_together(pages: list[tuple[str, Path | None, str, str]], provisioner: str,
                     folder: Path = NOTEBOOKS) -> list[dict]:
    """Run every page, each in a kernel of its own launched by ``provisioner`` ("local-provisioner": an ordinary
    kernel; "dclab-fork": forked from dclab's fork server), keeping them all running; once all have run, read
    each kernel's memory from outside, with the others beside it (so PSS shares what they share), and the
    fork server's. Rows as ``measure``'s, plus ``own_inside``: own memory read by the kernel at its end."""
    from jupyter_client.manager import KernelManager
    from jupyter_client.provisioning.factory import KernelProvisionerFactory
    from nbclient import NotebookClient

    from dclab.provisioner import fork_server_pids, register

    register()
    KernelProvisionerFactory.instance().default_provisioner_name = provisioner
    running, rows = [], []
    try:
        for name, path, code, extra in pages:
            nb = _cells(path, code, extra)
            km = KernelManager(kernel_name="python3")
            load = os.getloadavg()[0]
            start = time.perf_counter()
            NotebookClient(nb, km=km, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": str(folder)}}).execute()
            running.append(km)
            text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
            m = json.loads(next(ln for ln in text.splitlines() if ln.startswith(MARK))[len(MARK):])
            rows.append({"page": name, "seconds": time.perf_counter() - start, "load": load, "peak": m["VmHWM"],
                         "mnist": m["mnist"], "modules": m["modules"], "own_inside": m["Private_Dirty"],
                         "pid": km.provisioner.pid})
            print(provisioner, json.dumps(rows[-1]), flush=True)
        for row in rows:
            r = _rollup(row["pid"])
            row.update(rss=r["Rss"], pss=r["Pss"], private=r["Private_Clean"] + r["Private_Dirty"],
                       private_dirty=r["Private_Dirty"], anonymous=r["Anonymous"])
        for pid in fork_server_pids():
            r = _rollup(pid)
            rows.append({"page": "(the fork server, once per server)", "seconds": 0, "load": os.getloadavg()[0],
                         "rss": r["Rss"], "pss": r["Pss"], "private": r["Private_Clean"] + r["Private_Dirty"],
                         "private_dirty": r["Private_Dirty"], "anonymous": r["Anonymous"], "peak": r["Rss"],
                         "mnist": [], "modules": [], "own_inside": r["Private_Dirty"], "pid": pid})
    finally:
        for km in running:
            km.shutdown_kernel(now=True)
    return rows


def _mb(x: float) -> str:
    return f"{x / 2**20:.0f}"


def table(rows: list[dict]) -> list[str]:
    lines = ["| page | RSS (MB) | own: private dirty (MB) | USS (MB) | PSS (MB) | peak RSS (MB) | MNIST in memory | "
             "also imported | run (s) | load |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['page']} | {_mb(r['rss'])} | **{_mb(r['private_dirty'])}** | {_mb(r['private'])} | "
                     f"{_mb(r['pss'])} | {_mb(r['peak'])} | "
                     f"{', '.join(r['mnist']) or '-'} | {', '.join(r['modules']) or '-'} | {r['seconds']:.0f} | "
                     f"{r['load']:.1f} |")
    return lines


def report(rows: list[dict], baseline: dict | None, note: str = "") -> str:
    text = [
        "## Memory of one reader's kernel, page by page (issue 14)",
        "",
        ("Each page run top to bottom in a fresh kernel (nbclient, warm cache: what a Voila page runs), then measured "
         "from inside the kernel (`/proc/self/smaps_rollup`), one kernel at a time. **own** = `Private_Dirty`: the "
         "kernel's anonymous memory (heap, tensors, Python objects), what one more student costs. USS adds the "
         "library pages no other process maps at that moment (alone, torch's are counted; beside other kernels they are "
         "shared), RSS counts every resident page, shared libraries in full (torch's `.so` files: ~250 MB resident), "
         "PSS splits the shared ones among the processes that map them. Peak: the largest RSS during the run. "
         "'also imported': heavy modules the page pulled in (`torch._dynamo`: ~900 modules, ~75 MB own memory, "
         "imported by torch on the first optimizer, meta-device forward or torchvision import). Load: 1-minute load "
         f"average when the run started, on {os.cpu_count()} CPUs (shared machine)."),
        "",
        *table(rows),
    ]
    if baseline:
        text += ["", f"Before ({baseline.get('label') or 'an earlier run'}), measured the same way:", "",
                 *table(baseline["rows"])]
    if note:
        text += ["", note]
    return "\n".join(text)


def together_table(rows: list[dict]) -> list[str]:
    lines = ["| page | own: private dirty (MB) | own, read inside at its end (MB) | USS (MB) | PSS (MB) | RSS (MB) | "
             "peak RSS (MB) | also imported | run (s) | load |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['page']} | **{_mb(r['private_dirty'])}** | {_mb(r['own_inside'])} | {_mb(r['private'])} | "
                     f"{_mb(r['pss'])} | {_mb(r['rss'])} | {_mb(r['peak'])} | {', '.join(r['modules']) or '-'} | "
                     f"{r['seconds']:.0f} | {r['load']:.1f} |")
    return lines


def together_report(ordinary: list[dict], forked: list[dict], note: str = "") -> str:
    pages = [r for r in forked if not r["page"].startswith("(")]
    before = {r["page"]: r for r in ordinary}
    changes = ", ".join(f"{r['page'][:2] if r['page'].endswith('.ipynb') else r['page']} "
                        f"{_mb(before[r['page']]['private_dirty'])} -> {_mb(r['private_dirty'])}"
                        for r in pages if r["page"] in before)
    server = [r for r in forked if r["page"].startswith("(")]
    total = lambda rows, k: sum(r[k] for r in rows) / 2**30  # noqa: E731
    text = [
        "## Memory of one reader's kernel, page by page (issue 14)",
        "",
        ("Every page run top to bottom (nbclient, on a cache warmed by an earlier run: what a Voila page runs), "
         "**each in a kernel of its own, all "
         "kept running together**, then each kernel's memory read from outside (`/proc/<pid>/smaps_rollup`) with the "
         "others beside it; twice: ordinary kernels (`local-provisioner`: `python -m ipykernel_launcher`), and kernels "
         "forked from dclab's fork server (`dclab-fork`, `dclab/forkserver.py`: one process per server that has "
         "imported numpy, torch and ipykernel's modules, frozen for the garbage collector; a page's kernel shares those "
         "pages with it copy-on-write). **own** = `Private_Dirty`: the pages that belong to one kernel alone, what one "
         "more student costs; for a forked kernel, what it wrote or allocated since the fork. USS adds the library "
         "pages no other process maps; PSS splits every shared page among the processes that map it (so it falls as "
         "kernels are added); RSS counts every resident page in full. Peak: the largest RSS during the run. Load: "
         f"1-minute load average when the page started, on {os.cpu_count()} CPUs (shared machine)."),
        "",
        "Forked from the fork server (`dclab-fork`, as `python -m dclab serve` launches them):",
        "",
        *together_table(forked),
        "",
        "Ordinary kernels (`local-provisioner`), the same pages, the same way, in the same run:",
        "",
        *together_table(ordinary),
        "",
        (f"Own memory per kernel, ordinary -> forked (MB): {changes}. All {len(pages)} kernels together: own "
         f"{total([r for r in ordinary if r['page'] in {p['page'] for p in pages}], 'private_dirty'):.2f} GB -> "
         f"{total(pages, 'private_dirty'):.2f} GB"
         + (f" plus the fork server's {_mb(server[0]['private_dirty'])} MB once" if server else "")
         + f"; PSS {total([r for r in ordinary if r['page'] in {p['page'] for p in pages}], 'pss'):.2f} GB -> "
         f"{total(pages + server, 'pss'):.2f} GB (fork server included)."),
    ]
    if note:
        text += ["", note]
    return "\n".join(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", help="name prefixes (default: all 00-06)")
    parser.add_argument("--no-references", action="store_true", help="skip the empty / import-torch kernels")
    parser.add_argument("--no-train", action="store_true", help="skip notebook 02 with its retrain button pressed")
    parser.add_argument("--folder", type=Path, default=NOTEBOOKS,
                        help="the notebooks to run (default: notebooks/; e.g. an older checkout's, with its dclab on "
                             "PYTHONPATH, for a before/after)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--baseline", type=Path, help="a --json file of an earlier run, quoted beside this one")
    parser.add_argument("--label", default="")
    parser.add_argument("--note", default="", help="a paragraph added under the tables")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--fork", action="store_true",
                        help="run the pages with their kernels all running together, ordinary kernels and then "
                             "kernels forked by dclab's provisioner (dclab-fork), and compare")
    args = parser.parse_args()

    paths = sorted(args.folder.glob("[0-9][0-9]_*.ipynb"))
    paths = [p for p in paths if not args.notebooks or any(p.name.startswith(x) for x in args.notebooks)]
    if args.fork:
        pages = [] if args.no_references else [(n, None, c, "") for n, c in REFERENCES.items()]
        pages += [(p.name, p, "", "") for p in paths]
        if not args.no_train:
            pages.append(("02 + retrain 2 epochs", args.folder / "02_pruning.ipynb", "", TRAIN))
        runs = {name: measure_together(pages, name, args.folder) for name in ("local-provisioner", "dclab-fork")}
        if args.json:
            args.json.write_text(json.dumps({"label": args.label, **runs}, indent=1))
        markdown = together_report(runs["local-provisioner"], runs["dclab-fork"], args.note)
        print(markdown)
        if not args.no_write:
            write_section("page-memory", markdown)
        return 0

    rows = []
    if not args.no_references:
        rows += [measure(name, code=code) for name, code in REFERENCES.items()]
    rows += [measure(p.name, p, folder=args.folder) for p in paths]
    if not args.no_train:
        rows.append(measure("02 + retrain 2 epochs", args.folder / "02_pruning.ipynb", extra=TRAIN, folder=args.folder))
    if args.json:
        args.json.write_text(json.dumps({"label": args.label, "rows": rows}, indent=1))
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    markdown = report(rows, baseline, args.note)
    print(markdown)
    if not args.no_write:
        write_section("page-memory", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
