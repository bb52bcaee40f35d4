"""The core never imports plotting or widget libraries (STYLE.md's layering)."""
import subprocess
import sys

CORE = ["errors", "cache", "paper", "hardware", "numformats", "prune", "quantize", "lowrank", "sparse", "huffman", "container"]
MIDDLE = ["paths", "progress", "serve", "data", "models", "train", "zoo", "pipeline", "lectures", "exercises", "student", "coding_analysis", "experiments", "session", "squeeze"]

BLOCKER = """
import importlib, sys
for name in ("plotly", "ipywidgets", "IPython", "anywidget", "voila", "pandas"):
    sys.modules[name] = None  # any import of these now fails
for module in sys.argv[1:]:
    try:
        importlib.import_module("dclab." + module)
    except ModuleNotFoundError as exc:
        if exc.name == "dclab." + module:
            continue  # not written yet
        raise
"""


def test_core_and_middle_layers_import_without_plotly_or_widgets():
    result = subprocess.run([sys.executable, "-c", BLOCKER, *CORE, *MIDDLE], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_core_does_not_import_tqdm():
    code = BLOCKER.replace('"pandas")', '"pandas", "tqdm", "tqdm.auto")')
    result = subprocess.run([sys.executable, "-c", code, *CORE], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
