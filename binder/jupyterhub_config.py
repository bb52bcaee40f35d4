"""dclab's course JupyterHub on one machine (docs/deployment.md, "One machine"); tests/test_hub.py runs it.

    DCLAB_CACHE=/srv/dclab/cache DCLAB_DATA=/srv/dclab/data DCLAB_HUB_USERS=alice,bob \
        jupyterhub -f binder/jupyterhub_config.py

Read from the environment:

- ``DCLAB_CACHE``, ``DCLAB_DATA`` (required): the cache the instructor prepared and made read-only, and
  MNIST; every student's server gets both. dclab reads the cache and writes what a student computes
  beyond it into the student's own home (``dclab.paths``).
- ``DCLAB_HUB_USERS``: who may log in (comma-separated); ``DCLAB_HUB_HOMES``: the folder of their
  homes (``/srv/dclab/home``); ``DCLAB_HUB_PORT``: the hub's port (8000) on 127.0.0.1.
- ``JUPYTER_PATH``, ``JUPYTER_CONFIG_PATH``: passed on to the servers when set (a source checkout's Voila
  template; a folder holding the repository's ``jupyter_server_config.json``, which an installed image
  keeps in ``{sys.prefix}/etc/jupyter``, as binder/postBuild puts it).

For a trial or a test: anyone listed logs in with any password (DummyAuthenticator) and all servers
run as the hub's own account (a local-process spawner with homes under DCLAB_HUB_HOMES). A course
replaces both (docs/deployment.md says with what) and keeps the rest.
"""
import ctypes
import os
import sys

from jupyterhub.spawner import SimpleLocalProcessSpawner

c = get_config()  # noqa: F821 (given by JupyterHub's config loader)


class ClassroomSpawner(SimpleLocalProcessSpawner):
    """A local process per student, in their own home; under a root hub it gives up every capability,
    so file modes (the read-only shared cache) bind it as they bind any user."""

    def make_preexec_fn(self, name):
        make_home = super().make_preexec_fn(name)

        def preexec():
            make_home()
            if os.geteuid() == 0:
                libc = ctypes.CDLL(None, use_errno=True)
                with open("/proc/sys/kernel/cap_last_cap") as last:
                    for cap in range(int(last.read()) + 1):
                        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP: nothing left after exec

        return preexec


c.JupyterHub.ip = "127.0.0.1"  # behind the machine's HTTPS reverse proxy
c.JupyterHub.port = int(os.environ.get("DCLAB_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {u.strip() for u in os.environ.get("DCLAB_HUB_USERS", "").split(",") if u.strip()}
c.JupyterHub.spawner_class = ClassroomSpawner
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(os.environ.get("DCLAB_HUB_HOMES", "/srv/dclab/home"),
                                                             "{username}")
c.Spawner.ip = "127.0.0.1"
c.Spawner.cmd = [os.path.join(os.path.dirname(sys.executable), "jupyterhub-singleuser")]
c.Spawner.args = ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.Spawner.environment = {
    "DCLAB_CACHE": os.environ["DCLAB_CACHE"],
    "DCLAB_DATA": os.environ["DCLAB_DATA"],
    "OMP_NUM_THREADS": "1",  # many students on few cores: no oversubscribed torch threads
    "PYTHONUNBUFFERED": "1",
    **{k: os.environ[k] for k in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH") if k in os.environ},
}

try:  # idle servers stopped after an hour (pip install jupyterhub-idle-culler); kernels: jupyter_server_config.json
    import jupyterhub_idle_culler  # noqa: F401
except ImportError:
    pass
else:
    c.JupyterHub.services = [{"name": "idle-culler",
                              "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]}]
    c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
                                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]
