"""Hostile files through the real `panorama import` console script, as separate processes.

Each file is generated here, imported by its own child process (all children run at once),
and must be refused whole: exit 1, `import refused, nothing recorded: FILE, row R, column C:
why` on stderr, no traceback, nothing in the store, and a peak resident memory of the child
(from wait4) of at most 200 MB. The children run under a 2 GiB address-space limit so that a
regression fails the test instead of exhausting the machine.

Each child is started by a small launcher process, not by pytest itself: Linux carries the
peak RSS of the memory a process had before `exec` into its `ru_maxrss`, so a child forked
straight from a pytest that has grown to 200 MB over the suite would report at least that.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

from service.bootstrap import bootstrap
from service.config import Settings

PANORAMA = Path(sys.executable).with_name("panorama")
PEAK_RSS_LIMIT_KB = 200 * 1024
HEADER = ["Ministère porteur", "Nom du projet", "Coût estimé"]


def _xlsx(path: Path, rows: list[list[object]]) -> openpyxl.Workbook:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return workbook


def _rewrite(
    source: Path, target: Path, replace: dict[str, Callable[[zipfile.ZipFile], None]]
) -> None:
    """Copy an XLSX, writing the parts named in `replace` with their writer (None: drop it)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename not in replace:
                new.writestr(info, old.read(info))
        for write in replace.values():
            if write is not None:
                write(new)


def far_cell(path: Path) -> None:
    """4.8 KB: a header and one cell at XFD1048576, the dimension A1:XFD1048576."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet["XFD1048576"] = 1
    workbook.save(path)


def zip_bomb(path: Path) -> None:
    """A valid workbook whose sheet XML inflates to 64 MiB from about 64 KB."""
    base = path.with_name("bomb-base.xlsx")
    _xlsx(base, [HEADER])

    def sheet(z: zipfile.ZipFile) -> None:
        with z.open("xl/worksheets/sheet1.xml", "w") as out:
            out.write(
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
            )
            block = b"A" * (1 << 20)
            for _ in range(64):
                out.write(block)
            out.write(b"</t></is></c></row></sheetData></worksheet>")

    _rewrite(base, path, {"xl/worksheets/sheet1.xml": sheet})


def no_workbook(path: Path) -> None:
    """A zip with every XLSX part but xl/workbook.xml."""
    base = path.with_name("partial-base.xlsx")
    _xlsx(base, [HEADER, ["MJ", "X", 1]])
    _rewrite(base, path, {"xl/workbook.xml": None})  # type: ignore[dict-item]


def random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(9).randbytes(4096))


def wide_csv(path: Path) -> None:
    path.write_text(",".join(f"c{i}" for i in range(100_000)) + "\n", encoding="utf-8")


def big_cell_csv(path: Path, size: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(HEADER) + "\nMJ,")
        left = size
        while left:
            out.write("A" * min(left, 1 << 20))
            left -= min(left, 1 << 20)
        out.write(",12\n")


def nul_csv(path: Path) -> None:
    path.write_bytes(",".join(HEADER).encode() + b"\nMJ,Ca\x00sier,12\n")


def mixed_encoding_csv(path: Path) -> None:
    path.write_bytes(",".join(HEADER).encode() + b"\nMJ,Caf\xe9,12\n")


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], None]
    where: str  # the expected "row R, column C"
    why: str  # a regular expression for the reason


CASES = [
    Case("far-cell.xlsx", far_cell, "row 1048576, column 'XFD'", r"beyond the last row"),
    Case("bomb.xlsx", zip_bomb, "row 1, column 'A'", r"decompress to 67,1\d\d,\d{3} bytes"),
    Case("no-workbook.xlsx", no_workbook, "row 1, column 'A'", r"not a readable XLSX workbook"),
    Case("random.xlsx", random_bytes, "row 1, column 'A'", r"not a zip archive"),
    Case("random.csv", random_bytes, r"row \d+, column \d+", r"control character U\+00"),
    Case("wide.csv", wide_csv, "row 1, column 1001", r"100,000 columns, more than the bound"),
    Case(
        "cell-50mb.csv",
        lambda p: big_cell_csv(p, 50 << 20),
        "row 1, column 1",
        r"the file is 52,428,\d{3} bytes, more than the bound",
    ),
    Case(
        "cell-5mb.csv",
        lambda p: big_cell_csv(p, 5 << 20),
        "row 2, column 2",
        r"longer than 1,000,000 characters",
    ),
    Case(
        "cell-200kb.csv",
        lambda p: big_cell_csv(p, 200 << 10),
        "row 2, column 2",
        r"204,800 characters, more than the bound of 100,000",
    ),
    Case("nul.csv", nul_csv, "row 2, column 2", r"control character U\+0000"),
    Case("mixed.csv", mixed_encoding_csv, "row 2, column 2", r"byte 0xE9, which is not UTF-8"),
]


@dataclass(frozen=True)
class Outcome:
    file: Path
    database_url: str
    exit_code: int
    stderr: str
    peak_rss_kb: int


# argv[1:]: the command. Runs it under 2 GiB of address space, its stdout discarded, and
# prints its peak resident memory (KB, from wait4); exits with its exit code.
LAUNCHER = """
import os, resource, sys
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    """Every case imported at once, each by its own `panorama import panorama` process."""
    root = tmp_path_factory.mktemp("hostile")
    running = []
    for case in CASES:
        folder = root / case.name.replace(".", "-")
        folder.mkdir()
        file = folder / case.name
        case.make(file)
        url = f"sqlite:///{folder / 'store.sqlite3'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMPORT_MAX_", "REDIS"))}
        env.update(DATABASE_URL=url, DATABASE_SCHEMA="")
        err = (folder / "stderr").open("w+b")
        command = [str(PANORAMA), "import", "panorama", "--no-progress", str(file)]
        child = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, *command],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
        running.append((case, file, url, err, child))
    found: dict[str, Outcome] = {}
    for case, file, url, err, child in running:
        peak, _ = child.communicate()
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
        err.close()
        found[case.name] = Outcome(file, url, child.returncode, text, int(peak))
    yield found


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_file_is_refused_naming_row_and_column_in_bounded_memory(
    case: Case, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcomes[case.name]
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.exit_code == 1, outcome.stderr
    prefix = re.escape(f"import refused, nothing recorded: {case.name}, ")
    assert re.search(prefix + case.where + ": .*" + case.why, outcome.stderr), outcome.stderr
    assert outcome.peak_rss_kb <= PEAK_RSS_LIMIT_KB, f"{outcome.peak_rss_kb / 1024:.0f} MB"
    services = bootstrap(Settings(database_url=outcome.database_url))
    try:
        recorded = services.portfolio.recorder.select_notifications(start=1, limit=1000)
        assert [n for n in recorded if n.topic.startswith("domain.project")] == []
    finally:
        services.close()


def test_the_far_cell_workbook_is_tiny(outcomes: dict[str, Outcome]) -> None:
    assert outcomes["far-cell.xlsx"].file.stat().st_size < 10_000
    assert outcomes["bomb.xlsx"].file.stat().st_size < 1_000_000
