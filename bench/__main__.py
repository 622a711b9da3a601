"""`python -m bench [suite ...]`: run benchmarks, keep each suite's last results, and write
bench/results.md and the README table from every suite's latest full-scale run."""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from bench.common import SCALE, Result

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
SUITES = ("http", "projections", "imports", "alerts")
MODULES = {
    "http": "bench.http_bench",
    "projections": "bench.projections_bench",
    "imports": "bench.import_bench",
    "alerts": "bench.alerts_bench",
}


def table(results: list[Result]) -> str:
    lines = [
        "| bench | metric | value | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        met = "" if r.ok is None else ("yes" if r.ok else "**no**")
        cells = (r.bench, r.metric, r.value, r.baseline, r.ratio, r.target, met)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _available() -> dict[str, Callable[[], list[Result]]]:
    found = {}
    for name in SUITES:
        try:
            module = importlib.import_module(MODULES[name])
        except ImportError:
            continue
        found[name] = module.run
    return found


def _save(name: str, results: list[Result]) -> None:
    RESULTS.mkdir(exist_ok=True)
    record = {
        "suite": name,
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores)",
        "scale": SCALE,
        "results": [asdict(r) for r in results],
    }
    suffix = "" if SCALE == 1 else f".scale-{SCALE}"
    (RESULTS / f"{name}{suffix}.json").write_text(json.dumps(record, indent=1) + "\n")


def _report() -> str:
    parts = []
    for name in SUITES:
        path = RESULTS / f"{name}.json"
        if not path.exists():  # no full-scale run: show the largest scaled-down one, labelled
            scaled = sorted(RESULTS.glob(f"{name}.scale-*.json"))
            if not scaled:
                continue
            path = scaled[-1]
        record = json.loads(path.read_text())
        rows = [Result(**r) for r in record["results"]]
        parts.append(
            f"**{name}**, measured {record['measured']} on {record['machine']}, "
            f"scale {record['scale']}"
            + ("" if record["scale"] == 1 else " (scaled down: not the issue's full size)")
            + f":\n\n{table(rows)}\n"
        )
    return "\n".join(parts) or "Not yet measured at full scale: run `make bench`.\n"


def main() -> None:
    suites = _available()
    wanted = sys.argv[1:] or list(suites)
    for name in wanted:
        print(f"== {name} (scale {SCALE})", file=sys.stderr)
        results = suites[name]()
        _save(name, results)
        print(table(results))
    body = _report()
    (ROOT / "bench" / "results.md").write_text(f"# Benchmark results (full scale)\n\n{body}")
    readme = ROOT / "README.md"
    text = readme.read_text()
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{BEGIN}\n{body}{END}{tail}")


if __name__ == "__main__":
    main()
