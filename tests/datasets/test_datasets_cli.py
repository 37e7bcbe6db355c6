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


def test_shared_dataset_options_build_the_dataset(tmp_path):
    import click

    from formula_search.cli._data_options import dataset_options
    from formula_search.data import DEFAULT_DATASET, dataset_from_options, pop_dataset_options

    seen = {}

    @click.command()
    @dataset_options
    @click.option("--steps", type=int, default=3)
    def cmd(steps, **kwargs):
        seen["seed"] = kwargs["seed"]
        ds = dataset_from_options(**pop_dataset_options(kwargs))
        seen.update(name=ds.name, n_train=len(ds.train), rest=kwargs, steps=steps, noise=ds.noise)

    runner = CliRunner()
    res = runner.invoke(cmd, ["--steps", "5"], catch_exceptions=False)
    assert res.exit_code == 0
    assert seen["name"] == DEFAULT_DATASET == "ideal_pendulum" and seen["n_train"] == 25
    assert seen["rest"] == {} and seen["steps"] == 5 and seen["seed"] == 0 and seen["noise"] == 0.0
    data = tmp_path / "d.csv"
    data.write_text(
        "run,time,a,b\n" + "".join(f"{k},{i},{i * k},{i}\n" for k in range(3) for i in range(5))
    )
    res = runner.invoke(
        cmd,
        [
            "--dataset",
            str(data),
            "--columns",
            "a:m,b:kg*m/s",
            "--traj-col",
            "run",
            "--time-col",
            "time",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0 and seen["name"] == "d" and seen["n_train"] == 2
