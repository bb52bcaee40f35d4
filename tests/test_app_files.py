"""The app's setup files say the same thing: README's commands, CI, conda and Binder environments."""
import re

import yaml
from conftest import NOTEBOOKS, ROOT

from dclab.lectures import LECTURES, START_PAGE


def test_start_page_lists_every_lecture_notebook():
    on_disk = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    listed = sorted([lec.notebook for lec in LECTURES] + [START_PAGE])
    missing = set(listed) - set(on_disk)
    assert set(on_disk) <= set(listed), f"notebooks not on the start page: {set(on_disk) - set(listed)}"
    # lectures still being written are allowed to be missing only while they are absent from the start page too
    assert not missing or missing <= {lec.notebook for lec in LECTURES}


def test_readme_has_the_two_commands_and_ci_calls_the_test_one():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\s*(make \w+)\s*$", readme, flags=re.M)
    assert commands[:2] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_conda_and_binder_environments_agree():
    def packages(path):
        env = yaml.safe_load(path.read_text())
        return {d for d in env["dependencies"] if isinstance(d, str)}

    assert packages(ROOT / "environment.yml") == packages(ROOT / "binder" / "environment.yml")
    assert "pytorch-cpu>=2.2" in packages(ROOT / "environment.yml")


def test_pyproject_admits_the_pinned_torch():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    from packaging.requirements import Requirement
    from packaging.version import Version

    reqs = {Requirement(d).name: Requirement(d) for d in deps}
    assert Version("2.14.1") in reqs["torch"].specifier
    assert Version("0.29.1") in reqs["torchvision"].specifier
