"""Benchmark: a newcomer's first run, timed: a fresh clone, an empty dclab cache, `CI=true bash .ci/run`.

    DCLAB_DATA=../shared/data python benchmarks/first_run.py [--seed N] [--keep]
    python benchmarks/first_run.py --from-log ci.log [--commit C]  # the timeline of a run logged elsewhere

Clones this checkout's HEAD into a temporary folder, runs its `.ci/run` there (a new `.venv`,
so the install is timed too; `.ci/run` makes its own empty `DCLAB_CACHE`), and writes the
timeline read from the log: install, `prepare` per model (the one summary line each training
prints), the test suite with pytest's closing line, the whole run. It measures, it checks
nothing: the tests inside it do.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _results import write_section  # noqa: E402

STAMP = re.compile(r"^\[ci\] \S+ (setup|prepare|tests) done after (\d+) s", re.M)
TRAINED = re.compile(r"^trained (.+?): (\d+) epochs in (\d+) s on (\d+) thread\(s\), test error ([\d.]+)% "
                     r"\(target <= ([\d.]+)%(?: MISSED THE TARGET)?, seed (\d+)\)", re.M)
CLIMBED = re.compile(r"^(\w+): Ladder\((.+?): (\d+) retrained rungs;.*\), climbed in (\d+) s", re.M)
PYTEST = re.compile(r"^=+ (.*\d+ passed.*) in ([\d.]+)s.*=+$", re.M)


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def run_fresh_clone(seed: int | None, keep: bool) -> tuple[str, float, tuple[float, float]]:
    """Clone HEAD, run `.ci/run` in it; (log, wall seconds, load average before/after)."""
    work = Path(tempfile.mkdtemp(prefix="dclab-first-run-"))
    clone = work / "dclab"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCLAB_CACHE", "VIRTUAL_ENV"))}
    env.update(CI="true", DCLAB_DATA=str(Path(env.get("DCLAB_DATA", ROOT.parent / "shared" / "data")).resolve()))
    if seed is not None:
        env["DCLAB_SEED"] = str(seed)
    load = os.getloadavg()[0]
    start = time.monotonic()
    log = work / "ci.log"
    print(f"running .ci/run in {clone}; its log grows in {log}", flush=True)
    with open(log, "w") as out:
        proc = subprocess.run(["bash", ".ci/run"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.monotonic() - start
    print(f"log: {log} (exit {proc.returncode})")
    if proc.returncode != 0:
        raise SystemExit(f".ci/run failed (exit {proc.returncode}); the log is {log}")
    if not keep:
        subprocess.run(["rm", "-rf", str(clone)], check=False)
    return log.read_text(), wall, (load, os.getloadavg()[0])


def timeline(log: str, wall: float | None, load: tuple[float, float] | None, seed: int | None = None,
             commit: str | None = None) -> str:
    stamps = {name: int(s) for name, s in STAMP.findall(log)}
    if set(stamps) != {"setup", "prepare", "tests"}:
        raise SystemExit("the log has no complete [ci] timeline (is it the output of .ci/run?)")
    rows = [("install (`make setup`: venv, torch, dclab and its test tools)", stamps["setup"])]
    for title, epochs, seconds, threads, error, target, trained_seed in TRAINED.findall(log):
        rows.append((f"`prepare`: {title}, {epochs} epochs, test error {error}% (target <= {target}%, "
                     f"seed {trained_seed}, {threads} threads)", int(seconds)))
    climbed = {}
    for arch, _, rungs, seconds in CLIMBED.findall(log):
        climbed.setdefault(arch, (rungs, int(seconds)))  # `make test` prints the cached ladders again
    for arch, (rungs, seconds) in climbed.items():
        rows.append((f"`prepare`: the retrained ladder of {arch}, {rungs} rungs", seconds))
    rows.append(("`prepare` in all (MNIST from `DCLAB_DATA`, every baseline trained, the ladders climbed)",
                 stamps["prepare"] - stamps["setup"]))
    summary = PYTEST.findall(log)
    tests = f"test suite (`make test`: {summary[-1][0]})" if summary else "test suite (`make test`)"
    rows.append((tests, stamps["tests"] - stamps["prepare"]))
    rows.append(("**the whole `.ci/run`**", stamps["tests"]))
    lines = [
        "## First run on a fresh machine (issue 10)" + ("" if seed is None else f", baselines of seed {seed}"),
        "",
        "A fresh clone" + (f" of commit {commit}" if commit else "") + ", a new `.venv`, an empty `DCLAB_CACHE`: "
        "`CI=true bash .ci/run`" + ("" if seed is None else f" with `DCLAB_SEED={seed}`") + ", which calls README's "
        "`make test` (install, then `prepare` trains every baseline, then the whole suite, browser tests "
        "included). Times from the run's own log.",
        "",
        "| step | seconds | minutes |",
        "|---|---|---|",
        *[f"| {name} | {s:,} | {s / 60:.1f} |" for name, s in rows],
        "",
    ]
    if wall is not None and load is not None:
        lines.append(f"Wall clock of the whole command: {wall / 60:.1f} min; load average (1 min) before / after: "
                     f"{load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} CPUs (the machine is shared).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, help="train the baselines with this seed (DCLAB_SEED)")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its .venv is ~6 GB)")
    parser.add_argument("--from-log", type=Path, help="read the timeline from a saved .ci/run log instead")
    parser.add_argument("--commit", help="with --from-log: the commit that run tested, named in the record")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args()
    if args.from_log:
        markdown = timeline(args.from_log.read_text(), None, None, commit=args.commit)
    else:
        markdown = timeline(*run_fresh_clone(args.seed, args.keep), seed=args.seed, commit=head_commit())
    print(markdown)
    if not args.no_write:
        write_section("first-run" if args.seed is None else f"first-run-seed-{args.seed}", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
