"""Serving the notebooks as Voila dashboards: the one launcher behind ``make demo``, the tests and the benchmarks.

Voila runs with the repository's ``voila.json`` (template ``dclab``: every asset from
127.0.0.1; kernel culling; a preheated kernel for every notebook). In a source checkout, where an
editable install does not copy the template into the environment, ``JUPYTER_PATH`` is
pointed at the checkout's ``share/jupyter`` so Voila finds it.

Why every page is preheated (``benchmarks/page_open.py`` measures it): a kernel needs seconds to
import torch and plotly before a lecture's first cell can show anything, and Voila's lab template
shows a page only once all its cells have run. With ``preheat_kernel`` Voila starts one kernel per
notebook when the server starts and runs the notebook in it; a visitor gets that page at once, and
Voila starts and runs a fresh kernel for the next visitor ``fill_delay`` (10 s) later: by then the
browser has drawn the page just served, which that run would otherwise slow down on a 2-core machine
(a reload within those seconds waits for the fresh kernel's run). Voila 0.5's
progressive rendering (outputs shown cell by cell) cannot be combined with preheated kernels
(Voila refuses to start), and would still wait for the imports, so it is off. The price is memory and
CPU: one idle kernel per notebook (their memory is in ``benchmarks/RESULTS.md``, section page-open),
and each visit reruns its notebook in the background (seconds on a warm cache: the lectures' slow
experiments and measurements are cached, ``dclab.lessons.store``).

Every kernel is forked from one process that has imported torch (``voila.json`` selects the ``dclab-fork``
provisioner, ``dclab.provisioner``): torch's ~300 MB per process are held once, not once per reader, and a kernel
starts without importing torch again.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from dclab.errors import DclabError

CHECKOUT = Path(__file__).resolve().parents[1]
NOTEBOOKS = CHECKOUT / "notebooks"
SHARE = CHECKOUT / "share" / "jupyter"
HOST = "127.0.0.1"

# Headless Debian Chromium for the browser tests and benchmarks (Playwright's own browsers cannot be
# downloaded offline); the flags keep it from calling out to Google's services.
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def voila_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the checkout's templates on ``JUPYTER_PATH``."""
    env = dict(os.environ if base is None else base)
    if SHARE.is_dir():
        paths = [str(SHARE), *[p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p]]
        env["JUPYTER_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def voila_command(port: int, notebooks: Path = NOTEBOOKS, host: str = HOST) -> list[str]:
    """The command line that serves ``notebooks`` on ``host:port``."""
    return [sys.executable, "-m", "voila", str(notebooks), "--no-browser", f"--port={port}", f"--Voila.ip={host}"]


def _handout_kernel_manager():
    """``HandOutKernelManager``: jupyter_server's kernel manager, whose culler counts a preheated kernel's
    idle time from when it was handed to a visitor, not from when it ran its notebook.

    Voila protects a pooled (preheated) kernel from the culler, but once it hands the kernel to a visitor
    the culler sees its last activity as the end of the notebook's run: on a server that waited longer
    than ``cull_idle_timeout`` for its first visitor, the page's kernel was culled at the next check,
    before the browser had connected, and the page never came alive. Voila asks this class to cull a
    kernel only once it has left the pool; the first time it asks, the kernel's activity clock starts now.
    """
    from jupyter_server._tz import utcnow
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    class HandOutKernelManager(AsyncMappingKernelManager):
        seen: set[str]

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            from dclab.provisioner import register

            register()  # voila.json's dclab-fork provisioner, also where the install predates its entry point

        async def cull_kernel_if_idle(self, kernel_id: str):
            seen = self.__dict__.setdefault("seen", set())
            kernel = self._kernels.get(kernel_id)
            if kernel is not None and kernel_id not in seen:
                seen.add(kernel_id)  # first seen outside the pool: handed out (or never pooled) just now
                kernel.last_activity = max(getattr(kernel, "last_activity", utcnow()), utcnow())
            return await super().cull_kernel_if_idle(kernel_id)

        async def shutdown_kernel(self, kernel_id: str, *args, **kwargs):
            self.__dict__.setdefault("seen", set()).discard(kernel_id)
            return await super().shutdown_kernel(kernel_id, *args, **kwargs)

    return HandOutKernelManager


def __getattr__(name: str):
    # built on first use: the launcher and the tests import this module without jupyter_server
    if name == "HandOutKernelManager":
        cls = _handout_kernel_manager()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def start_voila(log: IO[bytes], port: int | None = None, timeout_s: float = 120,
                notebooks: Path = NOTEBOOKS, extra_args: list[str] = ()) -> tuple[subprocess.Popen, str]:
    """Start Voila on ``notebooks`` in the background, wait until it answers; ``(process, base URL)``.

    It runs in the checkout, so the repository's ``voila.json`` applies to any folder served;
    ``extra_args`` override it (a benchmark's culling, for example)."""
    port = port or free_port()
    proc = subprocess.Popen(voila_command(port, notebooks) + list(extra_args), cwd=CHECKOUT, env=voila_environment(),
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(base + "/voila/api/shutdown", timeout=2)
        except urllib.error.HTTPError:
            return proc, base  # the server answers (405 or 404 is fine)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise DclabError(f"Voila did not start on {base} (see its log)") from None
            time.sleep(0.5)
        else:
            return proc, base


def stop(proc: subprocess.Popen, timeout_s: float = 20) -> None:
    """Ask Voila to stop; kill it if it has not within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()


def serve(port: int, host: str = HOST) -> int:
    """Serve the dashboards in the foreground (``python -m dclab serve``) until interrupted."""
    print(f"\n  dclab is starting: open http://{host}:{port}/voila/render/00_start_here.ipynb\n", flush=True)
    try:
        return subprocess.call(voila_command(port, host=host), cwd=CHECKOUT, env=voila_environment())
    except KeyboardInterrupt:
        return 0
