"""The benchmark reports: bench/results.json beside the table, from each suite's latest run."""

from __future__ import annotations

import json
from pathlib import Path

from bench.harness.results import BEGIN, END, Figure, Result, publish, save

KEYS = {"suite", "metric", "value", "unit", "baseline", "baseline_value", "ratio", "target",
        "met", "scale", "measured_at"}  # fmt: skip


def _row(rate: float) -> Result:
    figure = Figure("http.commands_per_s", rate, "cmd/s", "raw", 200.0, ">= 0.7 x raw", True)
    return Result(
        "http", "commands/s", f"{rate:.0f} cmd/s", "raw 200 cmd/s", "", "", True, (figure,)
    )


def test_results_json_holds_the_full_scale_figures_next_to_the_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold table\n{END}\nrest\n")
    save(tmp_path, "http", [_row(150.0)], 1.0)
    save(tmp_path, "http", [_row(90.0)], 0.01)  # a quick run does not hide the full-scale one
    row = Result("alerts", "breach", "40 ms", "", "", "", None)  # a row without figures
    save(tmp_path, "alerts", [row], 0.05)

    publish(tmp_path, ("http", "projections", "alerts"), readme)

    entries = json.loads((tmp_path / "results.json").read_text())
    assert [e["metric"] for e in entries] == ["http.commands_per_s"]
    (entry,) = entries
    assert set(entry) == KEYS
    assert (entry["suite"], entry["value"], entry["baseline_value"]) == ("http", 150.0, 200.0)
    assert (entry["ratio"], entry["met"], entry["scale"]) == (0.75, True, 1.0)
    assert entry["measured_at"].endswith("Z")
    text = readme.read_text()
    assert "150 cmd/s" in text and "90 cmd/s" not in text and "old table" not in text
    assert "scale 0.05 (scaled down" in text and text.endswith(f"{END}\nrest\n")


def test_the_committed_results_json_is_what_the_committed_records_give() -> None:
    root = Path(__file__).resolve().parents[2] / "bench"
    from bench.harness.results import figures, latest
    from bench.suites import SUITES

    assert json.loads((root / "results.json").read_text()) == figures(latest(root, tuple(SUITES)))
