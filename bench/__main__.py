"""`python -m bench [--quick | --scale S] [--out DIR] [--report] [suite ...]`: run benchmarks.

Each suite's last run at each scale is kept in DIR/results/ (default bench/); then
DIR/results.md, DIR/results.json and (when DIR is bench/) the README table are rewritten
from every suite's latest full-scale run, else its largest scaled-down one. `--quick` is
scale 0.01 into a temporary directory: a check that every benchmark runs, not a measurement.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK_SCALE = 0.01


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suites", nargs="*", metavar="suite", help="default: every suite")
    parser.add_argument("--scale", type=float, help="BENCH_SCALE (default 1: the full size)")
    parser.add_argument("--quick", action="store_true", help=f"scale {QUICK_SCALE}, temp --out")
    parser.add_argument("--out", type=Path, help="where the results go (default bench/)")
    parser.add_argument("--report", action="store_true", help="rewrite the reports only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the suites asked (all by default), then rewrite the reports."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    scale = args.scale if args.scale is not None else (QUICK_SCALE if args.quick else None)
    if scale is not None:
        os.environ["BENCH_SCALE"] = str(scale)  # read by the harness when it is imported
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-")) if args.quick else ROOT / "bench")
    readme = ROOT / "README.md" if out.resolve() == (ROOT / "bench").resolve() else None

    from bench.harness.config import SCALE, log
    from bench.harness.results import publish, save, table
    from bench.suites import SUITES

    unknown = set(args.suites) - set(SUITES)
    if unknown:
        raise SystemExit(f"unknown suite {sorted(unknown)}: choose from {', '.join(SUITES)}")
    for name in [] if args.report else (args.suites or list(SUITES)):
        log(f"== {name} (scale {SCALE})")
        results = SUITES[name]()
        save(out, name, results, SCALE)
        print(table(results))
    publish(out, tuple(SUITES), readme)
    log(f"results in {out}" + (" and README.md" if readme else ""))


if __name__ == "__main__":
    main()
