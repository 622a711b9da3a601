"""`python -m bench`: run every benchmark, write bench/results.md and the README table."""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.common import SCALE, Result

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


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


def main() -> None:
    from bench import projections_bench

    suites = {"projections": projections_bench.run}
    try:
        from bench import http_bench

        suites = {"http": http_bench.run, **suites}
    except ImportError:
        pass
    try:
        from bench import import_bench

        suites["imports"] = import_bench.run
    except ImportError:
        pass
    wanted = sys.argv[1:] or list(suites)
    results: list[Result] = []
    for name in wanted:
        print(f"== {name}", file=sys.stderr)
        results += suites[name]()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"Measured {stamp} on {platform.node()} ({platform.machine()}, "
        f"{__import__('os').cpu_count()} cores), scale {SCALE}."
    )
    body = f"{header}\n\n{table(results)}\n"
    (ROOT / "bench" / "results.md").write_text(f"# Benchmark results\n\n{body}")
    readme = ROOT / "README.md"
    if readme.exists() and BEGIN in readme.read_text() and SCALE == 1:
        text = readme.read_text()
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{BEGIN}\n{body}{END}{tail}")
    print(body)


if __name__ == "__main__":
    main()
