"""A fuzzer of the command line: random files, cards, formula texts and option values through the real entry
point, in process. Every run must end with exit 0, or with exit 2 and one line of error; a traceback (an
exception that is not a clean exit) is a bug of ours.

``FSEARCH_FUZZ_EXAMPLES`` sets the examples per strategy (default 25: about 40 s in all on 2 cores).
"""

from __future__ import annotations

import os
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formula_search.cli import main

EXAMPLES = int(os.environ.get("FSEARCH_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # capsys is read (and so emptied) after every example
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    derandomize=True,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path_factory.getbasetemp() / "fsearch-cache"))


def run(args, capsys) -> tuple[int, str]:
    """Run the CLI; return (exit code, stderr). An exception other than SystemExit fails the test."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    err = capsys.readouterr().err
    assert code in (0, 2), f"exit {code} for {args!r}: {err[-2000:]}"
    assert "Traceback" not in err, f"traceback for {args!r}: {err[-2000:]}"
    if code == 2:
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert lines, f"exit 2 without a message for {args!r}"
        # click's usage errors print a usage line first; ours print one line
        assert any(ln.startswith("Error:") for ln in lines), err
    return code, err


names = st.one_of(
    st.sampled_from(
        ["t", "time", "q", "p", "x", "v", "trial", "c", "c_0", "sin", "q q", "ü", "", "1a"]
    ),
    st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=5),
)
cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
    st.integers(-5, 5).map(str),
    st.sampled_from(["", "abc", "1,5", "1e999", "nan", " ", "0x10", "--1"]),
)


@st.composite
def data_files(draw):
    n_cols = draw(st.integers(1, 5))
    header = [draw(names) for _ in range(n_cols)]
    sep = draw(st.sampled_from([",", " ", "\t", ";", ", "]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    n_rows = draw(st.integers(0, 12))
    rows = []
    for i in range(n_rows):
        if draw(st.booleans()):  # mostly numbers in increasing time
            row = [str(i * 0.1)] + [f"{draw(st.floats(-3, 3)):.4g}" for _ in range(n_cols - 1)]
        else:
            row = [draw(cells) for _ in range(draw(st.integers(max(0, n_cols - 1), n_cols + 1)))]
        rows.append(sep.join(row))
    lines = (
        [draw(st.sampled_from(["%", "#", ""])) + sep.join(header)] if draw(st.booleans()) else []
    )
    text = newline.join(lines + rows) + newline
    bom = "\ufeff" if draw(st.booleans()) else ""
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]))
    suffix = draw(st.sampled_from([".csv", ".txt", ".dat", ""]))
    try:
        raw = (bom + text).encode(encoding)
    except UnicodeEncodeError:
        raw = text.encode("utf-8")
    columns = ",".join(
        f"{draw(names)}:{draw(st.sampled_from(['m', 'rad', 'm/s', 'furlong', '', 'kg*m^2/s']))}"
        for _ in range(draw(st.integers(0, 3)))
    )
    return raw, suffix, columns, header


@FUZZ
@given(data_files(), st.sampled_from([None, "trial", "q"]), st.sampled_from([None, "t", "x"]))
def test_random_data_files(capsys, spec, traj_col, time_col):
    raw, suffix, columns, header = spec
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(raw)
        args = ["fit", "--dataset", str(path), "--depth", "2", "--out", str(Path(tmp) / "o")]
        if columns:
            args += ["--columns", columns]
        if traj_col:
            args += ["--traj-col", traj_col]
        if time_col:
            args += ["--time-col", time_col]
        run(args, capsys)


toml_values = st.one_of(
    st.integers(-3, 5000),
    st.floats(allow_nan=False, width=32),
    st.booleans(),
    st.text(max_size=12),
    st.lists(st.text(max_size=4), max_size=3),
)
card_keys = st.sampled_from(
    ["name", "kind", "hamiltonian", "noise", "default_window", "default_detrend", "description",
     "trajectroy", "seed", "variables"]
)  # fmt: skip


def _toml(value) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else "0.0"
    return json.dumps(value)


@st.composite
def cards(draw):
    lines = [f"{k} = {_toml(draw(toml_values))}" for k in draw(st.lists(card_keys, max_size=3, unique=True))
             if k != "variables"]  # fmt: skip
    kind = draw(st.sampled_from(["simulated", "recorded"]))
    lines.append(f'kind = "{kind}"')
    lines.append(
        "hamiltonian = "
        + _toml(
            draw(st.sampled_from(["q^2 + p^2", "9**9**9", "q**p", "1e400*q", "sin(q", "p^2/0", ""]))
        )
    )
    for _ in range(draw(st.integers(0, 3))):
        lines += ["[[variables]]", f"name = {_toml(draw(names))}",
                  f"unit = {_toml(draw(st.sampled_from(['m', 'kg*m/s', 'parsec', '1'])))}"]  # fmt: skip
    table = draw(st.sampled_from(["simulation", "file", "split"]))
    lines.append(f"[{table}]")
    for key in draw(
        st.lists(
            st.sampled_from(
                ["trajectories", "t_end", "points", "path", "train_fraction", "by", "x"]
            ),
            max_size=4,
            unique=True,
        )
    ):
        value = draw(
            st.one_of(
                toml_values, st.sampled_from(["../../etc/passwd", "/nonexistent.csv", "data.csv"])
            )
        )
        lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


@FUZZ
@given(cards(), st.sampled_from(["show", "fit"]))
def test_random_cards(capsys, card, command):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "card.toml"
        path.write_text(card)
        (Path(tmp) / "data.csv").write_text("t,q,p\n0,1,0\n0.1,0.9,0.1\n0.2,0.8,0.2\n0.3,0.7,0.3\n")
        if command == "show":
            run(["datasets", "show", str(path)], capsys)
        else:
            run(
                ["fit", "--dataset", str(path), "--depth", "2", "--out", str(Path(tmp) / "o")],
                capsys,
            )


formula_texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="qp()+-*/^2c_0sincos. e9", max_size=60),
    st.sampled_from(
        [
            "(" * 300 + "q" + ")" * 300,
            " + ".join(["q"] * 600),
            "1e400*q",
            "q**q",
            "lambda: 0",
            "__import__('os')",
            "q^3",
            "sin()",
            "c_99999999999999999999*q",
            "Σq",
        ]
    ),  # fmt: skip
)


@FUZZ
@given(st.lists(formula_texts, min_size=1, max_size=4))
def test_random_formula_texts(capsys, texts):
    import csv

    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "f.csv"
        pd.DataFrame({"formula": texts}).to_csv(table, index=False, quoting=csv.QUOTE_ALL)
        code, _ = run(
            [
                "fit",
                "--dataset",
                "ideal_pendulum",
                "--formulas",
                str(table),
                "--out",
                str(Path(tmp) / "o"),
            ],
            capsys,
        )
        if code == 0:
            out = pd.read_parquet(Path(tmp) / "o" / "fit.parquet")
            assert len(out) == len(texts)


option_values = st.one_of(
    st.integers(-10, 10).map(str),
    st.sampled_from(["0", "1e309", "nan", "-0.5", "abc", "", "2**40", "1e-300", "auto", "off"]),
)


@FUZZ
@given(
    st.sampled_from(["--depth", "--ratio", "--window", "--chunk-size", "--smoothing", "--starts",
                     "--steps", "--jobs", "--train-fraction", "--noise", "--skip-rows", "--names"]),
    option_values,
    st.sampled_from(["derivative", "paper"]),
)  # fmt: skip
def test_random_option_values(capsys, option, value, measure):
    with tempfile.TemporaryDirectory() as tmp:
        args = ["fit", "--dataset", "ideal_spring", "--depth", "3", "--measure", measure, "--out",
                str(Path(tmp) / "o"), option, value]  # fmt: skip
        if option == "--depth":
            args = args[:3] + args[5:]
        run(args, capsys)
