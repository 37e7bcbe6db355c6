"""The Schmidt & Lipson recording: rows, gaps, HNN's split and the Noether paper's 4 trajectories."""

import hashlib

import numpy as np

from formula_search.data import builtin_dir, energy_function, load_dataset

RAW = builtin_dir() / "real_pendulum" / "real_pend_h_1.txt"


def test_raw_file_is_the_published_one():
    digest = hashlib.sha256(RAW.read_bytes()).hexdigest()
    assert digest == "45d92988198b89a5933f5a53e67aa819d06937516f71a462ac09e1307d8b3411"
    assert (RAW.parent / "SOURCE.md").exists()


def test_loads_556_rows_with_gaps_honoured():
    raw = np.loadtxt(RAW, skiprows=1)  # independent reader: trial t o v
    ds = load_dataset("real_pendulum")
    assert ds.n_rows == 556 == raw.shape[0]
    assert ds.var_names == ("q", "p") and ds.units == ("rad", "rad/s")
    trajs = ds.train + ds.test
    t = np.concatenate([tr.t for tr in trajs])
    x = np.concatenate([tr.x for tr in trajs])
    dxdt = np.concatenate([tr.dxdt for tr in trajs])
    # HNN's forward differences: 555 points, the last row has no successor
    np.testing.assert_array_equal(t, raw[:-1, 1])
    np.testing.assert_array_equal(x, raw[:-1, 2:4])
    steps = np.diff(raw[:, 1])
    gaps = np.nonzero(steps > 0.2)[0]
    assert len(gaps) == 10  # 8 steps of 1/3 and 2 of 1/2 (dropped frames)
    for i in gaps:
        expected = (raw[i + 1, 2:4] - raw[i, 2:4]) / (raw[i + 1, 1] - raw[i, 1])
        np.testing.assert_allclose(dxdt[i], expected, rtol=1e-12)
        # dividing by the nominal 1/6 instead would be off by a factor 2 or 3
        assert not np.allclose(dxdt[i], (raw[i + 1, 2:4] - raw[i, 2:4]) * 6)
    assert abs(ds.time_step - 1 / 6) < 1e-9


def test_split_80_20_in_time_order_and_4_training_pieces():
    ds = load_dataset("real_pendulum")
    assert [len(tr) for tr in ds.train] == [111, 111, 111, 111]
    assert [len(tr) for tr in ds.test] == [111]
    assert ds.n_points("train") == int(555 * 0.8) == 444
    # time order: every training time precedes every test time; pieces are consecutive
    assert ds.train[-1].t[-1] < ds.test[0].t[0]
    for a, b in zip(ds.train, ds.train[1:]):
        assert a.t[-1] < b.t[0]


def test_reference_energy_decays_and_window_set():
    ds = load_dataset("real_pendulum")
    energy = energy_function(ds.hamiltonian, ds.var_names)
    e_first = energy(ds.train[0].x[:36]).mean()
    e_last = energy(ds.test[0].x[-36:]).mean()
    assert 1.8 < e_first < 2.2 and 0.6 < e_last < 0.9  # SOURCE.md: about 2.07 down to about 0.76
    assert ds.default_window == 36
    assert "Schmidt" in ds.citation and "Lipson" in ds.citation
