"""``python -m dclab``: prepare data and baselines, compress, inspect and evaluate models."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from dclab.deprecation import warn_renamed
from dclab.errors import DclabError


def cmd_prepare(args: argparse.Namespace) -> int:
    """Fetch MNIST and train (or load) every baseline, printing what was measured."""
    from dclab import zoo
    from dclab.data import load_mnist
    from dclab.paths import data_root
    from dclab.pipeline.ladder import LEVELS, ladder_dir, retrained_ladder

    load_mnist("train")
    load_mnist("test")
    print(f"MNIST ready in {data_root()}")
    for name in args.models:
        zoo.pretrained(name)
        info = zoo.baseline_info(name)
        print(
            f"{name}: test error {100 * info['test_error']:.2f}% "
            f"(trained in {info['train_seconds']:.0f} s), cached at {zoo.checkpoint_path(name)}"
        )
    for name in args.models:
        if name in LEVELS:  # the retrained networks behind the live pages
            ladder = retrained_ladder(name)
            seconds = sum(r.seconds for r in ladder.rungs)
            print(f"{name}: {ladder!r}, climbed in {seconds:.0f} s, cached at {ladder_dir(name)}")
    return 0


def _per_layer(spec: str | None, what: str) -> float | dict[str, float] | None:
    """``"0.9"`` -> 0.9; ``"ip1=0.95,ip2=0.9"`` -> a dict by layer name."""
    if spec is None:
        return None
    try:
        if "=" not in spec:
            return float(spec)
        pairs = (item.split("=", 1) for item in spec.split(",") if item.strip())
        return {name.strip(): float(value) for name, value in pairs}
    except ValueError:
        raise DclabError(f"--{what} takes a number or NAME=NUMBER,... (e.g. ip1=0.95,ip2=0.9), not {spec!r}") from None


def _layer_bits(spec: str | None) -> dict[str, int] | None:
    """``"ip1=3,ip3=4"`` -> ``{"ip1": 3, "ip3": 4}`` (bits per index of those layers; the others by kind)."""
    values = _per_layer(spec, "layer-bits")
    if values is None:
        return None
    if not isinstance(values, dict) or any(v != int(v) for v in values.values()):
        raise DclabError(f"--layer-bits takes NAME=BITS,... with whole numbers (e.g. ip1=3,ip3=4), not {spec!r}")
    return {name: int(v) for name, v in values.items()}


class _RenamedFlag(argparse.Action):
    """An old flag: stores into the new flag's value and says, once, what it is called now."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"note: {option_string} is now called {self.new}; {option_string} will be removed later",
              file=sys.stderr)
        warn_renamed(option_string or "", self.new)
        setattr(namespace, self.dest, values)


def cmd_compress(args: argparse.Namespace) -> int:
    """Compress a trained baseline into a .dcz file and print the per-layer report."""
    from dclab import zoo
    from dclab.lessons.coding import compressed_path
    from dclab.pipeline import CompressionConfig, compress

    given = {
        "sparsity": _per_layer(args.sparsity, "sparsity"),
        "quality": _per_layer(args.quality, "quality"),
        "conv_bits": args.bits_conv,
        "fc_bits": args.bits_fc,
        "layer_bits": _layer_bits(args.layer_bits),
        "conv_gap_bits": args.gap_bits_conv,
        "fc_gap_bits": args.gap_bits_fc,
        "prune_steps": args.prune_steps,
        "retrain_epochs": args.retrain_epochs,
        "finetune_epochs": args.finetune_epochs,
        "init": args.init,
        "bias_bits": args.bias_bits,
        "codebook_bits": args.codebook_bits,
        "coder": args.coder,
        "train_subset": args.train_subset,
        "seed": args.seed,
    }
    config = CompressionConfig.preset(
        args.model, args.recipe, huffman=not args.no_huffman, **{k: v for k, v in given.items() if v is not None}
    )
    out = args.out or f"{args.model}.dcz"
    result = compress(zoo.pretrained(args.model), config, arch=args.model)
    size = result.save(out)
    print(result.report)
    print(f"wrote {out}: {size:,} bytes on disk")
    cached = compressed_path(args.model, config)  # where notebooks 04 and 07 look for this run
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        result.save(cached)
        print(f"and a copy for notebooks 04 and 07: {cached}")
    except OSError as exc:  # a shared, read-only cache: the file written above is the result
        print(f"(not copied into the cache, {cached.parent}: {exc.strerror or exc})")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the per-layer table of a .dcz, from the file alone."""
    from dclab.codec.container import read_dcz
    from dclab.pipeline import report_from_dcz

    dcz = read_dcz(_existing(args.file))
    coding = {"huffman": "Huffman-coded", "ans": "ANS-coded", "fixed-width": "fixed-width"}[dcz.coding]
    print(f"{args.file}: {dcz.arch}, {coding}, {dcz.n_bytes:,} bytes")
    print(report_from_dcz(dcz))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Rebuild the model stored in a .dcz and measure its MNIST test error."""
    from dclab.data import load_mnist
    from dclab.pipeline import load_model
    from dclab.train import test_error

    model = load_model(_existing(args.file))
    error = test_error(model, load_mnist("test"))
    print(f"{args.file}: test error {100 * error:.2f}% on the 10,000 MNIST test digits")
    return 0


def cmd_student_copies(args: argparse.Namespace) -> int:
    """Write student versions of the lecture notebooks: solutions replaced by stubs, outputs cleared."""
    from dclab.student import write_student_copies

    copies = write_student_copies(args.out_dir, notebooks=args.notebooks or None, source=args.source)
    for copy in copies:
        exercises = ", ".join(copy.exercises) if copy.exercises else "no exercises"
        print(f"{copy.path}: {len(copy.exercises)} exercise{'s' if len(copy.exercises) != 1 else ''} ({exercises})")
        for warning in copy.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    total = sum(len(c.exercises) for c in copies)
    print(f"wrote {len(copies)} student notebook{'s' if len(copies) != 1 else ''} ({total} exercises in all) to {args.out_dir}")
    return 0


def _existing(path: str) -> str:
    from pathlib import Path

    if not Path(path).is_file():
        raise DclabError(f"no such file: {path}; create one with `python -m dclab compress lenet300 --out {path}`")
    return path


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _add_compression_commands(commands: argparse._SubParsersAction) -> None:
    from dclab.algorithms.quantize import ALL_INITS
    from dclab.pipeline.config import RECIPES

    compress = commands.add_parser("compress", help="prune, quantize and Huffman-code a baseline into a .dcz")
    compress.add_argument("model", help="lenet300 or lenet5")
    compress.add_argument("--out", help="output file (default MODEL.dcz)")
    compress.add_argument("--recipe", choices=RECIPES, default="default",
                          help="tuned settings to start from: default, or frontier (as in notebook 07); "
                               "the options below override them")
    compress.add_argument("--sparsity", help="fraction removed: 0.9, or per layer ip1=0.95,ip2=0.9")
    compress.add_argument("--quality", help="threshold in stds of the layer's weights: 1.0, or per layer")
    compress.add_argument("--bits-conv", type=int, help="bits per weight index, conv layers (8)")
    compress.add_argument("--bits-fc", type=int, help="bits per weight index, fc layers (5)")
    compress.add_argument("--layer-bits", help="bits per weight index of named layers, e.g. ip1=3,ip3=4 "
                                               "(the others by kind; as benchmarks/allocation.py allocates)")
    compress.add_argument("--gap-bits-conv", type=int, help="bits per sparse gap, conv layers (8)")
    compress.add_argument("--gap-bits-fc", type=int, help="bits per sparse gap, fc layers (5)")
    for kind in ("conv", "fc"):  # dclab 1's names, still accepted
        compress.add_argument(f"--index-bits-{kind}", type=int, dest=f"gap_bits_{kind}", action=_RenamedFlag,
                              new=f"--gap-bits-{kind}", help=argparse.SUPPRESS)
    compress.add_argument("--prune-steps", type=int, help="iterative pruning steps (model preset)")
    compress.add_argument("--retrain-epochs", type=int, help="retraining epochs per pruning step (model preset)")
    compress.add_argument("--finetune-epochs", type=int, help="centroid fine-tuning epochs (1)")
    compress.add_argument("--init", choices=ALL_INITS, help="k-means initialization (linear; optimal: the least-squares clustering)")
    compress.add_argument("--bias-bits", type=int, choices=(32, 16),
                          help="store biases as float32 (32, a version-1 file) or float16 (16, a version-2 file)")
    compress.add_argument("--codebook-bits", type=int, choices=(32, 16),
                          help="store codebooks (centroids) as float32 (32) or float16 (16, a version-3 file)")
    compress.add_argument("--coder", choices=("huffman", "ans"),
                          help="entropy-code indices and gaps with Huffman (huffman, the paper's and the default) "
                               "or ANS (ans, a version-3 file, notebook 07)")
    compress.add_argument("--no-huffman", action="store_true", help="write fixed-width codes")
    compress.add_argument("--train-subset", type=int, help="train on the first N digits only (quick runs)")
    compress.add_argument("--seed", type=int, help="training seed (0)")
    compress.set_defaults(run=cmd_compress)
    inspect = commands.add_parser("inspect", help="per-layer table of a .dcz, from the file alone")
    inspect.add_argument("file")
    inspect.set_defaults(run=cmd_inspect)
    evaluate = commands.add_parser("evaluate", help="MNIST test error of the model in a .dcz")
    evaluate.add_argument("file")
    evaluate.set_defaults(run=cmd_evaluate)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the notebooks as Voila dashboards on 127.0.0.1 (what ``make demo`` runs)."""
    from dclab.serve import serve

    return serve(args.port, args.host)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m dclab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    prepare = commands.add_parser("prepare", help="download MNIST and train/cache the baselines")
    prepare.add_argument("--models", nargs="+", default=["lenet300", "lenet5", "firenet"], help="baselines to prepare")
    prepare.set_defaults(run=cmd_prepare)
    serve = commands.add_parser("serve", help="serve the notebooks as Voila dashboards (make demo)")
    serve.add_argument("--port", type=int, default=8866, help="port (8866)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)")
    serve.set_defaults(run=cmd_serve)
    _add_compression_commands(commands)
    student = commands.add_parser("student-copies", help="write the lecture notebooks for students: solutions replaced by stubs")
    student.add_argument("out_dir", metavar="OUT_DIR", help="folder for the student notebooks (created if missing)")
    student.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="notebooks to copy (default: lectures 01-05 and any with solutions)")
    student.add_argument("--source", help="folder of the instructor notebooks (default: the repository's notebooks/)")
    student.set_defaults(run=cmd_student_copies)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except DclabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
