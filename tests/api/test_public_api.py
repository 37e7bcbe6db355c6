"""The public Python API: arrays in, laws out, without private imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import sympy

import formula_search as fs


def _circle(n=300, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 12, n))
    x = np.c_[2 * np.cos(1.3 * t), 2 * np.sin(1.3 * t)]
    return t, x + noise * rng.standard_normal(x.shape)


def test_importing_the_package_does_not_import_torch():
    code = "import sys, formula_search; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_from_arrays_one_recording_is_split_in_time():
    t, x = _circle()
    data = fs.Dataset.from_arrays(x, t, variables="x:m, y:m", name="circle")
    assert data.var_names == ("x", "y") and data.kind == "user"
    assert len(data.train) == 1 and len(data.test) == 1
    assert data.n_points("train") == 240 and data.train[0].t[-1] < data.test[0].t[0]
    # central differences of the exact circle: dx/dt = -1.3 y
    d = data.train[0].dxdt[1:-1, 0]
    np.testing.assert_allclose(d, -1.3 * data.train[0].x[1:-1, 1], rtol=0.05, atol=0.02)


def test_from_arrays_with_trajectory_ids_and_exact_derivatives():
    t = np.tile(np.linspace(0, 3, 20), 5)
    ids = np.repeat(np.arange(5), 20)
    amp = 1 + ids / 5
    x = np.c_[amp * np.cos(2 * t), -amp * np.sin(2 * t)]
    v = np.c_[-2 * amp * np.sin(2 * t), -2 * amp * np.cos(2 * t)]
    data = fs.Dataset.from_arrays(x, t, variables="q:m, p:m", trajectory=ids, dxdt=v)
    assert len(data.train) == 4 and len(data.test) == 1 and data.derivative == "exact"
    np.testing.assert_array_equal(data.train[1].dxdt, v[20:40])
    lists = fs.Dataset.from_arrays([x[:20], x[20:40]], [t[:20], t[20:40]], variables="q:m, p:m")
    assert len(lists.train) == 1 and len(lists.test) == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=np.ones((10, 3))), "expected"),
        (dict(x=np.c_[np.arange(10.0), np.r_[np.nan, np.ones(9)]]), "NaN"),
        (dict(x=np.ones((10, 2)), t=np.r_[0.0, 0.0, np.arange(2.0, 10.0)]), "increase"),
        (dict(x=np.ones((10, 2)), t=np.arange(9.0)), "times"),
        (dict(x=np.ones((2, 2))), "3"),
        (dict(x=[np.ones((5, 2)), np.ones((5, 2))], t=np.arange(5.0)), "one per trajectory"),
        (dict(x=np.ones((5, 2)), dxdt=[np.ones((5, 2))] * 2), "one per trajectory"),
    ],
)
def test_from_arrays_refuses_bad_input(kwargs, match):
    with pytest.raises(fs.InputError, match=match):
        fs.Dataset.from_arrays(variables="q:m, p:m", **kwargs)


def test_from_arrays_takes_a_list_of_times_and_refuses_bare_names():
    x = np.c_[np.cos(np.arange(6.0)), np.sin(np.arange(6.0))]
    data = fs.Dataset.from_arrays(x, [0.0, 1, 2, 3, 4, 5], variables="q:m, p:m", train_fraction=0.5)
    assert data.n_points("all") == 6
    with pytest.raises(fs.InputError, match="variables"):
        fs.Dataset.from_arrays(x, variables=["q", "p"])


def test_search_takes_one_formula_text_or_a_table():
    one = fs.search("ideal_spring", formulas="q^2 + c*p^2")
    table = fs.search("ideal_spring", formulas=pd.DataFrame({"formula": ["q^2 + c*p^2", "q*p"]}))
    assert list(one.table["formula"]) == ["q^2 + c*p^2"]
    assert list(table.table["formula"]) == ["q^2 + c*p^2", "q*p"]


def test_search_finds_the_circle_and_prints_it():
    t, x = _circle(noise=0.002)
    result = fs.search(fs.Dataset.from_arrays(x, t, variables="x:m, y:m"), depth=7)
    laws = result.laws
    assert list(laws.columns) == list(fs.LAW_COLUMNS)
    assert laws["formula"].iloc[0] in ("x^2 + y^2", "y^2 + x^2")
    # the law as sympy, evaluated along the data another way: nearly constant
    expr = result.sympy(0)
    f = sympy.lambdify(sorted(expr.free_symbols, key=lambda s: s.name), expr)
    values = f(x[:, 0], x[:, 1])
    assert np.std(values) < 0.01 * np.mean(values)
    assert "x^{2}" in result.latex(0) and "y^{2}" in result.latex(0)
    assert "conserved" in repr(result)
    with pytest.raises(IndexError):
        result.latex(len(laws))


def test_search_on_a_builtin_by_name_and_save(tmp_path):
    result = fs.search(
        "ideal_spring", formulas=["q^2 + c*p^2", "q*p", "q + p*c"], measure="derivative"
    )
    laws = result.laws
    assert list(laws["formula"]) == ["q^2 + c*p^2"]
    assert laws["params"].iloc[0] == pytest.approx((1.0,), rel=1e-3)  # H = q^2 + p^2
    folder = result.save(tmp_path / "fit")
    assert set(pd.read_csv(folder / "survivors.csv")["formula"]) == {"q^2 + c*p^2"}
    assert len(pd.read_parquet(folder / "fit.parquet")) == 3
