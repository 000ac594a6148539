"""`spanlake sql` (and report/status) print no terminal control sequences taken from the lake: a span name
carrying an OSC title change, a colour CSI and C1/bidi controls comes out as its printable text only.

Time budget: a few seconds (a two-row lake, the CLI run in-process and as a subprocess).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from harness import REPO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analytics"))
from span_factory import spans, write_lake  # noqa: E402
from spanlake.ui.cli import main  # noqa: E402

TITLE = "\x1b]0;pwned\x07"
NAME = f"{TITLE}chat \x1b[31mred\x1b[0m \x9b2J\u202eevil\x1b"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("cli-out") / "data"
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    write_lake(data / "lake", [spans(2, start, name=[NAME, "plain"], feature=[f"feat{TITLE}", "f"])])
    return data


def _controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F or c == "\u202e"]


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_sql_output_carries_no_escape_sequences(data_dir: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--data-dir", str(data_dir), "--format", fmt,
                 "select name, feature from spans order by name"]) == 0
    out = capsys.readouterr().out
    assert _controls(out) == [], "no raw control character reaches the terminal"
    if fmt == "json":
        rows = json.loads(out)
        assert rows[0]["name"] == NAME, "JSON keeps the value, escaped (\\u001b), never raw"
    else:
        assert "]0;pwned" not in out and "chat red 2Jevil" in out


def test_sql_error_quoting_a_value_is_stripped(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "--data-dir", str(data_dir), "select cast(name as integer) from spans"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and _controls(err) == []


def test_sql_in_a_real_terminal_process(data_dir: Path) -> None:
    """The installed command as a user runs it: stdout bytes hold no ESC or BEL."""
    done = subprocess.run([sys.executable, "-m", "spanlake.ui.cli", "sql", "--data-dir", str(data_dir),
                           "select name from spans"], capture_output=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr.decode()
    assert b"\x1b" not in done.stdout and b"\x07" not in done.stdout and b"chat red" in done.stdout
