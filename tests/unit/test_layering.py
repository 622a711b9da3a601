"""The layers import inward only, and no two of our modules import each other in a circle."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "projections", "importers", "workers", "service")
STDLIB = set(sys.stdlib_module_names) - {"socket", "ssl", "urllib", "http", "smtplib", "ftplib"}
PURE = ("urllib.parse",)  # string parsing only: allowed where its package is not
ALLOWED: dict[str, set[str] | None] = {  # None: an edge, may import anything
    "domain": STDLIB | {"domain", "eventsourcing"},
    "projections": STDLIB | {"domain", "projections", "eventsourcing", "psycopg", "psycopg_pool"},
    "importers": STDLIB | {"domain", "importers", "eventsourcing", "openpyxl", "yaml"},
    "workers": None,
    "service": None,
}


def modules() -> dict[str, Path]:
    """Every module of our packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path) -> set[str]:
    """The modules `name` imports, at module level or inside functions."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def ours(target: str, known: dict[str, Path]) -> str | None:
    """The module of ours that `target` names (a module, or a name inside one)."""
    while target:
        if target in known:
            return target
        target = target.rpartition(".")[0]
    return None


def test_every_import_points_inward() -> None:
    wrong = []
    for name, path in modules().items():
        allowed = ALLOWED[name.split(".")[0]]
        if allowed is None:
            continue
        wrong += [
            f"{name} -> {target}"
            for target in sorted(imports(name, path))
            if target.split(".")[0] not in allowed
            and not any(target == p or target.startswith(p + ".") for p in PURE)
        ]
    assert not wrong, "imports pointing the wrong way:\n" + "\n".join(wrong)


def test_no_import_circle_between_our_modules() -> None:
    known = modules()
    graph = {
        name: {m for t in imports(name, path) if (m := ours(t, known)) and m != name}
        for name, path in known.items()
    }
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_importing_the_worker_builds_no_app_and_the_app_follows_the_settings() -> None:
    code = (
        "import celery._state as state, workers.main, workers.tasks, workers.enqueue\n"
        "assert not list(state._apps), 'a Celery app was built at import time'\n"
        "from workers.main import app\n"
        "digests = app.conf.beat_schedule['alert-digests']['schedule']\n"
        "print(app.conf.task_default_queue, *digests.hour)\n"
    )
    env = {**os.environ, "CELERY_QUEUE": "q-from-settings", "DIGEST_HOUR_UTC": "9"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["q-from-settings", "9"]


def test_the_worker_names_every_registered_projection_in_commit_order() -> None:
    from projections.registry import PROJECTIONS
    from workers.celery_app import PROJECTIONS as TASK_NAMES

    assert TASK_NAMES == tuple(PROJECTIONS)
