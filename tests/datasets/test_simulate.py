"""Simulated datasets: conservation, exact derivatives, HNN's set-ups and random streams, splits, cache."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from formula_search.data import _simulate, energy_function, load_dataset, read_card
from formula_search.data._cards import builtin_cards


def _max_rel_drift(ds, text):
    energy = energy_function(text, ds.var_names)
    worst = 0.0
    for tr in ds.train + ds.test:
        e = energy(tr.x)
        worst = max(worst, float(np.max(np.abs(e - e[0])) / abs(e[0])))
    return worst


@pytest.mark.parametrize("name", ["ideal_pendulum", "ideal_spring"])
def test_hamiltonian_conserved_to_1e_8(name):
    ds = load_dataset(name)
    assert ds.noise == 0.0
    assert _max_rel_drift(ds, ds.hamiltonian) < 1e-8


def test_two_body_conserves_energy_and_momentum():
    ds = load_dataset("two_body", trajectories=10)
    # 1/r is in the language since sqrt is a row of the table of primitives
    assert ds.hamiltonian == ds.reference_hamiltonian
    assert "sqrt" in ds.hamiltonian
    assert _max_rel_drift(ds, ds.reference_hamiltonian) < 1e-8
    names = ds.var_names
    assert names == ("x1", "x2", "y1", "y2", "px1", "px2", "py1", "py2")
    for tr in ds.train + ds.test:
        x = tr.x
        # HNN's orbits start symmetric about the origin: total momentum 0, centre of mass at rest at 0
        np.testing.assert_allclose(x[:, 4] + x[:, 5], 0.0, atol=1e-9)
        np.testing.assert_allclose(x[:, 0] + x[:, 1], 0.0, atol=1e-9)
        # angular momentum x*py - y*px summed over bodies is conserved too
        lz = x[:, 0] * x[:, 6] + x[:, 1] * x[:, 7] - x[:, 2] * x[:, 4] - x[:, 3] * x[:, 5]
        assert np.max(np.abs(lz - lz[0])) < 1e-8 * abs(lz[0])


def test_pendulum_derivatives_are_hamiltons_equations():
    ds = load_dataset("ideal_pendulum")
    x, dxdt = ds.stacked("all")
    q, p = x[:, 0], x[:, 1]
    # H = 3(1 - cos q) + p^2: dq/dt = 2p, dp/dt = -3 sin q (worked by hand)
    np.testing.assert_allclose(dxdt[:, 0], 2 * p, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dxdt[:, 1], -3 * np.sin(q), rtol=1e-12, atol=1e-12)


def test_derivative_matches_the_trajectory_itself():
    # dx/dt must be the slope of the trajectory: compare with a 4th-order central difference of the
    # simulated states (dt = 3/44), which is accurate to about dt^4 * |x^(5)| ~ 1e-4.
    ds = load_dataset("ideal_spring")
    tr = ds.train[0]
    h = tr.t[1] - tr.t[0]
    x = tr.x
    fd = (-x[4:] + 8 * x[3:-1] - 8 * x[1:-3] + x[:-4]) / (12 * h)
    np.testing.assert_allclose(fd, tr.dxdt[2:-2], atol=2e-4)


@pytest.mark.parametrize(
    ("name", "points", "r_min", "r_max"),
    [("ideal_pendulum", 45, 1.3, 2.3), ("ideal_spring", 30, 0.1, 1.0)],
)
def test_reference_setup_sizes(name, points, r_min, r_max):
    ds = load_dataset(name)
    assert len(ds.train) == 25 and len(ds.test) == 25
    assert ds.n_points("train") == 25 * points and ds.n_points("test") == 25 * points
    for tr in ds.train + ds.test:
        assert tr.t.shape == (points,)
        assert tr.t[0] == 0.0 and tr.t[-1] == 3.0
        r0 = np.hypot(*tr.x[0])
        assert r_min <= r0 <= r_max
    x, dxdt = ds.stacked("train")
    assert x.shape == (25 * points, 2) and dxdt.shape == x.shape


def _hnn_like_trajectories(hamiltonian_grad, r_min, r_max, timescale, n, noise_std):
    """HNN's generator written out independently: global-style RandomState, RK45, noise after each."""
    rng = np.random.RandomState(0)
    t_eval = np.linspace(0, 3, int(timescale * 3))
    out = []
    for _ in range(n):
        y0 = rng.rand(2) * 2 - 1
        radius = rng.rand() * (r_max - r_min) + r_min
        y0 = y0 / np.sqrt((y0**2).sum()) * radius

        def f(_t, y):
            dq, dp = hamiltonian_grad(y)
            return np.array([dp, -dq])

        sol = solve_ivp(f, (0, 3), y0, t_eval=t_eval, rtol=1e-10, atol=1e-12)
        q = sol.y[0] + rng.randn(t_eval.size) * noise_std
        p = sol.y[1] + rng.randn(t_eval.size) * noise_std
        out.append(np.stack([q, p], axis=1))
    return out


def test_noise_01_reproduces_hnn_random_stream():
    ds = load_dataset("ideal_pendulum", noise=0.1)
    ref = _hnn_like_trajectories(lambda y: (3 * np.sin(y[0]), 2 * y[1]), 1.3, 2.3, 15, 4, 0.1)
    for mine, theirs in zip(ds.train[:4], ref):
        np.testing.assert_allclose(mine.x, theirs, atol=1e-7)
    ds = load_dataset("ideal_spring", noise=0.1)
    ref = _hnn_like_trajectories(lambda y: (2 * y[0], 2 * y[1]), 0.1, 1.0, 10, 3, 0.1)
    for mine, theirs in zip(ds.train[:3], ref):
        np.testing.assert_allclose(mine.x, theirs, atol=1e-7)


def test_noise_keeps_states_and_exact_derivatives():
    clean = load_dataset("ideal_pendulum")
    noisy = load_dataset("ideal_pendulum", noise=0.1)
    xc, dc = clean.stacked("all")
    xn, dn = noisy.stacked("all")
    np.testing.assert_array_equal(dc, dn)  # dx/dt at the noise-free state, as HNN
    resid = xn - xc
    assert abs(resid.mean()) < 0.01
    assert 0.095 < resid.std() < 0.105  # 4500 draws of N(0, 0.1): std within about 1%


def test_seed_changes_data_and_is_reproducible(tmp_path):
    a = load_dataset("ideal_spring", seed=1, cache_dir=tmp_path / "a")
    b = load_dataset("ideal_spring", seed=1, cache_dir=tmp_path / "b")
    c = load_dataset("ideal_spring", seed=2, cache_dir=tmp_path / "a")
    np.testing.assert_array_equal(a.stacked("all")[0], b.stacked("all")[0])
    assert not np.allclose(a.train[0].x[0], c.train[0].x[0])


def test_cache_is_written_and_reused(tmp_path, monkeypatch):
    first = load_dataset("ideal_spring", seed=5, cache_dir=tmp_path)
    files = list((tmp_path / "datasets").glob("ideal_spring-*.npz"))
    assert len(files) == 1
    assert not list((tmp_path / "datasets").glob("*.part"))

    def boom(*args, **kwargs):
        raise AssertionError("regenerated instead of reading the cache")

    monkeypatch.setattr(_simulate, "generate", boom)
    again = load_dataset("ideal_spring", seed=5, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.stacked("all")[0], again.stacked("all")[0])
    with pytest.raises(AssertionError, match="regenerated"):
        load_dataset(
            "ideal_spring", seed=5, noise=0.2, cache_dir=tmp_path
        )  # other noise: other key


def test_two_body_setup_matches_hnn_orbits():
    ds = load_dataset("two_body", trajectories=10)
    # HNN: the first 20% of the orbits are the test set
    assert len(ds.test) == 2 and len(ds.train) == 8
    assert ds.test[0].t.shape == (50,) and ds.test[0].t[-1] == 20.0
    # HNN's random_config, written independently, seed 0
    rng = np.random.RandomState(0)
    pos = rng.rand(2) + 0.5
    r = np.linalg.norm(pos)
    speed = (1 / (2 * np.sqrt(r))) * (
        1 + 0.05 * rng.randn()
    )  # circular orbit speed at separation 2r
    x0 = ds.test[0].x[0]
    np.testing.assert_allclose([x0[0], x0[2]], pos, rtol=1e-12)
    np.testing.assert_allclose(np.hypot(x0[4], x0[6]), speed, rtol=1e-12)
    assert abs(np.dot([x0[0], x0[2]], [x0[4], x0[6]])) < 1e-12  # velocity perpendicular to position


def test_two_body_card_sizes():
    card = read_card(builtin_cards()["two_body"])
    assert card.simulation.trajectories == 1000 and card.simulation.points == 50
    assert (card.simulation.t_start, card.simulation.t_end) == (0.0, 20.0)
    assert card.split.train_fraction == 0.8 and card.split.test_first


def test_extended_hamiltonian_reader_rejects_code():
    from formula_search.errors import InputError

    with pytest.raises(InputError):
        _simulate.hamiltonian_to_sympy("__import__('os').system('true')", ["q", "p"])
    with pytest.raises(InputError):
        _simulate.hamiltonian_to_sympy("q.real + p", ["q", "p"])
    expr, in_dsl = _simulate.hamiltonian_to_sympy("sqrt(q^2) + p", ["q", "p"])
    assert in_dsl and str(expr) == "p + Abs(q)"  # sqrt is a row of the language
    expr, in_dsl = _simulate.hamiltonian_to_sympy("exp(q) + p", ["q", "p"])
    assert not in_dsl and str(expr) == "p + exp(q)"  # exp is not: the extended reader takes it


@pytest.mark.parametrize(
    "name",
    [
        "coupled_oscillators",
        "coupled_oscillators_recording",
        "double_pendulum",
        "double_pendulum_recording",
        "two_body_recording",
    ],
)
def test_coupled_systems_conserve_their_energy(name):
    ds = load_dataset(name, noise=0.0)
    assert ds.hamiltonian is not None and ds.hamiltonian == ds.reference_hamiltonian
    # the energy in the recorded variables stays constant: the recording of velocities is exact
    assert _max_rel_drift(ds, ds.hamiltonian) < 1e-7


def test_a_velocity_recording_records_dH_dp_and_its_exact_rate():
    """double_pendulum integrates canonical momenta and records w = dH/dp: dq/dt is w itself, and the
    recorded rates are what finite differences of the recorded states converge to (their error falls about
    fourfold when the step halves: second-order differences of the exact rate)."""
    ds = load_dataset("double_pendulum_recording", noise=0.0)
    assert not ds.canonical and load_dataset("coupled_oscillators").canonical
    tr = ds.train[0]
    np.testing.assert_array_equal(tr.dxdt[:, :2], tr.x[:, 2:])
    fd = np.gradient(tr.x, tr.t, axis=0, edge_order=2)
    err = np.abs(fd[5:-5] - tr.dxdt[5:-5]).max(0) / np.abs(tr.dxdt).max(0)
    half = ds.trajectories("train")[0]
    fine = np.gradient(
        half.x[::2], half.t[::2], axis=0, edge_order=2
    )  # twice the step: about 4x the error
    coarse = np.abs(fine[5:-5] - half.dxdt[::2][5:-5]).max(0) / np.abs(half.dxdt).max(0)
    assert (coarse > 2 * err).all()


@pytest.mark.parametrize(
    ("momenta", "message"),
    [
        ('{ q1 = "p1" }', "second half of the variables"),
        ('{ w1 = "q2" }', "must be a new name"),
        ('{ w1 = "p", w2 = "p" }', "share a momentum"),
    ],
)
def test_bad_momenta_tables_are_refused(tmp_path, momenta, message):
    from formula_search.data import parse_card
    from formula_search.errors import InputError

    text = (
        'name = "x"\nkind = "simulated"\nhamiltonian = "p1^2 + p2^2 + q1^2 + q2^2"\n'
        + "".join(f'[[variables]]\nname = "{n}"\nunit = "1"\n' for n in ("q1", "q2", "w1", "w2"))
        + "[simulation]\ntrajectories = 2\nt_end = 1.0\npoints = 10\n"
        + f"momenta = {momenta}\n"
        + 'initial = { kind = "radius", r_min = 0.5, r_max = 1.0 }\n'
    )
    with pytest.raises(InputError, match=message):
        parse_card(text)
