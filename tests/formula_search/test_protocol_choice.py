"""The meta-tailoring protocol of a run's final model: pinned by the command line, a named protocol, the
card's [protocol], or chosen by cross-validation over the training trajectories, which never reads the
test split."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from formula_search.errors import InputError
from formula_search.runs import execute

TINY = dict(
    epochs=2, pretrain_steps=50, top_k=1, device="cpu", comparators=False, hnn=False, jobs=1
)


# ---------------------------------------------------------------------------------------------------------
# Which protocol: the command line wins over the card, the card over the choice


@pytest.mark.parametrize(
    ("protocol", "inner_rule", "outer_lr", "card", "want"),
    [
        ("auto", None, (), {}, ("auto", "cross-validation")),
        ("auto", None, (), {"inner_rule": "polyak"}, ("given", "card")),
        ("auto", None, (), {"outer_lr": 3e-4}, ("given", "card")),
        ("paper", None, (), {"inner_rule": "polyak"}, ("paper", "--protocol")),
        ("auto", "sgd", (), {"inner_rule": "polyak"}, ("given", "--inner-rule")),
        ("auto", None, (1e-3,), {}, ("given", "--outer-lr")),
        ("polyak", None, (), {}, ("polyak", "--protocol")),
    ],
)  # fmt: skip
def test_the_plan_follows_the_order_of_precedence(protocol, inner_rule, outer_lr, card, want):
    from formula_search._protocol_choice import plan_protocol

    plan = plan_protocol(protocol, inner_rule, outer_lr, card)
    assert plan.name == want[0] and want[1] in plan.by


def test_a_named_protocol_and_an_inner_rule_together_are_refused():
    from formula_search._protocol_choice import plan_protocol

    with pytest.raises(InputError, match="not both"):
        plan_protocol("polyak", "sgd", (), {})


def _cv_table(paper: list[float], polyak: list[float]):
    from meta_tailor.advanced import PROTOCOL_CV_COLUMNS, ProtocolCV

    rows = [
        {"protocol": name, "fold": k, "held_out_mse": v}
        for name, values in (("paper", paper), ("polyak", polyak))
        for k, v in enumerate(values)
    ]
    return ProtocolCV(pd.DataFrame(rows).reindex(columns=PROTOCOL_CV_COLUMNS))


@pytest.mark.parametrize(
    ("paper", "polyak", "want"),
    [
        ([1.0, 1.0, 1.0, 1.0], [0.05, 0.05, 0.05, 0.05], "polyak"),  # 20x lower in every fold
        ([1.0, 1.0, 1.0, 1.0], [0.2, 0.2, 0.2, 0.2], "paper"),  # 5x: not enough
        ([4.0, 0.01, 0.01, 0.01], [0.1, 0.02, 0.02, 0.02], "paper"),  # 10x on average, not every fold
        ([1.0, 1.0, 1.0, 1.0], [0.01, 0.01, 0.01, float("inf")], "paper"),  # a diverged fold
        ([1.0, 1.0], [0.1, 0.1], "polyak"),  # exactly 10x counts
    ],
)  # fmt: skip
def test_the_polyak_protocol_needs_ten_times_lower_mean_and_every_fold(paper, polyak, want):
    from formula_search._protocol_choice import MARGIN, PAPER

    cv = _cv_table(paper, polyak)
    assert cv.choose(PAPER, MARGIN) == want
    assert cv.scores["paper"] == pytest.approx(np.mean(paper))


def test_the_cards_protocol_and_the_command_line_set_the_rankings_settings():
    """A card that pins the Polyak rule and a rate gets them; --inner-rule on the command line wins; a
    named protocol wins over the card's pin; the paper's protocol is the plain RankConfig's."""
    from formula_search._protocol_choice import plan_protocol
    from formula_search.runs import RunSettings, _rank_configs

    card = {"inner_rule": "polyak", "outer_lr": 2e-4}

    def cfg(**settings):
        s = RunSettings(**settings)
        return _rank_configs(card, s, plan_protocol(s.protocol, s.inner_rule, s.outer_lr, card))

    pinned, law_cfg = cfg()
    assert (pinned.tailor.inner_rule, pinned.tailor.outer_lr) == ("polyak", 2e-4)
    # the law is chosen with the paper's protocol all the same
    assert (law_cfg.tailor.inner_rule, law_cfg.tailor.outer_lr) == ("sgd", 1e-3)
    cli, law_cfg = cfg(inner_rule="sgd")
    assert (cli.tailor.inner_rule, cli.tailor.outer_lr) == ("sgd", 2e-4) and law_cfg is not None
    named, law_cfg = cfg(protocol="paper")
    assert (named.tailor.inner_rule, named.tailor.outer_lr) == ("sgd", 1e-3) and law_cfg is None


@pytest.mark.parametrize(
    ("table", "message"),
    [('[protocol]\ninner_rule = "adam"', "inner_rule must be one of sgd, polyak"),
     ("[protocol]\nouter_lr = -1.0", "outer_lr must be a positive number"),
     ('[search]\nmeasure = "variance"', "measure must be one of derivative, paper")],
)  # fmt: skip
def test_bad_protocol_and_measure_keys_are_one_line(table, message):
    from formula_search.data import parse_card

    text = (
        'name = "x"\nkind = "simulated"\nhamiltonian = "p^2 + q^2"\n'
        '[[variables]]\nname = "q"\nunit = "m"\n[[variables]]\nname = "p"\nunit = "m/s"\n'
        "[simulation]\ntrajectories = 2\nt_end = 1.0\npoints = 10\n"
        'initial = { kind = "radius", r_min = 0.5, r_max = 1.0 }\n'
        f"{table}\n"
    )
    with pytest.raises(InputError, match=message):
        parse_card(text)


# ---------------------------------------------------------------------------------------------------------
# Runs


def _spring(poison: bool = False):
    """The ideal spring with 8 training trajectories; with ``poison``, its test split replaced by large
    random states and rates (a choice that read them would change)."""
    from formula_search.data import load_dataset

    data = load_dataset("ideal_spring")
    data = replace(data, train=data.train[:8])
    if poison:
        rng = np.random.default_rng(1)
        data = replace(
            data,
            test=tuple(
                replace(
                    tr,
                    x=rng.normal(0, 1e3, np.shape(tr.x)),
                    dxdt=rng.normal(0, 1e3, np.shape(tr.dxdt)),
                )
                for tr in data.test
            ),
        )
    return data


def _run(tmp_path, name, data, **settings):
    folder, meta = execute(
        {"dataset": data.name, "seed": 0},
        data=data,
        run=str(tmp_path / name),
        survivors=str(_survivors(tmp_path)),
        **{**TINY, **settings},
    )
    return folder, meta


def _survivors(tmp_path):
    path = tmp_path / "survivors.csv"
    if not path.exists():
        pd.DataFrame({"formula": ["q^2 + c_0*p^2"], "params": ["1.0"], "accepted": [True]}).to_csv(
            path, index=False
        )
    return path


def test_the_choice_never_reads_the_test_split(tmp_path, monkeypatch):
    """The same run on data whose test split is replaced by noise of size 1e3 gives the same CV table, to
    the last bit, and the same protocol; the test errors themselves differ (so the test split is used
    where it should be)."""
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path / "cache"))
    clean, clean_meta = _run(tmp_path, "clean", _spring())
    poisoned, poisoned_meta = _run(tmp_path, "poisoned", _spring(poison=True))
    a = pd.read_csv(clean / "protocol_cv.csv")
    b = pd.read_csv(poisoned / "protocol_cv.csv")
    assert len(a) == 2 * 4 and set(a["protocol"]) == {"paper", "polyak"}
    assert np.isfinite(a["held_out_mse"]).all()
    pd.testing.assert_frame_equal(a.drop(columns="wall_s"), b.drop(columns="wall_s"))
    assert clean_meta["protocol"]["name"] == poisoned_meta["protocol"]["name"]
    assert clean_meta["protocol"]["cv"] == poisoned_meta["protocol"]["cv"]
    ra, rb = (pd.read_csv(f / "ranking.csv") for f in (clean, poisoned))
    assert ra["train_rollout_mse"].equals(rb["train_rollout_mse"])
    assert ra["test_rmse"].iloc[0] != rb["test_rmse"].iloc[0]


def test_a_chosen_polyak_protocol_retailors_the_law_and_keeps_the_law_stage(tmp_path, monkeypatch):
    """When the CV chooses the Polyak protocol, the law of the paper's ranking is meta-tailored again with
    it (law_ranking.csv keeps the ranking that chose the law), and meta.json says so; the search's table
    still gives meta.json's count of survivors."""
    from meta_tailor.advanced import ProtocolCV

    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ProtocolCV, "choose", lambda self, default, margin: "polyak")
    folder, meta = _run(tmp_path, "run", _spring())
    assert meta["protocol"]["name"] == "polyak" and "cross-validation" in meta["protocol"]["by"]
    assert meta["rank_config"]["tailor"]["inner_rule"] == "polyak"
    assert meta["rank_config"]["tailor"]["outer_lr"] == 3e-4
    assert meta["law_rank_config"]["tailor"]["inner_rule"] == "sgd"
    law_stage = pd.read_csv(folder / "law_ranking.csv")
    assert law_stage["formula"].iloc[0] == pd.read_csv(folder / "ranking.csv")["formula"].iloc[0]
    assert json.loads((folder / "meta.json").read_text())["protocol"]["cv"]["folds"] == 4
    assert (
        meta["n_survivors"] == 1 and meta["most_conserved"] is None
    )  # a survivors file without ratios


def test_a_card_pin_is_honoured_and_the_command_line_wins(tmp_path, monkeypatch):
    """A card with [protocol] inner_rule = "polyak" runs the Polyak rule without a choice; --protocol paper
    on the command line runs the paper's."""
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path / "cache"))
    data = replace(_spring(), protocol={"inner_rule": "polyak", "outer_lr": 3e-4})
    folder, meta = _run(tmp_path, "card", data)
    assert meta["protocol"] == {"name": "given", "by": "the dataset card's [protocol]"}
    assert meta["rank_config"]["tailor"]["inner_rule"] == "polyak"
    assert not (folder / "protocol_cv.csv").exists()
    folder, meta = _run(tmp_path, "cli", data, protocol="paper")
    assert meta["protocol"]["name"] == "paper" and "--protocol" in meta["protocol"]["by"]
    assert meta["rank_config"]["tailor"]["inner_rule"] == "sgd"
    assert meta["rank_config"]["tailor"]["outer_lr"] == 1e-3


@pytest.mark.parametrize("choice", ["cv", "train"])
def test_a_law_choice_under_the_runs_own_protocol_needs_a_named_protocol(tmp_path, choice):
    with pytest.raises(
        InputError, match=f"--law-choice {choice} chooses the law under the run's own"
    ):
        execute({"dataset": "ideal_spring"}, run=str(tmp_path / "r"), law_choice=choice)


def test_the_oracle_ranked_elsewhere_gives_the_same_comparator_row(tmp_path):
    """comparators(oracle_ranked=oracle_ranking(...)) equals comparators() computing the oracle itself, and
    oracle_ranking's result survives a round trip through pickle (it runs in another process)."""
    import pickle

    import torch

    from meta_tailor import MLPConfig
    from meta_tailor.advanced import (
        RankConfig,
        comparators,
        oracle_ranking,
        paper_configs,
        pretrain,
    )

    data = _spring()
    mlp = MLPConfig(steps=30)
    _, cfg = paper_configs(data.protocol)
    cfg = replace(cfg, device="cpu", top_k=1, tailor=replace(cfg.tailor, epochs=2))
    assert isinstance(cfg, RankConfig)
    model, _, _ = pretrain(data, config=mlp, device="cpu")
    before = torch.get_num_threads()
    ranked = pickle.loads(
        pickle.dumps(oracle_ranking(data.hamiltonian, model, data, rank_config=cfg))
    )
    kw = dict(mlp_config=mlp, rank_config=cfg, oracle=data.hamiltonian, include_hnn=False)
    inside = comparators(model, data, **kw).table.set_index("method")
    given = comparators(model, data, oracle_ranked=ranked, **kw).table.set_index("method")
    assert inside.loc["oracle"].equals(given.loc["oracle"])
    assert torch.get_num_threads() == before


def test_torch_threads_are_restored_after_the_block():
    import torch

    from formula_search.runs import _torch_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), _torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("a ranking that fails")
    assert torch.get_num_threads() == before


def test_the_cards_measure_is_the_enumerations_only(tmp_path, monkeypatch):
    """A card naming the paper's measure still runs the term search (derivative measure only) when terms
    are asked for, and records the measure that was used."""
    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path / "cache"))
    data = replace(_spring(), search={"measure": "paper"})
    _, meta = execute(
        {"dataset": data.name, "seed": 0},
        data=data,
        run=str(tmp_path / "terms"),
        terms=2,
        term_depth=2,
        protocol="paper",
        **TINY,
    )
    assert meta["measure"] == "derivative" and meta["survivors"].startswith("term search")
