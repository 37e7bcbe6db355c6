"""``fsearch datasets list|show|plot`` and the exit code 2 of bad input."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from formula_search.cli import cli


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_list_shows_every_builtin():
    res = _run("datasets", "list")
    assert res.exit_code == 0
    for name, split in [
        ("ideal_pendulum", "25/25"),
        ("ideal_spring", "25/25"),
        ("real_pendulum", "4/1"),
    ]:
        line = next(ln for ln in res.output.splitlines() if name in ln)
        assert split in line
    assert "two_body" in res.output and "800/200" in res.output


def test_show_real_pendulum():
    res = _run("datasets", "show", "real_pendulum")
    assert res.exit_code == 0
    assert (
        "rad/s" in res.output and "556 rows" in res.output and "444 train, 111 test" in res.output
    )
    assert "Schmidt" in res.output


def test_plot_writes_png(tmp_path):
    out = tmp_path / "pend.png"
    res = _run("datasets", "plot", "ideal_pendulum", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.slow
def test_bad_input_exit_code_2_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("t,q,p\n0,1,2\n0.1,abc,2\n0.2,1,2\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "formula_search.cli",
            "datasets",
            "show",
            str(bad),
            "--columns",
            "q:m,p:kg*m/s",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"Error: {bad}, line 3, column 2 ('q'): 'abc' is not a number"
    ]
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "formula_search.cli",
            "datasets",
            "plot",
            "nope",
            "--out",
            str(tmp_path / "x.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
