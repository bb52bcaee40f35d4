"""A real course JupyterHub on 127.0.0.1: three students, one read-only cache prepared by the instructor.

The hub (``jupyterhub`` from the ``hub`` extra, configurable-http-proxy from npm, installed into
``.hub/`` when it is not on PATH) runs the course hub's configuration, binder/jupyterhub_config.py
(docs/deployment.md, "One machine"): DummyAuthenticator, a local-process spawner with the students'
homes under a temporary folder, ``DCLAB_CACHE`` and ``DCLAB_DATA`` shared read-only, the repository's
``jupyter_server_config.json`` for Voila as a server extension; the test adds only ports, its own
files and a service token.

The instructor copies this machine's cache (trained baselines and ladders; the notebooks' results
when they ran before: the module is marked ``browser``, so it runs after them) into the shared
cache, runs ``python -m dclab prepare`` there (nothing left to train) and the lab's first computations,
then makes it read-only. What a student computes beyond it (here a small probe result, through
dclab's store) lands in their own folder, through dclab.paths' mirror. Each student,
at once: the hub starts their server (REST API, with a service token); in a kernel of their own
server they write their student copies (``python -m dclab student-copies student``); then lab 04
runs in their server cell by cell, like JupyterLab does it (a session for the notebook, its cells
sent over the kernel's websocket; chosen over nbclient, which starts kernels itself and cannot
use a remote server's), and is saved back through the contents API. Then one student opens a
lecture's Voila page through the hub in Chromium, logged in through the hub's login form.

When the tests run as root (root writes through any permission bits), the single-user servers give
up every capability, so the shared cache's modes bind them as they bind any student.
"""
from __future__ import annotations

import concurrent.futures
import ctypes
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from dclab import paths
from dclab.serve import HOST, SHARE, free_port

pytest.importorskip("jupyterhub", reason="JupyterHub is not installed: pip install -e '.[hub]'")
requests = pytest.importorskip("requests")
websocket = pytest.importorskip("websocket")  # websocket-client, a dependency of jupyter_server
nbformat = pytest.importorskip("nbformat")

# browser: it drives Chromium, and so runs after the notebooks, whose results the instructor's cache then copies
pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
CHP_FOLDER = ROOT / ".hub"  # git-ignored
CHP_VERSION = "5"
STUDENTS = ("alice", "bob", "carol")
LAB = "04_huffman_coding.ipynb"
BASELINES = ("lenet300", "lenet5")  # what lab 04 reads
TRAINING = re.compile(r"\btraining (LeNet|FireNet)|\btrained (LeNet|FireNet)|retrained ladder for")


# ---------------------------------------------------------------- configurable-http-proxy

def proxy_command() -> str:
    """configurable-http-proxy: on PATH, else in ``.hub/``, else installed there by npm now (or a skip)."""
    found = shutil.which("configurable-http-proxy")
    local = CHP_FOLDER / "node_modules" / ".bin" / "configurable-http-proxy"
    if found or local.exists():
        return found or str(local)
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("JupyterHub needs configurable-http-proxy, and npm is missing to install it: install "
                    "Node.js 20 or later (with npm); this test then installs the proxy into .hub/")
    done = subprocess.run([npm, "install", "--prefix", str(CHP_FOLDER), "--no-audit", "--no-fund", "--loglevel=error",
                           f"configurable-http-proxy@{CHP_VERSION}"], capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or not local.exists():
        pytest.skip(f"npm could not install configurable-http-proxy into {CHP_FOLDER} (no registry?):\n"
                    f"{(done.stdout + done.stderr)[-1500:]}")
    return str(local)


# ---------------------------------------------------------------- the instructor's shared cache

def tree_digest(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (links followed)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def chmod_tree(root: Path, writable: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


# the lab's first-run computations (a pipeline run and the ladder's trade-offs per LeNet), which the instructor
# runs once before class (docs/deployment.md) so that no student waits for them
WARM_LAB = ("from dclab.lessons.coding import ladder_tradeoff, pipeline_run\n"
            "for arch in {!r}:\n    pipeline_run(arch, progress=False)\n    ladder_tradeoff(arch, progress=False)")


def instructor_prepares(shared: Path) -> str:
    """The instructor's cache: what this machine's cache holds (its baselines and ladders; the notebooks'
    results when they ran before), completed by ``dclab prepare`` and the lab's first computations; what
    ``prepare`` printed."""
    own = paths.cache_dir()
    for folder in ("models", "ladders", "compressed", "experiments"):
        if (own / folder).is_dir():
            shutil.copytree(own / folder, shared / folder, symlinks=False, dirs_exist_ok=True)
    env = {**os.environ, "DCLAB_CACHE": str(shared)}
    done = subprocess.run([sys.executable, "-m", "dclab", "prepare", "--models", *BASELINES], env=env,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    warm = subprocess.run([sys.executable, "-c", WARM_LAB.format(BASELINES)], env=env, capture_output=True,
                          text=True, timeout=900)
    assert warm.returncode == 0, warm.stderr[-3000:]
    return done.stdout + done.stderr


# ---------------------------------------------------------------- the hub

HUB_CONFIG = ROOT / "binder" / "jupyterhub_config.py"  # the course hub's configuration (docs/deployment.md)

# what only the test adds: free ports, its own files, the proxy it found, a service token for the REST API
TEST_CONFIG = '''\
c = get_config()
load_subconfig({hub_config!r})
c.JupyterHub.port = {port}
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.api_url = "http://{host}:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
c.JupyterHub.db_url = "sqlite:///{db}"
c.JupyterHub.cookie_secret_file = {cookie!r}
c.JupyterHub.services.append({{"name": "course-tests", "api_token": {token!r}}})
c.JupyterHub.load_roles.append({{
    "name": "course-tests",
    "scopes": ["admin:users", "admin:servers", "access:servers", "list:users"],
    "services": ["course-tests"],
}})
'''


class Hub:
    """A running JupyterHub; ``api(method, path)`` calls its REST API, ``server(user, ...)`` a user's server."""

    def __init__(self, base: str, token: str, proc: subprocess.Popen, log: Path) -> None:
        self.base, self.token, self.proc, self.log = base, token, proc, log
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def api(self, method: str, path: str, **kw) -> requests.Response:
        return self.session.request(method, f"{self.base}/hub/api{path}", timeout=60, **kw)

    def server(self, user: str, method: str, path: str, **kw) -> requests.Response:
        response = self.session.request(method, f"{self.base}/user/{user}/api{path}", timeout=120, **kw)
        assert response.ok, f"{method} /user/{user}/api{path}: {response.status_code} {response.text[:500]}"
        return response

    def start_server(self, user: str, timeout_s: float = 180) -> None:
        response = self.api("POST", f"/users/{user}/server")
        assert response.status_code in (201, 202), f"starting {user}'s server: {response.status_code} {response.text}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            server = self.api("GET", f"/users/{user}").json().get("servers", {}).get("")
            if server and server.get("ready"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{user}'s server was not ready after {timeout_s} s; hub log:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def stop_with_parent() -> None:
    """``preexec_fn``: the hub gets SIGTERM if pytest dies (it then stops the servers and the proxy it started)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_hub(top: Path, shared: Path, config_dir: Path) -> Hub:
    homes = top / "home"
    homes.mkdir()
    token = secrets.token_hex(32)
    port = free_port()
    config = TEST_CONFIG.format(
        hub_config=str(HUB_CONFIG), host=HOST, port=port, hub_port=free_port(), proxy=proxy_command(),
        proxy_api_port=free_port(), proxy_pid=str(top / "proxy.pid"), db=top / "jupyterhub.sqlite",
        cookie=str(top / "cookie_secret"), token=token,
    )
    (top / "jupyterhub_config.py").write_text(config)
    log = top / "jupyterhub.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "XDG_"))}
    env.update({
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        "DCLAB_CACHE": str(shared), "DCLAB_DATA": str(paths.data_root()),
        "DCLAB_HUB_USERS": ",".join(STUDENTS), "DCLAB_HUB_HOMES": str(homes),
        "JUPYTER_PATH": str(SHARE),  # the dclab Voila template of a source checkout (an image has it installed)
        "JUPYTER_CONFIG_PATH": str(config_dir),  # jupyter_server_config.json: Voila's settings
    })
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(top / "jupyterhub_config.py")],
                                cwd=top, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=stop_with_parent)
    hub = Hub(f"http://{HOST}:{port}", token, proc, log)
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{hub.base}/hub/api/", timeout=2).ok:
                return hub
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_hub(hub)
            raise AssertionError(f"JupyterHub did not start on {hub.base}:\n{hub.log_tail()}")
        time.sleep(0.5)


def stop_hub(hub: Hub) -> None:
    for user in STUDENTS:
        try:
            hub.api("DELETE", f"/users/{user}/server")
        except requests.RequestException:
            pass
    hub.proc.terminate()  # the hub stops the servers and the proxy it started
    try:
        hub.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(hub.proc.pid, 9)


# ---------------------------------------------------------------- a kernel of a user's server

class Kernel:
    """One kernel of a user's single-user server, driven through the hub's proxy over its websocket."""

    def __init__(self, hub: Hub, user: str, kernel_id: str) -> None:
        self.session_id = uuid.uuid4().hex
        url = f"{hub.base.replace('http', 'ws', 1)}/user/{user}/api/kernels/{kernel_id}/channels?session_id={self.session_id}"
        self.ws = websocket.create_connection(url, header=[f"Authorization: token {hub.token}"], timeout=60)
        self.iopub_text: list[str] = []  # every iopub message's content: the scan for training progress

    def _receive(self, timeout_s: float) -> dict:
        self.ws.settimeout(max(timeout_s, 1))
        frame = self.ws.recv()
        if isinstance(frame, bytes):  # a message with binary buffers: the JSON part only
            offsets = struct.unpack_from(f"!{struct.unpack_from('!I', frame)[0] + 1}I", frame)[1:]
            frame = frame[offsets[0]:offsets[1] if len(offsets) > 1 else None].decode()
        return json.loads(frame)

    def execute(self, code: str, timeout_s: float = 600) -> list:
        """Run ``code``; its outputs (nbformat), after the kernel is idle again. Fails on an error."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "student",
                       "session": self.session_id, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        outputs, replied, idle = [], None, False
        deadline = time.monotonic() + timeout_s
        while replied is None or not idle:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no answer within {timeout_s} s to:\n{code[:400]}"
            msg = self._receive(remaining)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, channel = msg["header"]["msg_type"], msg.get("channel")
            if channel == "shell" and kind == "execute_reply":
                replied = msg["content"]
            elif channel == "iopub":
                self.iopub_text.append(json.dumps(msg["content"]))
                if kind == "status":
                    idle = msg["content"]["execution_state"] == "idle"
                elif kind == "clear_output":
                    outputs.clear()
                elif kind in ("stream", "display_data", "execute_result", "error"):
                    outputs.append(nbformat.v4.output_from_msg(msg))
        errors = [o for o in outputs if o["output_type"] == "error"]
        assert replied["status"] == "ok" and not errors, (
            f"the cell failed:\n{code[:600]}\n" + "\n".join(re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(o.get("traceback", [])))
                                                         for o in errors) or json.dumps(replied)[:2000])
        return outputs

    def close(self) -> None:
        self.ws.close()


PROBE = """\
import json, os, sys
from pathlib import Path
from dclab import paths
from dclab.lessons import store
shared = Path(os.environ["DCLAB_CACHE"])
notebooks = NOTEBOOKS  # the course's notebooks (an image built by repo2docker has them where it was built)
store.cached_result("hub_probe", {"user": os.environ["USER"]}, lambda: {"home": os.environ["HOME"]})
try:
    (shared / "models" / "mine.pt").write_bytes(b"x")
    refused = None
except PermissionError as exc:
    refused = str(exc)
!{sys.executable} -m dclab student-copies student --source {notebooks}
print(json.dumps({"home": os.environ["HOME"], "cwd": os.getcwd(), "cache_dir": str(paths.cache_dir()),
                  "refused": refused}))
"""

WHERE = """\
import json, os
from dclab import paths
print(json.dumps({"cwd": os.getcwd(), "cache_dir": str(paths.cache_dir())}))
"""


def text_of(outputs: list) -> str:
    return "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")


def a_student_works(hub: Hub, user: str) -> dict:
    """Start ``user``'s server, write their student copies, run lab 04 in it and save it; what was seen."""
    start = time.monotonic()
    hub.start_server(user)
    started = time.monotonic() - start
    kernel_id = hub.server(user, "POST", "/kernels", json={"name": "python3"}).json()["id"]
    kernel = Kernel(hub, user, kernel_id)
    code = PROBE.replace("NOTEBOOKS", repr(str(ROOT / "notebooks")))
    probe = json.loads(text_of(kernel.execute(code, timeout_s=120)).strip().splitlines()[-1])
    kernel.close()
    hub.server(user, "DELETE", f"/kernels/{kernel_id}")

    path = f"student/{LAB}"
    nb = nbformat.from_dict(hub.server(user, "GET", f"/contents/{path}").json()["content"])
    session = hub.server(user, "POST", "/sessions", json={
        "path": path, "name": LAB, "type": "notebook", "kernel": {"name": "python3"}}).json()
    kernel = Kernel(hub, user, session["kernel"]["id"])
    lab_start = time.monotonic()
    try:
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = kernel.execute(cell.source)
        where = json.loads(text_of(kernel.execute(WHERE)).strip().splitlines()[-1])
    finally:
        kernel.close()
    lab_seconds = time.monotonic() - lab_start
    hub.server(user, "PUT", f"/contents/{path}", json={"type": "notebook", "format": "json", "content": nb})
    hub.server(user, "DELETE", f"/sessions/{session['id']}")
    return {"probe": probe, "where": where, "iopub": kernel.iopub_text, "started_s": started, "lab_s": lab_seconds}


# ---------------------------------------------------------------- the test

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The instructor's read-only cache, a running hub, and what each student did in it."""
    top = tmp_path_factory.mktemp("hub")
    shared = top / "course" / "cache"
    shared.mkdir(parents=True)
    prepared = instructor_prepares(shared)
    chmod_tree(shared, writable=False)
    before = tree_digest(shared)
    config_dir = top / "etc-jupyter"  # as in an image's {sys.prefix}/etc/jupyter
    config_dir.mkdir()
    shutil.copy(ROOT / "jupyter_server_config.json", config_dir / "jupyter_server_config.json")

    hub = start_hub(top, shared, config_dir)
    try:
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(STUDENTS)) as pool:
            work = dict(zip(STUDENTS, pool.map(lambda user: a_student_works(hub, user), STUDENTS)))
        yield {"top": top, "shared": shared, "before": before, "prepared": prepared, "hub": hub,
               "work": work, "seconds": time.monotonic() - start}
    finally:
        stop_hub(hub)
        chmod_tree(shared, writable=True)  # so pytest can remove it


def test_the_instructor_prepares_the_shared_cache_once(course):
    assert not TRAINING.search(course["prepared"]), (  # the copied cache held everything: nothing left to train
        f"prepare trained (was this machine's cache prepared? make prepare):\n{course['prepared']}")
    names = set(course["before"])
    assert any(n.startswith("models/lenet300-") for n in names) and any(n.startswith("ladders/lenet5-") for n in names)


def test_every_student_runs_a_lab_from_the_shared_cache_without_writing_it(course):
    shared, homes = course["shared"], course["top"] / "home"
    assert tree_digest(shared) == course["before"], "a student changed the instructor's cache"
    for user, seen in course["work"].items():
        home = homes / user
        probe, where = seen["probe"], seen["where"]
        assert probe["home"] == str(home)
        assert probe["refused"], f"{user} could write into the shared cache"
        assert where["cwd"] == str(home / "student")  # the lab ran in the student's own folder
        own = Path(where["cache_dir"])
        assert home in own.parents, f"{user}'s results went to {own}, not into their own folder"
        trained = [m.group(0) for text in seen["iopub"] for m in [TRAINING.search(text)] if m]
        assert not trained, f"{user} trained a baseline or a ladder again: {trained[:3]}"
        # nothing retrained lands in the student's cache: their models are the instructor's, linked
        assert all(p.is_symlink() for p in (own / "models").iterdir()), list((own / "models").iterdir())
        computed = [p.name for p in own.rglob("*") if p.is_file() and not p.is_symlink()]
        assert any(name.startswith("hub_probe-") for name in computed), computed  # a result of their own, kept
        saved = nbformat.read(home / "student" / LAB, as_version=4)
        assert saved.metadata["dclab"]["student_copy"]
        code = [c for c in saved.cells if c.cell_type == "code"]
        assert all(c.outputs for c in code[:2]) and not any(o.output_type == "error" for c in code for o in c.outputs)
        assert sorted(p.name for p in (home / "student").glob("0*.ipynb"))[:5] == [
            "01_hardware_and_number_formats.ipynb", "02_pruning.ipynb", "03_weight_sharing.ipynb", LAB,
            "05_squeezenet.ipynb"]
    print({user: {k: round(v, 1) for k, v in seen.items() if k.endswith("_s")} for user, seen in course["work"].items()},
          f"all three: {course['seconds']:.0f} s")


def test_a_lecture_opens_under_voila_through_the_hub(course, chromium):
    hub, user = course["hub"], STUDENTS[0]
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    requested: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
            if msg.type == "error" and "favicon" not in msg.text else None)
    page.on("request", lambda req: requested.append(req.url))

    def outside(route) -> None:
        errors.append(f"outside request: {route.request.url}")
        route.abort()

    context.route(lambda url: not url.startswith(hub.base), outside)
    try:
        target = f"/user/{user}/voila/render/student/{LAB}"
        page.goto(f"{hub.base}/hub/login?next={target}", timeout=60_000)
        page.fill("#username_input", user)
        page.fill("#password_input", "any password")
        page.click("#login_submit")
        deadline = time.monotonic() + 600
        while not page.query_selector(".dclab-pipeline-widget .js-plotly-plot .barlayer text"):
            assert time.monotonic() < deadline, "the lab's widget did not appear within 10 minutes"
            assert not any("failed to activate" in e or "pageerror" in e for e in errors), (
                "the page broke before its widgets appeared:\n" + "\n".join(errors))
            page.wait_for_timeout(1000)
        page.wait_for_function("() => !document.getElementById('loading')", timeout=600_000)
        page.wait_for_timeout(1500)
        assert page.url.startswith(f"{hub.base}{target}")
        assert any("/voila/templates/dclab/static/fontawesome/" in url for url in requested), (
            "the page did not use dclab's Voila template: is jupyter_server_config.json in effect?")
        shown = page.locator(".dclab-pipeline-widget .dclab-pipeline-size").first.inner_text()
        assert re.search(r"[\d,]+ bytes", shown), shown
        assert not errors, "the page logged errors:\n" + "\n".join(errors)
    finally:
        context.close()
