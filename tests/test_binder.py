"""Binder and conda: one repository path behind every Binder link, one set of packages in three files.

The GitHub path lives once, in pyproject.toml's ``[project.urls] Repository``; README's and the
deployment guide's Binder (and nbgitpuller) links must name it. binder/environment.yml,
environment.yml and pyproject.toml's dependencies must name the same packages (the conda
environments may add packages of the ``hub`` extra: they also build the course hub's image), and each
conda range must lie inside pyproject's (environment.yml pip-installs dclab itself, so a conda version
outside pyproject's range would make pip replace it).
"""
from __future__ import annotations

import re
import tomllib
import urllib.parse
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LINKED_DOCS = ("README.md", "docs/deployment.md")

# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"pytorch-cpu": "torch", "pytorch": "torch"}
CONDA_ONLY = {"pip"}  # the installer itself


def github_path() -> str:
    """``owner/name`` from ``[project.urls] Repository``: the one place that names the repository."""
    url = PYPROJECT["project"]["urls"]["Repository"]
    parsed = urllib.parse.urlparse(url)
    path = parsed.path.strip("/").removesuffix(".git")
    assert parsed.netloc == "github.com" and path.count("/") == 1, f"Repository must be https://github.com/OWNER/NAME, not {url}"
    return path


def binder_links(path: str) -> dict[str, str]:
    """README's two Binder links, derived from the repository path."""
    base = f"https://mybinder.org/v2/gh/{path}/HEAD?urlpath="
    return {"JupyterLab": base + "lab/tree/notebooks/00_start_here.ipynb",
            "Voila dashboards": base + "voila/render/notebooks/00_start_here.ipynb"}


def link_problems(text: str, path: str, where: str) -> list[str]:
    """Every Binder or nbgitpuller link in ``text`` that names another repository than ``path``."""
    problems = []
    for found in re.findall(r"/v2/gh/([^/\s`)]+/[^/\s`)]+)/", text):  # mybinder.org or any BinderHub
        if found != path:
            problems.append(f"{where}: a Binder link names {found}, pyproject.toml's Repository is {path}")
    for query in re.findall(r"git-pull\?([^\s`)\"']+)", text):
        repo = urllib.parse.parse_qs(query.replace("&amp;", "&")).get("repo", [""])[0]
        if repo.removesuffix(".git").rstrip("/") != f"https://github.com/{path}":
            problems.append(f"{where}: an nbgitpuller link pulls {repo!r}, not https://github.com/{path}")
    return problems


def test_readme_binder_links_name_the_repository_in_pyproject():
    path = github_path()
    readme = (ROOT / "README.md").read_text()
    for label, url in binder_links(path).items():
        assert f"{label}: `{url}`" in readme, (
            f"README's {label} Binder link should read (from pyproject.toml's [project.urls] Repository):\n"
            f"  - {label}: `{url}`")
    problems = [p for doc in LINKED_DOCS if (ROOT / doc).is_file()
                for p in link_problems((ROOT / doc).read_text(), path, doc)]
    assert not problems, "\n".join(problems)


def test_the_link_check_catches_another_repository():
    text = ("`https://mybinder.org/v2/gh/someone/fork/HEAD?urlpath=lab`\n"
            "`https://hub.example.edu/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fsomeone%2Ffork"
            "&urlpath=lab`")
    assert len(link_problems(text, "owner/dclab", "doc")) == 2
    assert link_problems(text.replace("someone/fork", "owner/dclab").replace("someone%2Ffork", "owner%2Fdclab"),
                         "owner/dclab", "doc") == []


def test_binder_links_open_notebooks_that_exist():
    for url in binder_links(github_path()).values():
        notebook = url.rsplit("notebooks/", 1)[1]
        assert (ROOT / "notebooks" / notebook).is_file(), url


# ---------------------------------------------------------------- the same packages everywhere

def conda_requirements(path: Path) -> dict[str, SpecifierSet]:
    """``{pypi name: specifier}`` of a conda environment file (its pip section included; ``.`` left out)."""
    found: dict[str, SpecifierSet] = {}
    for entry in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(entry, dict):
            for line in entry.get("pip", []):
                if line.strip() not in (".", "-e ."):
                    req = Requirement(line)
                    found[canonicalize_name(req.name)] = req.specifier
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry.strip())
        name, spec = match.group(1), match.group(2).replace(" ", "")
        if name in CONDA_ONLY:
            continue
        assert "|" not in spec, f"{path.name}: {entry!r}: alternatives are not checked; write one range"
        # conda's "=3.11" means 3.11.*; its other operators are pip's
        spec = ",".join(f"=={p[1:]}.*" if re.fullmatch(r"=[^=].*", p) and not p.endswith("*") else p
                        for p in spec.split(",") if p)
        found[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = SpecifierSet(spec)
    return found


def pyproject_requirements(lines: list[str] | None = None) -> dict[str, SpecifierSet]:
    """``{pypi name: specifier}`` of ``lines`` (default: the dependencies, and Python itself)."""
    found = {} if lines is not None else {"python": SpecifierSet(PYPROJECT["project"]["requires-python"])}
    for line in PYPROJECT["project"]["dependencies"] if lines is None else lines:
        req = Requirement(line)
        found[canonicalize_name(req.name)] = req.specifier
    return found


Bound = tuple[Version, bool] | None  # (version, inclusive); None: unbounded


def interval(spec: SpecifierSet) -> tuple[Bound, Bound]:
    """The versions ``spec`` admits as ``(lower, upper)`` (``!=`` is ignored: it removes single points)."""
    lower: Bound = None
    upper: Bound = None

    def raise_lower(v: Version, inclusive: bool) -> None:
        nonlocal lower
        if lower is None or v > lower[0] or (v == lower[0] and not inclusive):
            lower = (v, inclusive)

    def cut_upper(v: Version, inclusive: bool) -> None:
        nonlocal upper
        if upper is None or v < upper[0] or (v == upper[0] and not inclusive):
            upper = (v, inclusive)

    for s in spec:
        op, text = s.operator, s.version
        if op in ("==", "===") and text.endswith(".*"):
            parts = [int(p) for p in text[:-2].split(".")]
            raise_lower(Version(text[:-2]), True)
            cut_upper(Version(".".join(map(str, [*parts[:-1], parts[-1] + 1]))), False)
        elif op in ("==", "==="):
            raise_lower(Version(text), True)
            cut_upper(Version(text), True)
        elif op == "~=":
            parts = [int(p) for p in Version(text).release]
            raise_lower(Version(text), True)
            cut_upper(Version(".".join(map(str, [*parts[:-2], parts[-2] + 1]))), False)
        elif op in (">=", ">"):
            raise_lower(Version(text), op == ">=")
        elif op in ("<=", "<"):
            cut_upper(Version(text), op == "<=")
    return lower, upper


def empty(lower: Bound, upper: Bound) -> bool:
    return lower is not None and upper is not None and (
        lower[0] > upper[0] or (lower[0] == upper[0] and not (lower[1] and upper[1])))


def within(inner: SpecifierSet, outer: SpecifierSet) -> bool:
    """Whether every version ``inner`` admits, ``outer`` admits too (as intervals)."""
    (ilo, ihi), (olo, ohi) = interval(inner), interval(outer)
    if empty(ilo, ihi):
        return False
    lower_ok = olo is None or (ilo is not None and (ilo[0] > olo[0] or (ilo[0] == olo[0] and (olo[1] or not ilo[1]))))
    upper_ok = ohi is None or (ihi is not None and (ihi[0] < ohi[0] or (ihi[0] == ohi[0] and (ohi[1] or not ihi[1]))))
    return lower_ok and upper_ok


@pytest.mark.parametrize(("inner", "outer", "expected"), [
    (">=2.2,<3", ">=2.2,<3", True),
    (">=2.2", ">=2.2,<3", False),       # conda could resolve torch 3, which pyproject refuses
    (">=2.1", ">=2.2", False),
    ("==3.11.*", ">=3.10", True),
    ("==3.9.*", ">=3.10", False),
    (">=1.24,<1.26", ">=1.25", False),
    (">=5,<4", "", False),              # cannot hold at all
    ("~=0.5.8", ">=0.5.8", True),
    ("==2.0", "<2", False),
])
def test_range_containment(inner, outer, expected):
    assert within(SpecifierSet(inner), SpecifierSet(outer)) is expected


def test_binder_and_conda_environments_are_the_same():
    binder = conda_requirements(ROOT / "binder" / "environment.yml")
    conda = conda_requirements(ROOT / "environment.yml")
    assert binder == conda, "binder/environment.yml and environment.yml differ: " + str(
        {k: (binder.get(k), conda.get(k)) for k in sorted(binder.keys() | conda.keys()) if binder.get(k) != conda.get(k)})


@pytest.mark.parametrize("env_file", ["environment.yml", "binder/environment.yml"])
def test_conda_environment_names_pyprojects_packages_within_its_ranges(env_file):
    conda, pip = conda_requirements(ROOT / env_file), pyproject_requirements()
    hub = pyproject_requirements(PYPROJECT["project"]["optional-dependencies"]["hub"])
    missing_in_conda = sorted(pip.keys() - conda.keys())
    missing_in_pyproject = sorted(conda.keys() - pip.keys() - hub.keys())
    assert not missing_in_conda and not missing_in_pyproject, (
        f"{env_file} lacks {missing_in_conda}; pyproject.toml's dependencies (and hub extra) lack "
        f"{missing_in_pyproject} (conda names are mapped to PyPI's: {CONDA_TO_PYPI})")
    allowed = {**hub, **pip}
    outside = {name: f"{env_file}: {conda[name] or 'any'}, pyproject.toml: {allowed[name] or 'any'}"
               for name in sorted(conda) if not within(conda[name], allowed[name])}
    assert not outside, f"conda ranges outside pyproject.toml's: {outside}"
