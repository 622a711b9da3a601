"""Result rows and their files: one record per suite, bench/results.md, bench/results.json and
the README table, each from every suite's latest full-scale run (else its largest scaled one)."""

from __future__ import annotations

import json
import os
import platform
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness.config import log

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
MEASURED_FORMAT = "%Y-%m-%d %H:%M UTC"


@dataclass(frozen=True)
class Figure:
    """A row's figure as a number, named as in bench/results.json (`http.commands_per_s`)."""

    metric: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    target: str | None = None
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        """value / baseline_value, when there is a baseline."""
        if self.baseline_value is None or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value


@dataclass(frozen=True)
class Result:
    """One line of the results table: a figure, its baseline, and the target."""

    bench: str
    metric: str
    value: str
    baseline: str
    ratio: str
    target: str
    ok: bool | None
    figures: tuple[Figure, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        """A row read back from a suite's record."""
        figures = tuple(Figure(**f) for f in data.get("figures", ()))
        return cls(**{**data, "figures": figures})


def table(results: list[Result]) -> str:
    """The markdown table of the rows."""
    lines = [
        "| bench | metric | value | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        met = "" if r.ok is None else ("yes" if r.ok else "**no**")
        cells = (r.bench, r.metric, r.value, r.baseline, r.ratio, r.target, met)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def guarded(bench: str, measure: Callable[[], list[Result]]) -> list[Result]:
    """The measurement's rows, or one failed row saying why (the traceback goes to stderr)."""
    try:
        return measure()
    except Exception as error:
        log(f"{bench} failed:\n{traceback.format_exc()}")
        why = f"{type(error).__name__}: {error}"[:160].replace("|", "/").replace("\n", " ")
        return [Result(bench, "benchmark failed", why, "", "", "", False)]


def save(out: Path, suite: str, results: list[Result], scale: float) -> None:
    """Keep this run of `suite` as its latest record at this scale (out/results/SUITE.json)."""
    (out / "results").mkdir(parents=True, exist_ok=True)
    record = {
        "suite": suite,
        "measured": datetime.now(UTC).strftime(MEASURED_FORMAT),
        "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores)",
        "scale": scale,
        "results": [asdict(r) for r in results],
    }
    suffix = "" if scale == 1 else f".scale-{scale}"
    (out / "results" / f"{suite}{suffix}.json").write_text(json.dumps(record, indent=1) + "\n")


def latest(out: Path, suites: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each suite's full-scale record, or else its largest scaled-down one."""
    records = []
    for suite in suites:
        full = out / "results" / f"{suite}.json"
        paths = [full] if full.exists() else list((out / "results").glob(f"{suite}.scale-*.json"))
        found = [json.loads(p.read_text()) for p in paths]
        if found:
            records.append(max(found, key=lambda record: float(record["scale"])))
    return records


def markdown(records: list[dict[str, Any]]) -> str:
    """The tables of the records, each under its suite, date, machine and scale."""
    parts = []
    for record in records:
        rows = [Result.from_dict(r) for r in record["results"]]
        scaled = "" if record["scale"] == 1 else " (scaled down: not the issue's full size)"
        parts.append(
            f"**{record['suite']}**, measured {record['measured']} on {record['machine']}, "
            f"scale {record['scale']}{scaled}:\n\n{table(rows)}\n"
        )
    return "\n".join(parts) or "Not yet measured at full scale: run `make bench`.\n"


def figures(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of bench/results.json: every figure of the records, with its run."""
    entries = []
    for record in records:
        measured = datetime.strptime(record["measured"], MEASURED_FORMAT).replace(tzinfo=UTC)
        for row in record["results"]:
            for f in Result.from_dict(row).figures:
                entries.append(
                    {
                        "suite": record["suite"],
                        "metric": f.metric,
                        "value": round(f.value, 4),
                        "unit": f.unit,
                        "baseline": f.baseline,
                        "baseline_value": _rounded(f.baseline_value, 4),
                        "ratio": _rounded(f.ratio, 4),
                        "target": f.target,
                        "met": f.met,
                        "scale": record["scale"],
                        "measured_at": measured.isoformat().replace("+00:00", "Z"),
                    }
                )
    return entries


def _rounded(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def publish(out: Path, suites: tuple[str, ...], readme: Path | None) -> None:
    """Write out/results.md, out/results.json and (when given) the README's table."""
    records = latest(out, suites)
    body = markdown(records)
    (out / "results.md").write_text(f"# Benchmark results (full scale)\n\n{body}")
    (out / "results.json").write_text(json.dumps(figures(records), indent=1) + "\n")
    if readme is None:
        return
    text = readme.read_text()
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{BEGIN}\n{body}{END}{tail}")
