"""The user's own files: CSV and whitespace text, options and sidecar cards, and every bad-input case."""

import numpy as np
import pytest

from formula_search.data import load_dataset
from formula_search.errors import InputError

COLS = "q:m,p:kg*m/s"


def _spring_rows(n_traj=4, n_pts=20, dt=0.1):
    # exact ideal-spring solutions q = A cos(w t), p = -A sin(w t) (w = 2 for H = q^2 + p^2)
    rows = []
    for k in range(n_traj):
        amp = 0.5 + 0.1 * k
        for i in range(n_pts):
            t = i * dt
            rows.append((k, t, amp * np.cos(2 * t), -amp * np.sin(2 * t)))
    return rows


def _write_csv(path, rows, header="trial,t,q,p"):
    lines = [header] + [",".join(f"{v:.12g}" for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def good_csv(tmp_path):
    return _write_csv(tmp_path / "spring.csv", _spring_rows())


def test_csv_with_options(good_csv):
    ds = load_dataset(good_csv, columns=COLS, traj_col="trial")
    assert ds.kind == "user" and ds.var_names == ("q", "p") and ds.units == ("m", "kg*m/s")
    assert len(ds.train) == 3 and len(ds.test) == 1  # 80% of 4 trajectories, rounded down
    assert ds.n_rows == 80 and ds.derivative == "central"
    tr = ds.train[1]
    # central differences of the exact solution approach its derivative (second order, dt = 0.1)
    exact = np.stack([-2 * 0.6 * np.sin(2 * tr.t), -2 * 0.6 * np.cos(2 * tr.t)], axis=1)
    np.testing.assert_allclose(tr.dxdt[1:-1], exact[1:-1], atol=0.02)
    np.testing.assert_allclose(tr.dxdt, exact, atol=0.06)  # ends: one-sided second order


def test_forward_derivative_and_uneven_time(tmp_path):
    t = np.array([0.0, 0.1, 0.3, 0.4, 0.7, 0.8, 1.0, 1.5, 1.6, 1.9, 2.0])
    rows = [(ti, ti**2, 3 * ti) for ti in t]
    path = _write_csv(tmp_path / "uneven.csv", rows, header="t,q,p")
    ds = load_dataset(path, columns=COLS, derivative="forward", train_fraction=0.5)
    assert ds.derivative == "forward" and ds.n_points("all") == len(t) - 1
    x, dxdt = ds.stacked("all")
    allt = np.concatenate([tr.t for tr in ds.train + ds.test])
    np.testing.assert_array_equal(allt, t[:-1])
    # forward difference of q = t^2 over the actual step h is 2t + h; of p = 3t it is 3
    np.testing.assert_allclose(dxdt[:, 0], 2 * t[:-1] + np.diff(t))
    np.testing.assert_allclose(dxdt[:, 1], 3.0)


def test_central_derivative_exact_for_quadratics_on_uneven_grid(tmp_path):
    t = np.array([0.0, 0.1, 0.3, 0.4, 0.7, 0.8, 1.2, 1.3, 1.5, 2.0])
    rows = [(ti, 1 + ti - 2 * ti**2, 5.0) for ti in t]
    ds = load_dataset(
        _write_csv(tmp_path / "q.csv", rows, header="t,q,p"), columns=COLS, train_fraction=0.6
    )
    for tr in ds.train + ds.test:
        np.testing.assert_allclose(tr.dxdt[:, 0], 1 - 4 * tr.t, atol=1e-12)
    assert [len(tr) for tr in ds.train] == [6] and [len(tr) for tr in ds.test] == [4]


def test_whitespace_text_and_time_column_name(tmp_path):
    path = tmp_path / "rec.txt"
    lines = ["# a comment", "time   q   p"] + [
        f"{0.5 * i}  {np.cos(i)}  {np.sin(i)}" for i in range(30)
    ]
    path.write_text("\n".join(lines) + "\n")
    ds = load_dataset(path, columns="q:rad,p:rad/s")
    assert ds.n_rows == 30 and len(ds.train) == 1 and len(ds.test) == 1
    assert len(ds.train[0]) == 24 and len(ds.test[0]) == 6
    assert ds.time_step == 0.5


def test_semicolon_separated_file(tmp_path, good_csv):
    # a spreadsheet export: the same rows as good_csv, separated by semicolons
    semi = tmp_path / "spring_semi.csv"
    semi.write_text(good_csv.read_text().replace(",", ";"))
    a = load_dataset(good_csv, columns=COLS, traj_col="trial")
    b = load_dataset(semi, columns=COLS, traj_col="trial")
    assert b.n_rows == a.n_rows == 80
    np.testing.assert_array_equal(b.stacked("all")[0], a.stacked("all")[0])


def test_decimal_comma_is_named(tmp_path):
    path = tmp_path / "de.csv"
    path.write_text("t;q;p\n0;1;0\n0,1;0,98;-0,2\n")
    with pytest.raises(
        InputError,
        match=r"line 3, column 1 \('t'\): '0,1' is not a number \(a decimal comma: write 0\.1\)",
    ):
        load_dataset(path, columns="q:rad,p:rad/s")


def test_sidecar_card(good_csv):
    (good_csv.parent / "spring.toml").write_text(
        'description = "my spring"\nhamiltonian = "x^2 + mom^2"\n'
        '[[variables]]\nname = "x"\nunit = "m"\ncolumn = "q"\n'
        '[[variables]]\nname = "mom"\nunit = "kg*m/s"\ncolumn = "p"\n'
        '[file]\ntrajectory = "trial"\n[split]\ntrain_fraction = 0.5\n'
    )
    ds = load_dataset(good_csv)
    assert ds.var_names == ("x", "mom")
    assert len(ds.train) == 2 and len(ds.test) == 2
    assert ds.description == "my spring" and ds.hamiltonian == "x^2 + mom^2"
    np.testing.assert_allclose(ds.train[0].x[0], [0.5, 0.0])


def test_card_file_given_directly(good_csv, tmp_path):
    card = tmp_path / "mycard.toml"
    card.write_text(
        f'name = "springy"\n[[variables]]\nname = "q"\nunit = "m"\n[[variables]]\nname = "p"\nunit = "kg*m/s"\n'
        f'[file]\npath = "{good_csv.name}"\ntrajectory = "trial"\n'
    )
    ds = load_dataset(card)
    assert ds.name == "springy" and len(ds.train) + len(ds.test) == 4


# -- bad input: one line, naming file, line and column ------------------------------------------------------


def _replace_line(path, lineno, text):
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("0,0.5,abc,1", r"bad\.csv, line 6, column 3 \('q'\): 'abc' is not a number"),
        ("0,0.5,,1", r"bad\.csv, line 6, column 3 \('q'\): an empty cell is not a number"),
        ("0,0.5,nan,1", r"bad\.csv, line 6, column 3 \('q'\): 'nan' is NaN or infinite"),
        ("0,0.5,1,-inf", r"bad\.csv, line 6, column 4 \('p'\): '-inf' is NaN or infinite"),
        ("0,0.5,1,1e999", r"bad\.csv, line 6, column 4 \('p'\): '1e999' is NaN or infinite"),
        ("0,x0.5,1,1", r"bad\.csv, line 6, column 2 \('t'\): 'x0.5' is not a number"),
        (
            "0,0.1,1,1",
            r"bad\.csv, line 6, column 2 \('t'\): time 0.1 does not increase within trajectory '0'",
        ),
        ("0,0.3,1,1", r"bad\.csv, line 6, column 2 \('t'\): time 0.3 does not increase"),
        ("0,0.5,1", r"bad\.csv, line 6: 3 values, expected 4"),
    ],
)
def test_bad_cells(tmp_path, line, pattern):
    path = _replace_line(_write_csv(tmp_path / "bad.csv", _spring_rows()), 6, line)
    with pytest.raises(InputError, match=pattern):
        load_dataset(path, columns=COLS, traj_col="trial")


def test_missing_columns(tmp_path):
    path = _write_csv(tmp_path / "bad.csv", [r[:3] for r in _spring_rows()], header="trial,t,q")
    with pytest.raises(
        InputError, match=r"bad\.csv, line 1: missing state column 'p' \(columns: trial, t, q\)"
    ):
        load_dataset(path, columns=COLS, traj_col="trial")
    with pytest.raises(InputError, match=r"missing trajectory column 'run'"):
        load_dataset(path, columns="q:m", traj_col="run")
    with pytest.raises(InputError, match=r"missing time column 'tau'"):
        load_dataset(path, columns="q:m", time_col="tau")
    nott = _write_csv(tmp_path / "nott.csv", [r[1:] for r in _spring_rows()], header="s,q,p")
    with pytest.raises(InputError, match=r"nott\.csv, line 1: no time column .*--time-col"):
        load_dataset(nott, columns=COLS)


def test_too_few_points(tmp_path):
    rows = _spring_rows(n_traj=2) + [(7, 0.0, 1.0, 0.0), (7, 0.1, 1.0, 0.0)]
    path = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(
        InputError, match=r"bad\.csv, line 42: trajectory '7' .* has 2 points; .* at least 3"
    ):
        load_dataset(path, columns=COLS, traj_col="trial")


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "t,q,p\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty"):
        load_dataset(path, columns=COLS)


def test_unknown_units(good_csv, tmp_path):
    with pytest.raises(InputError, match=r"--columns: unknown unit 'furlongz'"):
        load_dataset(good_csv, columns="q:furlongz,p:kg*m/s", traj_col="trial")
    card = tmp_path / "c.toml"
    card.write_text(
        '[[variables]]\nname = "q"\nunit = "m"\n[[variables]]\nname = "p"\nunit = "blorp"\n'
        f'[file]\npath = "{good_csv.name}"\n'
    )
    with pytest.raises(InputError, match=r"c\.toml, line 6: variable 'p': unknown unit 'blorp'"):
        load_dataset(card)


def test_other_bad_requests(good_csv, tmp_path):
    with pytest.raises(InputError, match="unknown dataset 'no_such_thing'"):
        load_dataset("no_such_thing")
    with pytest.raises(InputError, match="name the state columns"):
        load_dataset(good_csv)
    with pytest.raises(InputError, match="simulated data only"):
        load_dataset(good_csv, columns=COLS, traj_col="trial", noise=0.1)
    with pytest.raises(InputError, match="built-in dataset"):
        load_dataset("ideal_pendulum", columns=COLS)
    with pytest.raises(InputError, match="train_fraction must be between 0 and 1"):
        load_dataset(good_csv, columns=COLS, traj_col="trial", train_fraction=1.5)
    numbers_only = tmp_path / "nohdr.txt"
    numbers_only.write_text("0 1 2\n1 2 3\n2 3 4\n")
    with pytest.raises(InputError, match=r"nohdr\.txt, line 1: expected a header line"):
        load_dataset(numbers_only, columns=COLS)
    binary = tmp_path / "bin.dat"
    binary.write_bytes(b"\xff\xfe\x00\x01" * 10)
    with pytest.raises(InputError, match=r"bin\.dat: not a text file"):
        load_dataset(binary, columns=COLS)
