"""Shared fixtures. Unit tests use synthetic tensors; only fixtures marked here touch MNIST."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dclab.serve import CHROMIUM, CHROMIUM_FLAGS

ROOT = Path(__file__).resolve().parents[1]

HEAVY_IMPORTS = ("torch._dynamo", "torchvision", "pandas")
"""Modules a page should not import for nothing (issue 14): ~75, ~90 (with torch._dynamo) and ~25 MB of a
reader's kernel."""


def heavy_imports_after(code: str, *args: str, env: dict | None = None) -> tuple[str, list[str]]:
    """Run ``code`` in a fresh Python (``sys.argv[1:]`` = ``args``): (what it printed, the ``HEAVY_IMPORTS`` it
    left in ``sys.modules``)."""
    probe = f"\nimport sys as _s\nprint('HEAVY', sorted(m for m in {HEAVY_IMPORTS!r} if m in _s.modules))\n"
    result = subprocess.run([sys.executable, "-c", code + probe, *args], capture_output=True, text=True, cwd=ROOT,
                            env=env)
    assert result.returncode == 0, result.stderr
    out, _, heavy = result.stdout.rpartition("HEAVY ")
    return out.strip(), ast.literal_eval(heavy)


NOTEBOOKS = ROOT / "notebooks"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_collection_modifyitems(config, items):
    """Browser tests last (stable order otherwise): by then the notebooks' experiments are in the cache, so a
    page under Voila opens in seconds instead of computing them while a browser waits."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def mnist_test():
    """The 10,000 MNIST test digits (needs DCLAB_DATA or a download)."""
    from dclab.data import load_mnist

    return load_mnist("test")


@pytest.fixture(scope="session")
def mnist_train():
    """The 60,000 MNIST training digits."""
    from dclab.data import load_mnist

    return load_mnist("train")


@pytest.fixture(scope="session")
def untrained_lenet300():
    """A seeded, untrained LeNet-300-100: for tests that check consistency (a widget shows what the engine
    writes and what the decoded file scores), which hold for any weights and need no training."""
    from dclab.models import LeNet300

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return LeNet300().eval()


@pytest.fixture(scope="session")
def synthetic_digits():
    """1,000 seeded noise images with labels 0-9: test data for consistency checks (no MNIST needed)."""
    from dclab.data import Digits

    g = torch.Generator().manual_seed(0)
    return Digits(torch.randn(1000, 1, 28, 28, generator=g), torch.randint(0, 10, (1000,), generator=g))


@pytest.fixture(scope="session")
def lenet300():
    """Trained LeNet-300-100 from the cache (trained once if missing). Do not modify: copy it."""
    from dclab.zoo import pretrained

    return pretrained("lenet300", progress=False)


@pytest.fixture(scope="session")
def lenet5():
    """Trained LeNet-5 from the cache (trained once if missing). Do not modify: copy it."""
    from dclab.zoo import pretrained

    return pretrained("lenet5", progress=False)


# ---------------------------------------------------------------- real browser under Voila

@pytest.fixture(scope="session")
def voila_server(tmp_path_factory):
    """Voila serving notebooks/ on 127.0.0.1 with the repo's voila.json (dclab.serve); yields the base URL."""
    from dclab.errors import DclabError
    from dclab.serve import start_voila, stop

    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with open(log, "wb") as out:
        try:
            proc, base = start_voila(out)
        except DclabError as exc:
            pytest.fail(f"{exc}:\n{log.read_text()[-3000:]}")
    yield base
    stop(proc)


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium driven by Playwright (Playwright's own browsers cannot be downloaded here)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set DCLAB_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


class DashboardPage:
    """A Voila page in Chromium that records page errors and console errors."""

    IGNORED_CONSOLE = ("favicon",)

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", self._page_error)
        page.on("console", self._console)
        page.on("requestfailed", lambda req: self.errors.append(f"request failed: {req.url} ({req.failure})"))

    def _page_error(self, exc) -> None:
        self.errors.append(f"pageerror: {exc}")

    def _console(self, msg) -> None:
        if msg.type == "error" and not any(s in msg.text for s in self.IGNORED_CONSOLE):
            self.errors.append(f"console: {msg.text}")

    def outside_request(self, route) -> None:
        """Every asset must come from 127.0.0.1 (a classroom may have no internet): any other request fails the test."""
        self.errors.append(f"outside request (the page must work offline): {route.request.url}")
        route.abort()

    def text(self, selector: str) -> str:
        """The visible text of the first element matching ``selector``."""
        return self.page.locator(selector).first.inner_text()

    def wait_for_change(self, selector: str, old: str, timeout_ms: int = 60_000) -> str:
        """Wait until the text at ``selector`` differs from ``old``; return the new text."""
        self.page.wait_for_function(
            "([sel, old]) => { const e = document.querySelector(sel); return e && e.innerText !== old; }",
            arg=[selector, old], timeout=timeout_ms,
        )
        return self.text(selector)

    def wait_until_executed(self, timeout_ms: int = 600_000) -> None:
        """Wait until Voila has run every cell and shown the page (its loading spinner is removed)."""
        self.page.wait_for_function("() => !document.getElementById('loading')", timeout=timeout_ms)
        self.page.wait_for_timeout(1500)  # the last outputs' views render

    def assert_no_errors(self) -> None:
        """No page error, console error or failed or outside request, from opening until every cell has run."""
        self.wait_until_executed()
        assert not self.errors, "the page logged errors:\n" + "\n".join(self.errors)


@pytest.fixture
def open_dashboard(chromium, voila_server):
    """``open_dashboard("02_pruning.ipynb", wait_for=".dclab-prune-explorer")`` -> DashboardPage."""
    contexts = []

    def open_(notebook: str, wait_for: str = ".jupyter-widgets", timeout_s: float = 600) -> DashboardPage:
        # Voila streams the page while the kernel runs the cells; on an empty cache a lecture first computes
        # its experiments (minutes), so wait for the first bytes, then for the element, not for "load"
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        dashboard = DashboardPage(context.new_page())
        context.route(lambda url: not url.startswith(voila_server), dashboard.outside_request)
        dashboard.page.goto(f"{voila_server}/voila/render/{notebook}", timeout=timeout_s * 1000, wait_until="commit")
        dashboard.page.wait_for_selector(wait_for, timeout=timeout_s * 1000)
        return dashboard

    yield open_
    for context in contexts:
        context.close()


def notebook_solutions() -> dict:
    """The exercises' reference solutions, run from the lecture notebooks themselves (their one copy).

    Every code cell with a ``### BEGIN SOLUTION`` region contributes its imports and functions
    (nothing else of the cell runs), executed in one namespace per notebook.
    """
    import ast
    import json

    found = {}
    for path in sorted(NOTEBOOKS.glob("0[1-5]_*.ipynb")):
        namespace: dict = {}
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or "### BEGIN SOLUTION" not in source:
                continue
            keep = [n for n in ast.parse(source).body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
            exec(compile(ast.Module(body=keep, type_ignores=[]), f"{path.name}", "exec"), namespace)
            found.update({n.name: namespace[n.name] for n in keep if isinstance(n, ast.FunctionDef)
                          and "### BEGIN SOLUTION" in ast.get_source_segment(source, n)})
    return found

