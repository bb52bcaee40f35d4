"""Kernels forked from dclab's fork server (issue 14): each behaves as an ordinary kernel, shares torch's memory
with the fork server, leaves no process behind, and a kernel still starts when the fork server cannot."""
from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dclab import forkserver, provisioner
from dclab.forkserver import ForkServer

PROBE = """
import json, os, sys
json.dump({"pid": os.getpid(), "pgid": os.getpgid(0), "sid": os.getsid(0), "ppid": os.getppid(), "cwd": os.getcwd(),
           "argv": sys.argv, "path0": sys.path[0], "foo": os.environ.get("FOO"), "jpy": os.environ.get("JPY_PARENT_PID"),
           "numpy_draw": __import__("numpy").random.randint(2**62)}, sys.stdout)
sys.stdout.flush()
if sys.argv[1:] == ["wait"]:
    import time
    time.sleep(60)
raise SystemExit(int(sys.argv[1]) if sys.argv[1:] and sys.argv[1].isdigit() else 0)
"""


def _gone(pid: int, timeout_s: float = 10.0) -> bool:
    """True once ``pid`` has exited and been reaped (no zombie: /proc/<pid> is gone)."""
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture
def server():
    s = ForkServer(preload=("numpy",))
    s.start()
    s.wait_ready(60)
    yield s
    s.close()


def _fork_probe(server: ForkServer, folder: Path, args: list[str], name: str = "out.json"):
    if not (folder / "probe.py").exists():  # written once: a child may be reading it
        (folder / "probe.py").write_text(PROBE)
    out = open(folder / name, "w")
    try:
        child = server.fork("probe", args, {**os.environ, "FOO": "bar", "JPY_PARENT_PID": "1234"}, str(folder),
                            (out.fileno(), 2))
    finally:
        out.close()
    return child


def test_a_forked_child_is_what_python_dash_m_would_have_started(server, tmp_path):
    first = _fork_probe(server, tmp_path, ["7"], "a.json")
    second = _fork_probe(server, tmp_path, [], "b.json")
    assert first.wait(30) == 7 and second.wait(30) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["pid"] == first.pid and a["pgid"] == a["sid"] == a["pid"]  # its own session: the server signals the group
    assert a["ppid"] == server.process.pid and a["jpy"] == str(server.process.pid)  # it watches its real parent
    assert a["cwd"] == str(tmp_path) and a["path0"] == str(tmp_path)  # -m finds modules in the working folder
    assert a["argv"] == [str(tmp_path / "probe.py"), "7"] and a["foo"] == "bar"
    assert a["numpy_draw"] != b["numpy_draw"]  # numpy's global random state is not the fork server's copy
    assert _gone(first.pid) and _gone(second.pid)


def test_signals_reach_the_child_and_its_status_comes_back(server, tmp_path):
    child = _fork_probe(server, tmp_path, ["wait"])
    deadline = time.monotonic() + 30
    while not (tmp_path / "out.json").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child.poll() is None
    child.terminate()
    assert child.wait(10) == -signal.SIGTERM
    child.kill()  # after it was reaped: nothing is signalled (its pid may be another process's by now)
    assert _gone(child.pid)


def test_the_fork_server_exits_with_the_jupyter_server_and_removes_its_socket(tmp_path):
    s = ForkServer(preload=())
    s.start()
    s.wait_ready(60)
    assert s.path.exists()
    s.process.stdin.close()  # what the Jupyter server's exit does to the pipe
    assert s.process.wait(10) == 0
    assert not s.folder.exists()


def test_a_fork_server_that_cannot_import_reports_it():
    s = ForkServer(preload=("no_such_module_for_dclab",))
    s.start()
    with pytest.raises(forkserver.ForkServerError):
        s.wait_ready(60)


# --- through jupyter_client, as a Jupyter or Voila server launches kernels ---------------------------------------

OWN = "print(sum(int(l.split()[1]) for l in open('/proc/self/smaps_rollup') if l.startswith('Private_Dirty')))"


@pytest.fixture
def fork_provisioner(monkeypatch):
    """``dclab-fork`` as the default provisioner, with fork servers of this test's own."""
    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    provisioner.register()
    factory = KernelProvisionerFactory.instance()
    monkeypatch.setattr(factory, "default_provisioner_name", provisioner.NAME)
    monkeypatch.setattr(provisioner, "_servers", {})
    yield factory
    provisioner._close_all()


def _run(km, code: str) -> str:
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        out = []
        reply = client.execute_interactive(code, timeout=120, output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(out).strip()
    finally:
        client.stop_channels()


def _start(tmp_path, name: str | None = None):
    from jupyter_client.manager import KernelManager
    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    if name:
        KernelProvisionerFactory.instance().default_provisioner_name = name
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path), env={**os.environ, "DCLAB_FORK_TEST": "yes"})
    return km


def test_a_forked_kernel_runs_code_in_its_folder_and_environment(fork_provisioner, tmp_path):
    km = _start(tmp_path)
    try:
        assert type(km.provisioner).__name__ == "ForkingProvisioner"
        assert isinstance(km.provisioner.process, forkserver.ForkedProcess)  # forked, not launched
        out = _run(km, "import os, sys; print(os.getcwd(), os.environ['DCLAB_FORK_TEST'], 'torch' in sys.modules, "
                       "os.getppid() == os.getpid())")
        assert out == f"{tmp_path} yes True False"
        command = Path(f"/proc/{km.provisioner.pid}/cmdline").read_text().replace("\0", " ")
        if "setproctitle" in sys.modules or _importable("setproctitle"):
            assert "ipykernel_launcher" in command  # ps and the benchmarks see an ordinary kernel
        km.interrupt_kernel()  # the kernel's process group
        assert _run(km, "print(6 * 7)") == "42"
    finally:
        pid = km.provisioner.pid
        km.shutdown_kernel()
    assert _gone(pid), "the kernel (or its zombie) outlived its shutdown"


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_a_forked_kernel_shares_torch_with_the_fork_server(fork_provisioner, tmp_path):
    """The same cell, `import torch` then the kernel's own memory, in an ordinary kernel and a forked one: the
    forked kernel's own memory is a fraction of the ordinary one's (torch's pages are the fork server's)."""
    own, threads = {}, {}
    for name in ("local-provisioner", provisioner.NAME):
        km = _start(tmp_path, name)
        try:
            own[name] = int(_run(km, "import torch\n" + OWN))
            # torch's thread pool starts in the kernel, after the fork, as in an ordinary kernel
            threads[name] = _run(km, "x = torch.randn(256, 256); y = torch.nn.functional.conv2d(torch.randn(8, 3, 64, 64), "
                                     "torch.randn(16, 3, 3, 3)); print(torch.get_num_threads(), (x @ x).shape, y.shape)")
            km.restart_kernel(now=True)  # a restart forks a fresh kernel
            assert _run(km, "print(6 * 7)") == "42"
            assert isinstance(km.provisioner.process, forkserver.ForkedProcess) == (name == provisioner.NAME)
        finally:
            km.shutdown_kernel(now=True)
    assert own[provisioner.NAME] < 0.5 * own["local-provisioner"], own
    assert threads[provisioner.NAME] == threads["local-provisioner"]


def test_a_kernel_still_starts_when_the_fork_server_cannot(fork_provisioner, tmp_path, monkeypatch):
    monkeypatch.setattr(forkserver, "PRELOAD", ("no_such_module_for_dclab",))
    km = _start(tmp_path)
    try:
        assert not isinstance(km.provisioner.process, forkserver.ForkedProcess)  # launched the ordinary way
        assert _run(km, "print(6 * 7)") == "42"
    finally:
        pid = km.provisioner.pid
        km.shutdown_kernel(now=True)
    assert _gone(pid)
    assert provisioner.fork_server_pids() == []


def test_kernels_exit_when_their_fork_server_dies(fork_provisioner, tmp_path):
    km = _start(tmp_path)
    try:
        assert _run(km, "print(1)") == "1"
        (server_pid,) = provisioner.fork_server_pids()
        os.kill(server_pid, signal.SIGKILL)  # as if the Jupyter server and its fork server were killed
        assert _gone(km.provisioner.pid, timeout_s=15), "an orphaned kernel kept running"
        assert km.provisioner.process.poll() is not None
    finally:
        km.shutdown_kernel(now=True)


def test_only_this_python_running_ipykernel_is_forked():
    python = sys.executable
    assert provisioner._forkable([python, "-m", "ipykernel_launcher", "-f", "c.json"]) == ["-f", "c.json"]
    assert provisioner._forkable(["/usr/bin/other-python", "-m", "ipykernel_launcher", "-f", "c.json"]) is None
    assert provisioner._forkable([python, "-m", "other_kernel", "-f", "c.json"]) is None
    assert provisioner._stdio({"stdout": -1}) is None  # a pipe was asked for: launched the ordinary way


def test_per_kernel_variables_share_a_fork_server_and_others_do_not():
    base = {"PATH": "/bin", "PYTHONPATH": "/x"}
    shared = forkserver.shared_environment
    assert shared({**base, "JPY_PARENT_PID": "1", "VOILA_REQUEST_URL": "u", "QUERY_STRING": "q"}) == shared(base)
    assert shared({**base, "OMP_NUM_THREADS": "1"}) != shared(base)


def test_the_provisioner_is_registered_and_voila_uses_it():
    from dclab.serve import CHECKOUT

    config = json.loads((CHECKOUT / "voila.json").read_text())
    assert config["KernelProvisionerFactory"]["default_provisioner_name"] == provisioner.NAME
    text = (CHECKOUT / "pyproject.toml").read_text()
    assert textwrap.dedent(f'{provisioner.NAME} = "dclab.provisioner:ForkingProvisioner"') in text
