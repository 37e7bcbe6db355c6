"""The command-line wrapper's error contract and the atomic table writer."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from formula_search.cli import COMMANDS, main
from formula_search.errors import InputError
from formula_search.io import atomic_path, read_table, write_table


def test_every_registered_command_imports_and_has_help():
    from formula_search.cli import cli

    ctx = cli.make_context("fsearch", [], resilient_parsing=True)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert command.get_short_help_str(), f"{name} has no help text"


def test_version_and_help_exit_zero(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert "fsearch" in capsys.readouterr().out


def test_unknown_command_exits_2_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "formula_search.cli", "no-such-command"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "No such command" in proc.stderr


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_then_read_table_round_trip(tmp_path, suffix):
    df = pd.DataFrame({"formula": ["p^2 - c_0*cos(q)", "q"], "size": [7, 1], "ratio": [1e-6, 0.5]})
    path = write_table(df, tmp_path / f"t{suffix}")
    back = read_table(path)
    pd.testing.assert_frame_equal(back, df)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_unsupported_table_suffix_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="unsupported table format"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.xlsx")


def test_atomic_path_leaves_no_file_when_the_block_fails(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half written")
            raise RuntimeError("crash while writing")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_get_normal_file_permissions(tmp_path):
    import os

    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
