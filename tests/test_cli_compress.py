"""``python -m dclab compress / inspect / evaluate`` run as a user would, in a subprocess."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dclab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "dclab", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


BAD = [
    (["compress", "lenet300", "--bits-fc", "0"], "bits for fc layers must be an integer from 1 to 16"),
    (["compress", "lenet300", "--bits-conv", "17"], "bits for conv layers must be an integer from 1 to 16"),
    (["compress", "lenet300", "--sparsity", "1.0"], r"sparsity must be in \[0, 1\)"),
    (["compress", "lenet300", "--sparsity", "ip1=1.5"], "sparsity of layer 'ip1'"),
    (["compress", "lenet300", "--sparsity", "lots"], "--sparsity takes a number"),
    (["compress", "lenet300", "--quality", "-1"], "quality must be a finite number >= 0"),
    (["compress", "lenet300", "--bits-fc", "five"], "invalid int value"),
    (["compress", "lenet300", "--init", "kmeans++"], "invalid choice"),
    (["compress", "alexnet"], "no trained baseline called 'alexnet'"),
    (["compress", "lenet300", "--layer-bits", "ip1=0"], "bits of layer 'ip1' must be an integer from 1 to 16"),
    (["compress", "lenet300", "--layer-bits", "ip1=2.5"], "--layer-bits takes NAME=BITS"),
    (["compress", "lenet300", "--layer-bits", "ip9=3"], "the model has no layer ip9"),
    (["compress", "lenet300", "--coder", "ans", "--no-huffman"], "coder='ans' entropy-codes .* choose one"),
    (["compress", "lenet300", "--coder", "arithmetic"], "invalid choice"),
    (["compress", "lenet300", "--codebook-bits", "8"], "invalid choice"),
    (["inspect", "missing.dcz"], "no such file: missing.dcz"),
    (["evaluate", "missing.dcz"], "no such file: missing.dcz"),
]


def _one_line_error(err: str, reason: str) -> None:
    err = err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and re.search(reason, err), err


@pytest.mark.parametrize("args, reason", BAD)
def test_bad_options_fail_with_one_line(args, reason, tmp_path, monkeypatch, capsys):
    from dclab.cli import main

    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    assert code != 0
    _one_line_error(capsys.readouterr().err, reason)


@pytest.mark.parametrize("case", [0, 1, 8, 15], ids=["bits-0", "bits-17", "unknown-model", "missing-file"])
def test_bad_options_exit_nonzero_in_a_shell(case, tmp_path):
    args, reason = BAD[case]
    done = dclab(*args, cwd=tmp_path)
    assert done.returncode != 0
    _one_line_error(done.stderr, reason)


def test_not_a_dcz_file(tmp_path):
    bogus = tmp_path / "model.dcz"
    bogus.write_bytes(b"PK\x03\x04 a zip, not a dcz")
    done = dclab("evaluate", str(bogus))
    assert done.returncode != 0
    _one_line_error(done.stderr, "not a dclab compressed model")


def test_compress_inspect_evaluate(lenet300, tmp_path):
    out = tmp_path / "tiny.dcz"
    done = dclab(
        "compress", "lenet300", "--out", str(out), "--sparsity", "ip1=0.9,ip2=0.9,ip3=0.7",
        "--prune-steps", "1", "--retrain-epochs", "1", "--finetune-epochs", "1", "--train-subset", "600",
    )
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    size = out.stat().st_size
    assert f"wrote {out}: {size:,} bytes on disk" in done.stdout
    assert "ip1" in done.stdout and "+ Huffman" in done.stdout
    after = re.search(r"test error: [\d.]+% -> ([\d.]+)%", done.stdout).group(1)

    shown = dclab("inspect", str(out))
    assert shown.returncode == 0, shown.stderr
    assert f"lenet300, Huffman-coded, {size:,} bytes" in shown.stdout
    for layer in ("ip1", "ip2", "ip3", "total"):
        assert re.search(rf"^{layer}\s", shown.stdout, re.M), shown.stdout
    assert re.search(r"^ip1\s+235,200\s+10\.0%", shown.stdout, re.M)

    scored = dclab("evaluate", str(out))
    assert scored.returncode == 0, scored.stderr
    assert f"test error {after}%" in scored.stdout


def test_compress_with_the_frontier_recipe_writes_its_file_and_the_cached_copy(lenet300, tmp_path, capsys):
    """``--recipe frontier`` starts from the frontier settings (the schedule overridden here to be quick; float16
    biases asked for), and the run lands where notebook 07 looks for it (``compressed_path`` of its config)."""
    from dclab.cli import main
    from dclab.codec.container import read_dcz
    from dclab.lessons.coding import compressed_path
    from dclab.pipeline import FRONTIER, CompressionConfig

    quick = {"prune_steps": 1, "retrain_epochs": 1, "finetune_epochs": 1, "train_subset": 600, "bias_bits": 16}
    out = tmp_path / "frontier.dcz"
    assert main(["compress", "lenet300", "--recipe", "frontier", "--out", str(out), "--prune-steps", "1",
                 "--retrain-epochs", "1", "--finetune-epochs", "1", "--train-subset", "600", "--bias-bits", "16"]) == 0
    config = read_dcz(out).meta["config"]
    assert out.read_bytes()[8:10] == b"\x02\x00" and config["bias_bits"] == 16  # float16 biases: version 2
    assert all(layer.bias_bits == 16 for layer in read_dcz(out).layers)
    assert config["sparsity"] == FRONTIER["lenet300"]["sparsity"] and config["fc_bits"] == FRONTIER["lenet300"]["fc_bits"]
    cached = compressed_path("lenet300", CompressionConfig.preset("lenet300", "frontier", **quick))
    try:
        assert cached.read_bytes() == out.read_bytes()
        assert str(cached) in capsys.readouterr().out
    finally:
        cached.unlink(missing_ok=True)


def test_layer_bits_set_the_named_layers_codebooks(lenet300, tmp_path):
    """``--layer-bits ip1=3`` (what benchmarks/allocation.py allocates): ip1 shares at most 2**3 values, the other
    fc layers keep the fc bits; the file records the setting."""
    from dclab.cli import main
    from dclab.codec.container import read_dcz
    from dclab.lessons.coding import compressed_path
    from dclab.pipeline import CompressionConfig

    out = tmp_path / "allocated.dcz"
    quick = ["--prune-steps", "1", "--retrain-epochs", "1", "--finetune-epochs", "1", "--train-subset", "600"]
    assert main(["compress", "lenet300", "--layer-bits", "ip1=3", "--bits-fc", "5", "--out", str(out), *quick]) == 0
    dcz = read_dcz(out)
    bits = {layer.name: layer.bits for layer in dcz.layers}
    assert bits == {"ip1": 3, "ip2": 5, "ip3": 5} and dcz.meta["config"]["layer_bits"] == {"ip1": 3}
    assert all(len(layer.centroids) <= 2 ** layer.bits for layer in dcz.layers)
    config = CompressionConfig.preset("lenet300", layer_bits={"ip1": 3}, fc_bits=5, prune_steps=1, retrain_epochs=1,
                                      finetune_epochs=1, train_subset=600)
    compressed_path("lenet300", config).unlink(missing_ok=True)  # the copy the command cached


def test_ans_and_float16_codebooks_from_the_command_line(lenet300, tmp_path, capsys):
    """``--coder ans --codebook-bits 16`` writes a version-3 file: ANS-coded, float16 centroids, the settings in
    its metadata; ``inspect`` says so and ``evaluate`` reads back the error the run measured."""
    from dclab.cli import main
    from dclab.codec.container import read_dcz
    from dclab.lessons.coding import compressed_path
    from dclab.pipeline import CompressionConfig

    out = tmp_path / "ans.dcz"
    quick = ["--prune-steps", "1", "--retrain-epochs", "1", "--finetune-epochs", "1", "--train-subset", "600"]
    assert main(["compress", "lenet300", "--coder", "ans", "--codebook-bits", "16", "--out", str(out), *quick]) == 0
    dcz = read_dcz(out)
    assert out.read_bytes()[8:10] == b"\x03\x00" and dcz.ans
    assert all(layer.codebook_bits == 16 for layer in dcz.layers)
    assert dcz.meta["config"]["coder"] == "ans" and dcz.meta["config"]["codebook_bits"] == 16
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    assert f"lenet300, ANS-coded, {out.stat().st_size:,} bytes" in capsys.readouterr().out
    assert main(["evaluate", str(out)]) == 0
    assert f"test error {100 * dcz.meta['test_error_after']:.2f}%" in capsys.readouterr().out
    config = CompressionConfig.preset("lenet300", coder="ans", codebook_bits=16, prune_steps=1, retrain_epochs=1,
                                      finetune_epochs=1, train_subset=600)
    compressed_path("lenet300", config).unlink(missing_ok=True)  # the copy the command cached
