"""The ``fsearch`` learning commands: bad input is one line with exit code 2; export of a hand-made run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from formula_search.cli import main
from meta_tailor.advanced import CURVE_COLUMNS


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_export_missing_run_is_one_line_error(tmp_path, capsys):
    code, _, err = run_cli(["export", str(tmp_path / "nope")], capsys)
    assert code == 2
    assert err.startswith("Error:") and err.count("\n") == 1


def test_load_foreign_model_file_is_input_error(tmp_path):
    from formula_search.errors import InputError
    from meta_tailor import load_mlp

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(InputError):
        load_mlp(bad)


@pytest.fixture
def fake_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    meta = {
        "dataset": "ideal_pendulum",
        "variables": [{"name": "q", "unit": "rad"}, {"name": "p", "unit": "kg*m^2/s"}],
    }
    (run / "meta.json").write_text(json.dumps(meta))
    pd.DataFrame(
        {
            "formula": ["p^2 - c_0*cos(q)", "p^2 + c_0*q^2"],
            "fitted_params": ["[3.0]", "[1.0]"],
            "params": ["[2.391]", "[1.2]"],
            "inner_lr": [0.1, 0.1],
            "inner_steps": [1, 1],
            "screen_loss": [0.1, 0.2],
            "train_rollout_mse": [0.01, 0.02],
            "test_rmse": [0.04, 0.05],
            "rank": [1.0, 2.0],
        }
    ).to_csv(run / "ranking.csv", index=False)
    return run


def test_export_latex_and_json(fake_run, capsys):
    code, out, _ = run_cli(["export", str(fake_run), "--format", "latex"], capsys)
    assert code == 0
    assert r"p^{2} - 2.39 \cos{\left(q \right)}" in out
    # p^2 - c cos q: c carries the unit of p^2
    assert "kg ** 2" in out
    code, out, _ = run_cli(["export", str(fake_run), "--format", "json", "--top", "2"], capsys)
    payload = json.loads(out)
    assert [law["params"] for law in payload["laws"]] == [[2.391], [1.2]]


def test_export_markdown_is_written_for_people(fake_run, capsys):
    """The Markdown table shows the law with its value folded in (not ``+ (-2.391)*``), the constant's unit
    as pint writes it for people, and N/A where the vanilla MLP has no description (an empty CSV cell)."""
    pd.DataFrame(
        {
            "method": ["vanilla_mlp", "noether"],
            "description": ["", "p^2 - c_0*cos(q)"],
            "test_rmse": [0.2, 0.04],
        }
    ).to_csv(fake_run / "comparators.csv", index=False)
    code, out, _ = run_cli(["export", str(fake_run), "--format", "markdown"], capsys)
    assert code == 0
    # c_0 = 2.391 multiplies cos(q) and must carry the unit of p^2 = (kg m^2 / s)^2
    assert "| 1 | `p^2 - 2.391*cos(q)` | c_0 = 2.391 kg²·m⁴/s² | 0.04 |" in out
    assert "| Vanilla MLP | N/A | 0.2 |" in out
    assert "nan" not in out


def test_rank_with_polyak_rule_and_outer_rate_records_them(tmp_path, capsys):
    """`fsearch rank --inner-rule polyak --outer-lr R --inner-integrator euler` screens the Polyak rates and
    records its settings."""
    from meta_tailor.advanced import default_inner_lrs

    survivors = tmp_path / "survivors.csv"
    pd.DataFrame({"formula": ["q^2 + c_0*p^2"], "params": ["[1.0]"], "accepted": [True]}).to_csv(
        survivors, index=False
    )
    run = tmp_path / "run"
    code, out, err = run_cli(
        ["rank", "--dataset", "ideal_spring", "--survivors", str(survivors), "--run", str(run),
         "--inner-rule", "polyak", "--outer-lr", "1e-4", "--outer-lr", "3e-4", "--inner-integrator",
         "euler", "--epochs", "1", "--outer-warmup", "5", "--outer-decay", "cosine",
         "--pretrain-steps", "20",
         "--no-comparators", "--device", "cpu"],
        capsys,
    )  # fmt: skip
    assert code in (0, None), err
    meta = json.loads((run / "meta.json").read_text())
    assert meta["inner_rule"] == "polyak"
    assert meta["rank_config"]["tailor"]["outer_lr"] == 1e-4
    assert meta["rank_config"]["outer_lrs"] == [1e-4, 3e-4]
    ranked = pd.read_csv(run / "ranking.csv").dropna(subset=["rank"])
    assert len(ranked) and set(ranked["outer_lr"]) <= {1e-4, 3e-4}
    assert meta["rank_config"]["tailor"]["inner_integrator"] == "euler"
    assert meta["rank_config"]["tailor"]["outer_warmup"] == 5
    assert meta["rank_config"]["tailor"]["outer_decay"] == "cosine"
    screen = pd.read_csv(run / "screen.csv")
    assert sorted(screen["inner_lr"]) == pytest.approx(sorted(default_inner_lrs("polyak")))
    assert screen["screen_loss"].notna().all()
    # the long stage epoch by epoch: epochs 0 (tailored pretrained MLP) and 1 (after the one step) per
    # outer rate, and the kept rate's best score is the ranking's training rollout MSE, which rank()
    # computes separately by rolling out the returned model
    curves = pd.read_csv(run / "meta_curves.csv")
    assert list(curves.columns) == CURVE_COLUMNS
    assert sorted(curves["outer_lr"].unique()) == [1e-4, 3e-4]
    assert sorted(curves["epoch"]) == [0, 0, 1, 1]
    for row in ranked.itertuples():
        kept = curves[(curves["formula"] == row.formula) & (curves["outer_lr"] == row.outer_lr)]
        assert kept["score"].min() == pytest.approx(row.train_rollout_mse, rel=1e-5)
    code, out, err = run_cli(["plot", str(run)], capsys)
    assert code in (0, None), err
    for name in ("law_along_test.png", "meta_curves.png", "pretrain_curve.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    code, _, err = run_cli(
        [
            "rank",
            "--dataset",
            "ideal_spring",
            "--survivors",
            str(survivors),
            "--inner-rule",
            "adam",
        ],
        capsys,
    )
    assert code == 2 and "adam" in err
    code, _, err = run_cli(
        ["rank", "--dataset", "ideal_spring", "--survivors", str(survivors), "--outer-lr", "1e-3",
         "--outer-lr", "1e-3"],
        capsys,
    )  # fmt: skip
    assert code != 0 and "given twice" in err


def test_pretrain_model_seed_sets_the_initialisation(tmp_path, capsys):
    """`--model-seed S` starts the MLP from `make_mlp(seed=S)`; another seed retrains the run's model."""
    import torch

    from meta_tailor import load_mlp, make_mlp

    run = tmp_path / "run"
    args = ["pretrain", "--dataset", "ideal_spring", "--run", str(run), "--steps", "0",
            "--device", "cpu"]  # fmt: skip
    for seed in (3, 0):
        code, out, err = run_cli([*args, "--model-seed", str(seed)], capsys)
        assert code in (0, None), err
        assert "wrote" in out  # the other seed's model is not reused
        model, cfg, _ = load_mlp(run / "model.pt")
        assert cfg.seed == seed
        expected = make_mlp(2, hidden=cfg.hidden, seed=seed)
        got, want = model.state_dict(), expected.state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want) and got.keys() == want.keys()
    assert not torch.equal(
        make_mlp(2, seed=3).state_dict()["0.weight"], make_mlp(2, seed=0).state_dict()["0.weight"]
    )
    code, out, _ = run_cli([*args, "--model-seed", "0"], capsys)
    assert code in (0, None) and "already trained" in out


def test_pretrain_keep_best_saves_the_lowest_loss_weights(tmp_path, capsys):
    """`--pretrain-keep best` retrains a run's model and saves the weights with the lowest training loss
    of the run, recomputed here from an independent in-process training with the same settings."""
    from dataclasses import replace

    import torch

    from formula_search.data._load import load_dataset
    from meta_tailor._mlp import train_mlp
    from meta_tailor.advanced import load_mlp, make_mlp, paper_configs

    run = tmp_path / "run"
    args = ["pretrain", "--dataset", "ideal_spring", "--run", str(run), "--steps", "80",
            "--device", "cpu"]  # fmt: skip
    code, out, err = run_cli(args, capsys)
    assert code in (0, None) and "wrote" in out, err
    last_model, _, _ = load_mlp(run / "model.pt")
    last_curve = pd.read_csv(run / "pretrain_curve.csv")
    assert "stopped on a loss spike" in err  # these 80 steps end 1.8x above the run's lowest loss
    code, out, err = run_cli([*args, "--pretrain-keep", "best"], capsys)
    assert code in (0, None) and "wrote" in out, err  # the last-step model is not reused
    assert "spike" not in err
    model, cfg, _ = load_mlp(run / "model.pt")
    assert cfg.keep == "best" and cfg.steps == 80
    curve = pd.read_csv(run / "pretrain_curve.csv")
    assert list(curve["step"]) == list(range(81)) and curve["loss"].equals(last_curve["loss"])

    x, y = (
        torch.as_tensor(a, dtype=torch.float32)
        for a in load_dataset("ideal_spring").stacked("train")
    )
    reference = make_mlp(2, hidden=cfg.hidden, seed=cfg.seed)
    losses = train_mlp(reference, x, y, config=replace(paper_configs()[0], steps=80))
    with torch.no_grad():
        final = float(torch.mean((reference(x) - y) ** 2))
        saved = float(torch.mean((model(x) - y) ** 2))
        saved_last = float(torch.mean((last_model(x) - y) ** 2))
    # the curve's last row is the loss of the saved last-step model, its lowest that of the best one
    assert curve["loss"].iloc[-1] == pytest.approx(saved_last, rel=1e-6)
    assert curve["loss"].min() == pytest.approx(saved, rel=1e-6)
    assert min(losses) < final, (
        "80 steps end on a loss spike here; otherwise the test does not bite"
    )
    assert saved == pytest.approx(min(losses), rel=1e-6)
    code, out, _ = run_cli([*args, "--pretrain-keep", "best"], capsys)
    assert code in (0, None) and "already trained" in out


def test_rank_law_choice_cv_ranks_by_the_held_out_folds(tmp_path, capsys):
    """`fsearch rank --law-choice cv` writes every fold's held-out error to cv.csv, and the ranking's first
    law is the one with the lowest mean over the folds, recomputed here from cv.csv."""
    survivors = tmp_path / "survivors.csv"
    pd.DataFrame(
        {"formula": ["q^2 + c_0*p^2", "q*p + c_0"], "params": ["[1.0]", "[0.0]"], "accepted": True}
    ).to_csv(survivors, index=False)
    run = tmp_path / "run"
    args = ["rank", "--dataset", "ideal_spring", "--survivors", str(survivors), "--run", str(run),
            "--epochs", "1", "--pretrain-steps", "20", "--no-comparators", "--device", "cpu",
            "--protocol", "paper"]  # fmt: skip
    code, _, err = run_cli([*args, "--law-choice", "cv", "--cv-folds", "2"], capsys)
    assert code in (0, None), err
    assert "2-fold CV" in err
    meta = json.loads((run / "meta.json").read_text())
    assert meta["law_choice"] == "cv" and meta["cv_folds"] == 2 and meta["timings"]["cv_s"] > 0
    cv = pd.read_csv(run / "cv.csv")
    assert sorted(cv["fold"]) == [0, 0, 1, 1]
    held = {k: json.loads(h) for k, h in zip(cv["fold"], cv["held_out"])}
    assert held[0] == list(range(0, 25, 2)) and held[1] == list(range(1, 25, 2))
    means = cv.groupby("formula")["held_out_mse"].mean()
    ranking = pd.read_csv(run / "ranking.csv").dropna(subset=["rank"]).sort_values("rank")
    assert ranking["formula"].iloc[0] == means.idxmin()
    assert meta["winner"]["formula"] == means.idxmin()
    for row in ranking.itertuples():
        assert row.cv_mse == pytest.approx(means[row.formula], rel=1e-6)
    # the printed vote: how many folds each law has the lowest held-out error in, recounted from cv.csv
    wins = cv.loc[cv.groupby("fold")["held_out_mse"].idxmin(), "formula"].value_counts()
    said = " ".join(err.split())
    for formula, mean in means.items():
        assert f"{formula}: {mean:.4g} (lowest in {wins.get(formula, 0)} of 2 folds)" in said
    margin = 100 * (means.max() / means.min() - 1)
    assert f"runner-up's mean is {margin:.1f}% higher" in said
    code, out, err = run_cli(["plot", str(run)], capsys)
    assert code in (0, None), err
    assert (run / "cv.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the paper's in-sample choice in the same directory drops the stale cv.csv
    code, _, err = run_cli(args, capsys)
    assert code in (0, None), err
    assert not (run / "cv.csv").exists()
    assert pd.read_csv(run / "ranking.csv")["cv_mse"].isna().all()
    # more folds than training trajectories: one line, before any work
    code, _, err = run_cli([*args, "--law-choice", "cv", "--cv-folds", "26"], capsys)
    assert code == 2 and "26 folds" in err and err.count("\n") == 1


def test_model_fingerprint_leaves_out_the_default_keep():
    """A model saved before `keep` existed had no such key in its fingerprint: with the default it must
    still match (and be reused); with `best` it must not."""
    from formula_search.data._load import load_dataset
    from formula_search.runs import model_fingerprint
    from meta_tailor import MLPConfig

    data = load_dataset("ideal_spring")
    saved_before = json.dumps(
        {"hidden": 200, "steps": 2000, "lr": 1e-3, "weight_decay": 1e-4, "seed": 0}, sort_keys=True
    )
    assert model_fingerprint(data, {}, MLPConfig())["mlp"] == saved_before
    assert "keep" in json.loads(model_fingerprint(data, {}, MLPConfig(keep="best"))["mlp"])


def test_rank_outer_adam_continue_uses_the_saved_pretraining_state(tmp_path, capsys):
    """`--outer-adam continue` is recorded; the model is saved with its Adam state (that of the saved
    weights, here 20 steps), and a model saved without one (before the option) is trained again."""
    import torch

    from meta_tailor.advanced import load_adam_state

    survivors = tmp_path / "survivors.csv"
    pd.DataFrame({"formula": ["q^2 + c_0*p^2"], "params": ["[1.0]"], "accepted": [True]}).to_csv(
        survivors, index=False
    )
    run = tmp_path / "run"
    args = ["rank", "--dataset", "ideal_spring", "--survivors", str(survivors), "--run", str(run),
            "--epochs", "2", "--pretrain-steps", "20", "--no-comparators", "--device", "cpu"]  # fmt: skip
    code, _, err = run_cli(args, capsys)
    assert code in (0, None), err
    assert (
        json.loads((run / "meta.json").read_text())["rank_config"]["tailor"]["outer_adam"]
        == "fresh"
    )
    state = load_adam_state(run / "model.pt")
    assert state["step"] == 20
    # a model file from before the option: same weights and fingerprint, no Adam state
    payload = torch.load(run / "model.pt", weights_only=True)
    del payload["adam_step"], payload["adam_moments"]
    torch.save(payload, run / "model.pt")
    code, _, err = run_cli([*args, "--outer-adam", "continue"], capsys)
    assert code in (0, None), err
    meta = json.loads((run / "meta.json").read_text())
    assert meta["rank_config"]["tailor"]["outer_adam"] == "continue"
    assert meta["timings"]["pretrain_s"] > 0  # trained again, to get the state
    again = load_adam_state(run / "model.pt")
    assert again["step"] == 20
    for name, (m, v) in state["moments"].items():
        assert torch.equal(again["moments"][name][0], m) and torch.equal(
            again["moments"][name][1], v
        )
    code, _, err = run_cli([*args, "--outer-adam", "continue"], capsys)
    assert code in (0, None), err
    assert json.loads((run / "meta.json").read_text())["timings"]["pretrain_s"] == 0  # reused
    code, _, err = run_cli([*args, "--outer-adam", "warm"], capsys)
    assert code == 2 and "warm" in err


def test_law_from_and_law_choice_paper_rank_only_the_paper_rankings_law(tmp_path, capsys):
    """`--law-from RUN` meta-tailors only the law RUN chose, from the fit's constants, with the new run's
    own settings; it refuses a run on other data and a second list of formulas. `--law-choice paper` gives
    the same two rankings in one run."""
    survivors = tmp_path / "survivors.csv"
    pd.DataFrame(
        {
            "formula": ["q^2 + c_0*p^2", "q^2 + c_0*q*p"],
            "params": ["[0.9]", "[0.1]"],
            "accepted": [True, True],
        }
    ).to_csv(survivors, index=False)
    common = ["--epochs", "1", "--pretrain-steps", "20", "--no-comparators", "--device", "cpu"]

    def rank_spring(*args):  # a ranking that must succeed; returns what it said on stderr
        code, _, err = run_cli(["rank", "--dataset", "ideal_spring", *args, *common], capsys)
        assert code in (0, None), err
        return err

    first = tmp_path / "first"
    rank_spring("--survivors", str(survivors), "--run", str(first), "--protocol", "paper")
    winner = json.loads((first / "meta.json").read_text())["winner"]
    second = tmp_path / "second"
    rank_spring("--law-from", str(first), "--run", str(second), "--inner-rule", "polyak")
    ranked = pd.read_csv(second / "ranking.csv")
    assert list(ranked["formula"]) == [winner["formula"]]
    # it starts from the fit's constants (the survivors file's), not from the first run's meta-learned ones
    start = 0.9 if winner["formula"] == "q^2 + c_0*p^2" else 0.1
    assert json.loads(ranked["fitted_params"].iloc[0]) == pytest.approx([start])
    meta = json.loads((second / "meta.json").read_text())
    assert meta["law_from"] == str(first) and meta["inner_rule"] == "polyak"
    # --law-choice paper does both in one run: its law stage is the first run's ranking (the paper's inner
    # rule and outer rate), and its ranking is the second run's (the law alone, with this run's settings)
    both = tmp_path / "both"
    err = rank_spring("--survivors", str(survivors), "--run", str(both), "--inner-rule", "polyak",
                      "--law-choice", "paper")  # fmt: skip
    # it says what chose the law: the finalists' training rollout MSE, the winner first
    said = " ".join(err.split())
    assert "law choice by the paper's inner rule and outer rate" in said
    first_ranking = pd.read_csv(first / "ranking.csv").dropna(subset=["rank"]).sort_values("rank")
    listed = ", ".join(
        f"{r.formula}: {r.train_rollout_mse:.4g}" for r in first_ranking.itertuples()
    )
    assert f"(training rollout MSE; law_ranking.csv): {listed}; " in said
    assert "meta-tailored alone with inner rule polyak, outer rate 0.001" in said
    cols = [
        "formula",
        "params",
        "inner_lr",
        "inner_steps",
        "train_rollout_mse",
        "test_rmse",
        "rank",
    ]
    pd.testing.assert_frame_equal(
        pd.read_csv(both / "law_ranking.csv")[cols], pd.read_csv(first / "ranking.csv")[cols]
    )
    pd.testing.assert_frame_equal(pd.read_csv(both / "ranking.csv")[cols], ranked[cols])
    meta = json.loads((both / "meta.json").read_text())
    assert meta["law_rank_config"]["tailor"]["inner_rule"] == "sgd"
    assert meta["rank_config"]["tailor"]["inner_rule"] == "polyak"
    # with the paper's rule and rate the law stage would be the ranking itself: it is not run twice
    rank_spring(
        "--survivors",
        str(survivors),
        "--run",
        str(both),
        "--law-choice",
        "paper",
        "--protocol",
        "paper",
    )
    assert not (both / "law_ranking.csv").exists()
    pd.testing.assert_frame_equal(
        pd.read_csv(both / "ranking.csv")[cols], pd.read_csv(first / "ranking.csv")[cols]
    )
    # other data (another seed of the simulation), two lists of formulas, and a law given and chosen:
    # one-line errors
    for extra in (
        ["--seed", "1"],
        ["--survivors", str(survivors)],
        ["--law-choice", "cv", "--protocol", "paper"],
    ):
        code, _, err = run_cli(
            ["rank", "--dataset", "ideal_spring", "--law-from", str(first), "--run", str(second)]
            + extra
            + common,
            capsys,
        )
        assert code == 2 and err.startswith("Error:") and err.count("\n") == 1, err


def test_search_says_whether_it_searched_or_reused_the_cache(tmp_path, monkeypatch, capsys):
    """The second search of the same inputs reads the first one's file back, and says so."""
    from formula_search.data import load_dataset
    from formula_search.runs import search_stage

    monkeypatch.setenv("FSEARCH_CACHE", str(tmp_path))
    data = load_dataset("ideal_spring")
    args = dict(depth=7, dedup="conservation", ratio=0.01, jobs=1, device="cpu", seed=0)
    first, path = search_stage(data, **args)
    said_first = " ".join(capsys.readouterr().err.split())
    again, path_again = search_stage(data, **args)
    said_again = " ".join(capsys.readouterr().err.split())
    assert path_again == path and path.startswith(str(tmp_path))
    pd.testing.assert_frame_equal(again, first)
    assert "saved to" in said_first and "reused from" not in said_first
    assert "reused from" in said_again and "saved to" not in said_again
