"""Shared fixtures. Unit tests use synthetic tensors; only fixtures marked here touch MNIST."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

torch.set_num_threads(min(2, os.cpu_count() or 1))


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

CHROMIUM = os.environ.get("DCLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def voila_server(tmp_path_factory):
    """Voila serving notebooks/ on 127.0.0.1 with the repo's voila.json; yields the base URL."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = _free_port()
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voila", str(NOTEBOOKS), "--no-browser", f"--port={port}",
             "--Voila.ip=127.0.0.1"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(base + "/voila/api/shutdown", timeout=2)
        except urllib.error.HTTPError:
            break  # the server answers (405 or 404 is fine)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"Voila did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        else:
            break
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


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

    IGNORED_CONSOLE = ("favicon", "Failed to load resource: the server responded with a status of 404")

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", self._page_error)
        page.on("console", self._console)
        page.on("requestfailed", lambda req: self.failed_requests.append(req.url))
        self.failed_requests: list[str] = []

    # jupyterlab-plotly renders a static figure, then asks the output model to keep a PNG
    # snapshot through ``setData``, which Voila's output model lacks: harmless, the figure is drawn.
    IGNORED_PAGE_ERRORS = ("setData is not a function",)

    def _page_error(self, exc) -> None:
        if not any(s in str(exc) for s in self.IGNORED_PAGE_ERRORS):
            self.errors.append(f"pageerror: {exc}")

    def _console(self, msg) -> None:
        if msg.type == "error" and not any(s in msg.text for s in self.IGNORED_CONSOLE):
            self.errors.append(f"console: {msg.text}")

    # Voila's lab template links Font Awesome from a CDN; this machine is offline, so the tests
    # serve an empty stylesheet for it. Any other outside request is a bug (the app must work offline).
    CDN_STYLESHEETS = ("https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@",)

    def offline_request(self, route) -> None:
        url = route.request.url
        if url.startswith(self.CDN_STYLESHEETS):
            route.fulfill(status=200, content_type="text/css", body="")
        else:
            self.errors.append(f"outside request (the page must work offline): {url}")
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

    def assert_no_errors(self) -> None:
        assert not self.errors, "the page logged errors:\n" + "\n".join(self.errors + self.failed_requests)


@pytest.fixture
def open_dashboard(chromium, voila_server):
    """``open_dashboard("02_pruning.ipynb", wait_for=".dclab-prune-explorer")`` -> DashboardPage."""
    contexts = []

    def open_(notebook: str, wait_for: str = ".jupyter-widgets", timeout_s: float = 300) -> DashboardPage:
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        dashboard = DashboardPage(context.new_page())
        context.route(lambda url: not url.startswith(voila_server), dashboard.offline_request)
        dashboard.page.goto(f"{voila_server}/voila/render/{notebook}", timeout=timeout_s * 1000)
        dashboard.page.wait_for_selector(wait_for, timeout=timeout_s * 1000)
        return dashboard

    yield open_
    for context in contexts:
        context.close()
