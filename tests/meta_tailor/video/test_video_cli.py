"""`fsearch video` end to end at tiny sizes, and one-line errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from formula_search.cli import main

TINY = ["--nf", "2", "--g-dim", "4", "--rnn-size", "8", "--batch-size", "2", "--svg-epochs", "1",
        "--meta-epochs", "1", "--steps-per-epoch", "2", "--device", "cpu"]  # fmt: skip


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_pendulum_generate_train_resume_evaluate_plot(tmp_path, capsys):
    pytest.importorskip("gymnasium")
    data = [
        "--episodes",
        "2",
        "--steps",
        "16",
        "--n-train",
        "1",
        "--size",
        "16",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    code, out, _ = run(["video", "generate", *data], capsys)
    assert code == 0 and "2 episodes x 16 frames" in out
    run_dir = tmp_path / "run"
    code, out, _ = run(
        ["video", "train", *data, *TINY, "--eval-future", "6", "--out", str(run_dir)], capsys
    )
    assert code == 0, out
    first = torch.load(run_dir / "noether.pt", weights_only=True)
    assert first["epoch"] == 1 and first["embedding"] is not None
    # a run written before the option `reduction` existed resumes as its default, "sum"
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["noether"].pop("reduction") == "sum"
    (run_dir / "config.json").write_text(json.dumps(cfg))
    # a second call finds every stage finished and trains nothing more
    code, out, _ = run(
        ["video", "train", *data, *TINY, "--eval-future", "6", "--out", str(run_dir)], capsys
    )
    assert code == 0 and "train MSE" not in out
    again = torch.load(run_dir / "noether.pt", weights_only=True)
    torch.testing.assert_close(again["model"], first["model"])
    code, out, _ = run(["video", "evaluate", "--out", str(run_dir), "--study", "0,1"], capsys)
    assert code == 0, out
    res = pd.read_csv(run_dir / "results.csv")
    assert set(res["method"]) == {"svg", "svg_more", "noether"}
    assert sorted(res["step"].unique()) == list(range(1, 7))
    # PSNR is averaged per frame: by convexity of -log, mean PSNR >= PSNR of the mean MSE
    assert (res["psnr"] >= -10 * np.log10(res["mse"]) - 1e-9).all()
    sgd_study = pd.read_csv(run_dir / "inner_steps.csv")
    # the study's own inner loop (the paper's figure 6 uses Adam) leaves the evaluation's alone
    code, out, _ = run(["video", "evaluate", "--out", str(run_dir), "--study", "0,1,3",
                        "--study-optimizer", "adam", "--study-lr", "0.01"], capsys)  # fmt: skip
    assert code == 0, out
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "results.csv"), res)
    adam_study = pd.read_csv(run_dir / "inner_steps.csv").set_index("inner_steps")
    assert adam_study.loc[0, "noether_loss"] == pytest.approx(
        sgd_study.set_index("inner_steps").loc[0, "noether_loss"]
    )
    assert adam_study["noether_loss"].is_monotonic_decreasing  # small Adam steps lower the loss
    assert adam_study.loc[3, "noether_loss"] < adam_study.loc[0, "noether_loss"]
    code, out, err = run(["video", "evaluate", "--out", str(run_dir), "--study", "0,1",
                          "--study-lr", "0"], capsys)  # fmt: skip
    assert code == 2 and "--study-lr" in err
    # the study's optimizer is the one asked for: SGD at the same rate takes other steps
    code, out, _ = run(["video", "evaluate", "--out", str(run_dir), "--study", "0,1,3",
                        "--study-optimizer", "sgd", "--study-lr", "0.01"], capsys)  # fmt: skip
    assert code == 0, out
    sgd_same_lr = pd.read_csv(run_dir / "inner_steps.csv").set_index("inner_steps")
    assert sgd_same_lr.loc[3, "noether_loss"] != pytest.approx(
        adam_study.loc[3, "noether_loss"], rel=1e-6
    )
    # a negative count is refused (by the CLI before evaluating, and by inner_steps_study) and nothing is written
    before = (run_dir / "results.csv").stat().st_mtime_ns
    code, out, err = run(["video", "evaluate", "--out", str(run_dir), "--study", "0,-1"], capsys)
    assert code != 0 and ">= 0" in out + err
    assert (run_dir / "results.csv").stat().st_mtime_ns == before
    code, out, _ = run(["video", "plot", str(run_dir / "results.csv"), "--inner-steps-table",
                        str(run_dir / "inner_steps.csv")], capsys)  # fmt: skip
    assert (
        code == 0
        and (run_dir / "metrics.png").stat().st_size > 1000
        and (run_dir / "inner_steps.png").is_file()
    )

    # evaluate's inner step is the trained one unless asked otherwise: a run recorded as trained with the
    # Polyak step evaluates with it, and only --inner-optimizer sgd returns the SGD step's numbers
    def noether_rows(*extra):
        code, out, _ = run(["video", "evaluate", "--out", str(run_dir), *extra], capsys)
        assert code == 0, out
        r = pd.read_csv(run_dir / "results.csv")
        return r[r["method"] == "noether"].reset_index(drop=True)

    cfg = json.loads((run_dir / "config.json").read_text())
    cfg["noether"].update(inner_optimizer="polyak", inner_lr=0.5)
    (run_dir / "config.json").write_text(json.dumps(cfg))
    as_trained = noether_rows()
    pd.testing.assert_frame_equal(as_trained, noether_rows("--inner-optimizer", "polyak"))
    sgd = noether_rows("--inner-optimizer", "sgd")
    assert not np.allclose(sgd["mse"], as_trained["mse"], rtol=1e-9, atol=0)


def test_ramp_experiment_with_cngrad(tmp_path, capsys):
    out_dir = tmp_path / "exp"
    code, out, err = run(["video", "experiment", "--dataset", "ramp", "--episodes", "3", "--n-train", "2",
                          "--size", "16", "--steps", "6", "--train-future", "4", "--eval-future", "4",
                          "--cache-dir", str(tmp_path / "c"), "--seeds", "2", "--study", "0,1",
                          "--inner-reduction", "mean", "--inner-optimizer", "polyak",
                          "--inner-lr", "0.5", "--out", str(out_dir), *TINY], capsys)  # fmt: skip
    assert code == 0, out + err
    res = pd.read_csv(out_dir / "results.csv")
    assert set(res["seed"]) == {0, 1} and len(res) == 2 * 3 * 4
    overall = pd.read_csv(out_dir / "overall.csv")
    assert list(overall["seeds"]) == [2, 2, 2]
    assert (
        json.loads((out_dir / "seed1" / "config.json").read_text())["noether"]["reduction"]
        == "mean"
    )
    for name in ("summary.csv", "metrics.png", "inner_steps.csv", "inner_steps.png"):
        assert (out_dir / name).is_file()
    cfg = (out_dir / "seed0" / "config.json").read_text()
    assert '"tailor": "cn"' in cfg and '"loss_form": "b"' in cfg
    assert '"inner_optimizer": "polyak"' in cfg


def test_cpu_preset_fills_only_unset_options(tmp_path, capsys):
    pytest.importorskip("gymnasium")
    data = ["--preset", "cpu", "--episodes", "2", "--steps", "16", "--n-train", "1",
            "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    code, out, _ = run(["video", "generate", *data], capsys)
    assert code == 0 and "2 episodes x 16 frames of 3x32x32" in out  # size from the preset
    tiny = ["--nf", "2", "--g-dim", "4", "--svg-epochs", "1", "--meta-epochs", "1",
            "--steps-per-epoch", "1", "--device", "cpu"]  # fmt: skip
    run_dir = tmp_path / "run"
    code, out, _ = run(
        ["video", "train", *data, *tiny, "--eval-future", "6", "--out", str(run_dir)], capsys
    )
    assert code == 0, out
    cfg = json.loads((run_dir / "config.json").read_text())
    preset = {"size": 32, "rnn_size": 128, "batch_size": 8}  # left unset on the command line
    # given on the command line: they win over the preset's 16, 64 and 100
    given = {"nf": 2, "g_dim": 4, "steps_per_epoch": 1}
    assert {k: cfg["model"].get(k, cfg.get(k)) for k in preset} == preset
    assert {k: cfg["model"].get(k, cfg.get(k)) for k in given} == given


@pytest.mark.parametrize(
    "argv",
    [
        ["video", "generate", "--preset", "cpu", "--dataset", "ramp"],
        ["video", "train", "--data", "missing.npz"],
        ["video", "evaluate", "--out", "no-such-run"],
        ["video", "plot", "missing.csv"],
        ["video", "generate", "--episodes", "3", "--n-train", "3"],
        ["video", "experiment", "--seeds", "0"],
        ["video", "generate", "--dataset", "physics101"],
    ],
)
def test_bad_input_is_one_line_error(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err.startswith("Error: ") and err.count("\n") == 1, err
