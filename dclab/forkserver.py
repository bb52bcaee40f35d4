"""A fork server for Jupyter kernels: every reader's kernel shares one copy of torch (issue 14).

``import torch`` (the CUDA build) costs each process ~300 MB of memory of its own: its shared libraries'
relocated data and what their static initialisers allocate (``benchmarks/RESULTS.md``, page-memory). A
process that has imported torch and then forks shares those pages with its child until one of them writes
to a page (copy-on-write); torch's tables are written at start and then only read, so they stay shared.

The fork server ("zygote") is one process per Jupyter server: it imports ``PRELOAD`` (torch, numpy and
ipykernel's modules; nothing that looks at IPython, the terminal or the kernel's environment when imported:
plotly and ipywidgets choose their renderer and register their comm target at import, so a page imports
them in its own kernel), freezes the garbage collector's view of those objects (``gc.freeze``: the
collector would otherwise write to every object's header and copy its page), and then waits on a unix socket
in a private temporary folder. For each kernel start it forks one child, which becomes what
``python -m ipykernel_launcher -f <connection file>`` would have been: its own session and process group
(``os.setsid``: the server interrupts and kills the group), the standard streams, environment and working
folder the server gave, the default signal handlers, ``sys.argv`` and ``sys.path[0]`` as ``-m`` sets them,
numpy's global random state reseeded (Python's own ``random`` reseeds itself at fork), ``JPY_PARENT_PID``
naming the fork server, its real parent, and its process title that of an ordinary kernel (where the
``setproctitle`` package is installed), so ``ps`` and the benchmarks see kernels as before.

Lifetime: the fork server reads its standard input, a pipe from the Jupyter server; when the server exits
(even killed) the pipe closes and the fork server exits, and each kernel, whose ipykernel polls its parent,
exits within a second, as a kernel does when its server dies. The fork server reaps every child and tells
the connection that asked for it the exit status (``ForkedProcess.poll``), so no zombie is left and a pid is
never signalled after it was reaped.

Nothing runs threads or parallel torch operations before the fork: the server checks that Python runs no
thread but its own (OpenBLAS's worker threads, started when numpy loads, are stopped by OpenBLAS itself at
each fork) and creates no zmq context or event loop. What stays shared: ``dclab.provisioner`` launches
kernels through it and ``benchmarks/page_memory.py --fork`` measures each page's own memory.
"""
from __future__ import annotations

import gc
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from dclab.errors import DclabError

# imported once in the fork server; each import here must look at nothing of the kernel it will become
# (ipykernel.kernelapp reads JPY_PARENT_PID when imported: each kernel imports that module itself)
PRELOAD = ("numpy", "torch", "ipykernel.ipkernel")
# the variables a server sets for each kernel (jupyter_server, jupyter_client, Voila's request); any other
# difference (PYTHONPATH, OMP_NUM_THREADS, TORCH_LOGS...) may change what an import did: another fork server
PER_KERNEL = ("JPY_", "KERNEL_", "VOILA_", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_")
READY_TIMEOUT_S = 120.0
_HEADER = struct.Struct("!I")


class ForkServerError(DclabError):
    """The fork server could not start or answer; the caller launches its kernel the ordinary way."""


def shared_environment(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """``env`` without the variables a server sets per kernel: kernels whose environments agree on it share a
    fork server (started in that environment)."""
    return tuple(sorted((k, v) for k, v in env.items() if not k.startswith(PER_KERNEL)))


def _send(sock: socket.socket, message: dict, fds: list[int] = ()) -> None:
    data = json.dumps(message).encode()
    data = _HEADER.pack(len(data)) + data
    sent = socket.send_fds(sock, [data], list(fds)) if fds else sock.send(data)
    sock.sendall(data[sent:])


def _receive(sock: socket.socket, n_fds: int = 0, buffer: bytearray | None = None) -> tuple[dict | None, list[int]]:
    """One message (and the descriptors sent with it); ``(None, [])`` when the peer has closed. Bytes read past
    the message stay in ``buffer`` for the next call (a child's exit can arrive right behind its pid)."""
    buffer = bytearray() if buffer is None else buffer
    fds: list[int] = []

    def complete() -> bool:
        return len(buffer) >= _HEADER.size and len(buffer) >= _HEADER.size + _HEADER.unpack_from(buffer)[0]

    while not complete():
        if n_fds and not fds:
            data, fds, _, _ = socket.recv_fds(sock, 65536, n_fds)
        else:
            data = sock.recv(65536)
        if not data:
            if buffer:
                raise ConnectionError("the message was cut short")
            return None, fds
        buffer += data
    (size,) = _HEADER.unpack_from(buffer)
    message = json.loads(bytes(buffer[_HEADER.size:_HEADER.size + size]))
    del buffer[:_HEADER.size + size]
    return message, fds


# --- the fork server process ---------------------------------------------------------------------------------

def _set_title(argv: list[str]) -> None:
    try:
        import setproctitle
    except ImportError:
        return
    setproctitle.setproctitle(" ".join(argv))


class _Child:
    """What a forked child keeps: its request, its standard streams' descriptors, the connection that asked."""

    def __init__(self, request: dict, fds: list[int], conn: socket.socket) -> None:
        self.request, self.fds, self.conn = request, fds, conn


def _serve(listener: socket.socket) -> _Child | None:
    """The fork server's loop; returns in each forked child (its request), and ``None`` when the Jupyter server
    has gone (standard input closed)."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that SIGCHLD writes to the wakeup pipe
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(0, selectors.EVENT_READ, "lifeline")
    selector.register(wake_r, selectors.EVENT_READ, "signal")
    children: dict[int, socket.socket] = {}
    while True:
        for key, _ in selector.select(timeout=5.0):
            if key.data == "lifeline":
                if not os.read(0, 4096):
                    return None
            elif key.data == "signal":
                while True:
                    try:
                        if not os.read(wake_r, 4096):
                            break
                    except BlockingIOError:
                        break
            elif key.data == "accept":
                conn, _ = listener.accept()
                conn.settimeout(10.0)
                try:
                    request, fds = _receive(conn, n_fds=3)
                except (OSError, ValueError):
                    conn.close()
                    continue
                if request is None or len(fds) != 3:
                    for fd in fds:
                        os.close(fd)
                    conn.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()  # nothing buffered is written twice
                try:
                    pid = os.fork()
                except OSError as e:  # out of memory or processes: the caller launches the ordinary way
                    for fd in fds:
                        os.close(fd)
                    _send(conn, {"error": str(e)})
                    conn.close()
                    continue
                if pid == 0:  # the child keeps its request, its descriptors and its connection, nothing else
                    signal.set_wakeup_fd(-1)
                    selector.close()
                    listener.close()
                    for other in children.values():
                        other.close()
                    os.close(wake_r)
                    os.close(wake_w)
                    return _Child(request, fds, conn)
                for fd in fds:
                    os.close(fd)
                children[pid] = conn
        _reap(children)


def _reap(children: dict[int, socket.socket]) -> None:
    """Collect every child that has exited and tell its connection the exit status (Popen's convention:
    ``-N`` for a child killed by signal N)."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            try:
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
            except OSError:
                pass
            conn.close()


def _become_kernel(child: _Child) -> None:
    """In the forked child: become ``python <argv>`` with the request's environment and folder, then run it."""
    import runpy

    request = child.request
    os.setsid()
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(child.fds):
        os.dup2(fd, target)
        if fd > 2:
            os.close(fd)
    _set_title([sys.executable, "-m", request["module"], *request["args"]])  # before environ changes: it moves it
    os.environ.clear()
    os.environ.update(request["env"])
    if "JPY_PARENT_PID" in os.environ:
        os.environ["JPY_PARENT_PID"] = str(os.getppid())  # the kernel watches its real parent, the fork server
    cwd = request.get("cwd") or os.getcwd()
    os.chdir(cwd)
    sys.path[0] = cwd  # as `python -m` sets it
    sys.argv = ["-m", *request["args"]]
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()  # a fresh process would have drawn its own seed
    try:
        _send(child.conn, {"pid": os.getpid()})  # after setsid: the pid is also the process group to signal
    finally:
        child.conn.close()
    gc.enable()
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m dclab.forkserver SOCKET``: import the modules named in ``preload.json`` beside ``SOCKET`` (not on
    the command line, where ``ps`` and the benchmarks look for kernels), then fork a kernel per request."""
    path = Path((sys.argv[1:] if argv is None else argv)[0])
    modules = json.loads((path.parent / "preload.json").read_text())
    gc.disable()  # no collection while the shared objects are created: fewer holes in their pages
    for name in modules:
        __import__(name)
    if threading.active_count() != 1:
        print(f"dclab.forkserver: a thread runs after importing {modules}: forking is unsafe", file=sys.stderr)
        return 3
    gc.freeze()  # the collector no longer visits (writes to) what is shared
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path) + ".tmp")
    os.rename(str(path) + ".tmp", path)  # the socket appears once the imports are done: "ready"
    listener.listen(64)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is for the server
    try:
        child = _serve(listener)
    finally:
        if os.getpid() == _PARENT:
            listener.close()
            shutil.rmtree(path.parent, ignore_errors=True)
    if child is None:
        return 0
    _become_kernel(child)
    return 0


_PARENT = os.getpid()


# --- the Jupyter server's side -------------------------------------------------------------------------------

class ForkedProcess:
    """A kernel forked by the fork server, with the part of ``subprocess.Popen`` that jupyter_client uses."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, conn: socket.socket, buffer: bytearray) -> None:
        self.pid, self.returncode, self._conn, self._buffer = pid, None, conn, buffer
        conn.setblocking(False)

    def poll(self) -> int | None:
        """The exit status once the fork server has reaped the kernel, else ``None``."""
        if self.returncode is not None:
            return self.returncode
        try:
            message, _ = _receive(self._conn, buffer=self._buffer)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            message = None
        if message is None:  # the fork server has gone: its kernels exit (they poll their parent)
            if _alive(self.pid):
                return None
            message = {"exit": 1}
        self.returncode = message["exit"]
        self._conn.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:  # never a pid the fork server has reaped (it could be reused)
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class ForkServer:
    """One fork server process: ``start()`` it, ``fork()`` kernels from it, ``close()`` it (or let the Jupyter
    server exit: it follows)."""

    def __init__(self, env: dict[str, str] | None = None, preload: tuple[str, ...] | None = None) -> None:
        self.env = dict(shared_environment(dict(os.environ if env is None else env)))
        self.preload = PRELOAD if preload is None else tuple(preload)
        self.folder = Path(tempfile.mkdtemp(prefix="dclab-forkserver-"))  # mode 0700: this user's alone
        self.path = self.folder / "socket"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        (self.folder / "preload.json").write_text(json.dumps(list(self.preload)))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dclab.forkserver", str(self.path)],
            stdin=subprocess.PIPE, env=self.env, cwd=self.folder, start_new_session=True)

    def ready(self) -> bool | None:
        """True once it answers, None while it imports, False if it has died."""
        if self.process is None or self.process.poll() is not None:
            return False
        return True if self.path.exists() else None

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while (state := self.ready()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not state:
            self.close()
            raise ForkServerError("the fork server did not start" if state is False else
                                  f"the fork server was not ready after {timeout_s:.0f} s")

    def fork(self, module: str, args: list[str], env: dict[str, str], cwd: str | None = None,
             stdio: tuple[int, int] = (1, 2)) -> ForkedProcess:
        """Fork a child that runs ``python -m module *args`` in ``env`` and ``cwd``, its standard input /dev/null,
        its output and error the descriptors ``stdio`` (default: this process's)."""
        if self.ready() is not True:
            raise ForkServerError("the fork server is not running")
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(30.0)
        null, buffer = os.open(os.devnull, os.O_RDONLY), bytearray()
        try:
            conn.connect(str(self.path))
            _send(conn, {"module": module, "args": list(args), "env": dict(env), "cwd": cwd},
                  [null, *stdio])
            message, _ = _receive(conn, buffer=buffer)
        except OSError as e:
            conn.close()
            raise ForkServerError(f"the fork server did not answer: {e}") from e
        finally:
            os.close(null)
        if not message or "pid" not in message:
            conn.close()
            raise ForkServerError(f"the fork server did not fork: {message}")
        return ForkedProcess(message["pid"], conn, buffer)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the fork server and remove its folder. Its kernels, which watch their parent, exit with it:
        shut them down first."""
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
