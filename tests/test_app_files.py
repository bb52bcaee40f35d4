"""The app's setup files say the same thing: README's commands, CI, conda and Binder environments."""
import re
import sys
from pathlib import Path

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


def test_pyproject_admits_the_pinned_torch():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    from packaging.requirements import Requirement
    from packaging.version import Version

    reqs = {Requirement(d).name: Requirement(d) for d in deps}
    assert Version("2.14.1") in reqs["torch"].specifier
    assert Version("0.29.1") in reqs["torchvision"].specifier


def test_voila_template_is_voilas_lab_template_with_font_awesome_served_locally():
    """share/.../dclab/index.html.j2 = the installed Voila's lab template, only its Font Awesome links changed."""
    import voila

    from dclab.serve import SHARE

    ours = (SHARE / "voila" / "templates" / "dclab" / "index.html.j2").read_text()
    lab = next(p for p in [Path(voila.__file__).parents[3] / "share" / "jupyter" / "voila" / "templates" / "lab"
                           / "index.html.j2", Path(sys.prefix) / "share/jupyter/voila/templates/lab/index.html.j2"]
               if p.is_file()).read_text()
    cdn = re.findall(r'.*href="https://cdn[^"]*".*\n', lab)
    assert len(cdn) == 2, "Voila's lab template changed its CDN links: update dclab's template"
    local = re.findall(r'.*href="\{\{ resources.base_url \}\}voila/templates/dclab/static/[^"]*".*\n', ours)
    assert [line.split("/css/")[1] for line in local] == [line.split("/css/")[1] for line in cdn]
    body = ours[ours.index("{%- extends"):]
    for old, new in zip(cdn, local):
        body = body.replace(new, old)
    assert re.sub(r"\s*\{#.*?#\}\s*", "\n", body, flags=re.S).split() == \
        re.sub(r"\s*\{#.*?#\}\s*", "\n", lab, flags=re.S).split()
    assert "https://" not in re.sub(r"\{#.*?#\}", "", ours, flags=re.S)
    for path in re.findall(r"static/(fontawesome/[^\"]+)", ours):
        css = SHARE / "voila" / "templates" / "dclab" / "static" / path
        assert css.is_file()
        for font in re.findall(r"url\(\.\./webfonts/([\w-]+\.woff2)\)", css.read_text()):
            assert (css.parents[1] / "webfonts" / font).is_file()


def test_voila_configs_use_the_offline_template_and_the_package_installs_it():
    import json

    import tomllib

    for name in ("voila.json", "jupyter_server_config.json"):
        assert json.loads((ROOT / name).read_text())["VoilaConfiguration"]["template"] == "dclab"
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    listed = {p for patterns in data_files.values() for pattern in patterns for p in ROOT.glob(pattern)}
    shipped = {p for p in (ROOT / "share").rglob("*") if p.is_file()}
    assert shipped == listed, "every file of the template is installed by `pip install .`"
