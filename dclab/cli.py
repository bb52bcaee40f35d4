"""``python -m dclab``: prepare data and baselines, compress, inspect and evaluate models."""
from __future__ import annotations

import argparse
import sys

from .errors import DclabError


def cmd_prepare(args: argparse.Namespace) -> int:
    """Fetch MNIST and train (or load) every baseline, printing what was measured."""
    from . import zoo
    from .data import load_mnist
    from .paths import data_root

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
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dclab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    prepare = commands.add_parser("prepare", help="download MNIST and train/cache the baselines")
    prepare.add_argument("--models", nargs="+", default=["lenet300", "lenet5"], help="baselines to prepare")
    prepare.set_defaults(run=cmd_prepare)
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
