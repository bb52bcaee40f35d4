"""``dclab-fork``: a jupyter_client kernel provisioner that forks each Python kernel from ``dclab.forkserver``.

Registered as the ``dclab-fork`` entry point (``jupyter_client.kernel_provisioners``, pyproject.toml) and chosen
by ``voila.json`` (``KernelProvisionerFactory.default_provisioner_name``), so ``python -m dclab serve``, the
browser tests and the benchmarks' Voila fork their kernels; a Jupyter server or JupyterHub's single-user server
takes the same line in its ``jupyter_server_config.json``. It is ``LocalProvisioner`` (connection file, ports,
environment, interrupt, shutdown) except for the launch: a kernel whose command is this Python's
``-m ipykernel_launcher ...`` is forked from the fork server of its server process (one per environment that
a kernel sees, ``forkserver.shared_environment``, at most ``MAX_SERVERS``), started by its first kernel; anything else,
and every kernel when the fork server cannot start or answer, is launched the ordinary way, with a warning
in the server's log: a page always opens.

What it saves is measured by ``benchmarks/page_memory.py --fork`` (RESULTS.md, page-memory).
"""
from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sys
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner

from dclab.forkserver import ForkServer, ForkServerError, shared_environment

NAME = "dclab-fork"
KERNEL_MODULE = "ipykernel_launcher"
MAX_SERVERS = 4  # environments beyond these (a server that varies its kernels' environment) launch the ordinary way

# this server process's fork servers, by import environment; None: it could not start (not retried)
_servers: dict[tuple, ForkServer | None] = {}
_starting: dict[tuple, asyncio.Lock] = {}  # by environment and event loop


def fork_server_pids() -> list[int]:
    """The pids of this process's running fork servers (the benchmarks count their memory)."""
    return [s.process.pid for s in _servers.values() if s is not None and s.ready() is True]


def _close_all() -> None:
    for server in _servers.values():
        if server is not None:
            server.close()
    _servers.clear()


atexit.register(_close_all)


def register() -> None:
    """Make ``dclab-fork`` known to jupyter_client in this process, also where the installed package's metadata
    predates its entry point (an editable install made before it was added; ``pip install -e .`` registers it)."""
    from importlib.metadata import EntryPoint

    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    KernelProvisionerFactory.provisioners.setdefault(
        NAME, EntryPoint(NAME, f"{__name__}:ForkingProvisioner", KernelProvisionerFactory.GROUP_NAME))


def _forkable(cmd: list[str]) -> list[str] | None:
    """The kernel's arguments if ``cmd`` is ``<this python> -m ipykernel_launcher ...``, else None."""
    if len(cmd) < 3 or cmd[1:3] != ["-m", KERNEL_MODULE]:
        return None
    python = shutil.which(cmd[0]) or cmd[0]
    if os.path.abspath(python) != os.path.abspath(sys.executable):
        return None
    return cmd[3:]


class ForkingProvisioner(LocalProvisioner):
    """``LocalProvisioner`` whose Python kernels are forked from a fork server that has imported torch."""

    async def _fork_server(self, env: dict[str, str]) -> ForkServer | None:
        key = shared_environment(env)
        lock = _starting.setdefault((key, id(asyncio.get_running_loop())), asyncio.Lock())
        async with lock:  # the kernels Voila preheats at start wait for one fork server
            server = _servers.get(key, False)
            if server is None:
                return None
            if server is not False and server.ready() is True:
                return server
            if server is not False:  # it has died: a new one takes its place
                server.close()
            elif len(_servers) >= MAX_SERVERS:
                self.log.info("dclab-fork: %d fork servers run already: this kernel is launched the ordinary way",
                              len(_servers))
                return None
            server = ForkServer(env)
            try:
                server.start()
                while (state := server.ready()) is None:
                    await asyncio.sleep(0.1)
                if not state:
                    raise ForkServerError("the fork server exited while importing (its error is in the log above)")
            except (OSError, ForkServerError) as e:
                server.close()
                self.log.warning("dclab-fork: kernels are launched the ordinary way: %s", e)
                _servers[key] = None
                return None
            _servers[key] = server
            return server

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        args, stdio = _forkable(cmd), _stdio(kwargs)
        env = dict(kwargs.get("env") or os.environ)
        server = await self._fork_server(env) if args is not None and stdio is not None else None
        if server is None:
            return await super().launch_kernel(cmd, **kwargs)
        if not kwargs.get("independent"):
            env["JPY_PARENT_PID"] = str(os.getpid())  # as jupyter_client's launcher sets it (the child names its parent)
        cwd = kwargs.get("cwd")
        try:
            self.process = server.fork(KERNEL_MODULE, args, env, str(cwd) if cwd else None, stdio)
        except ForkServerError as e:
            self.log.warning("dclab-fork: this kernel is launched the ordinary way: %s", e)
            return await super().launch_kernel(cmd, **kwargs)
        self.pid = self.pgid = self.process.pid  # the child called setsid before it answered
        self.cwd = cwd or os.getcwd()
        self.log.debug("dclab-fork: kernel %s forked, pid %d", self.kernel_id, self.pid)
        return self.connection_info


def _stdio(kwargs: dict[str, Any]) -> tuple[int, int] | None:
    """The kernel's stdout and stderr descriptors as Popen would have them (given, or this process's);
    None when the server asked for a pipe (``subprocess.PIPE``): not for a forked kernel."""
    fds = []
    for name, default in (("stdout", 1), ("stderr", 2)):
        stream = kwargs.get(name)
        fds.append(default if stream is None else stream if isinstance(stream, int) else stream.fileno())
    return None if any(fd < 0 for fd in fds) else (fds[0], fds[1])
