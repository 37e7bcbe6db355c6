"""How far each inner step of the screen's tailoring lowers every sequence's Noether loss, per law.

Usage: ``python benchmarks/inner_step_losses.py RUN [RUN ...]`` (run directories of ``fsearch run`` or
``fsearch rank`` in trajectory mode).

For every law in ``RUN/ranking.csv``, at the inner rate and number of steps its screen chose, the pretrained
MLP of ``RUN/model.pt`` is tailored on each training and test sequence, one step at a time, with the run's
inner rule. Printed per run, law, split and sequence: the Noether loss before each step and after the last,
the squared norm of its gradient, and the step's effective rate (the Polyak rate ``lr L / |grad L|^2`` with
``--inner-rule polyak``, ``lr`` otherwise). This is what the screen sees before any meta-training; it shows
whether a law's loss is easy to lower for the MLP, and whether a Polyak rate ever jumps (a gradient that
vanishes while the loss does not).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch


def sequence_steps(run: Path) -> pd.DataFrame:
    """One row per (law, split, sequence, inner step) of ``run``; step ``n`` is the state after n steps."""
    from formula_search.data import dataset_from_options
    from formula_search.io import parse_params
    from meta_tailor import load_mlp
    from meta_tailor.advanced import dsl_compiler, mlp_sequence_grads, polyak_scale, rule_grads

    meta = json.loads((run / "meta.json").read_text())
    if meta.get("tailor_mode") != "trajectory":
        raise SystemExit(f"error: {run}: the run is not in trajectory mode")
    tcfg = meta["rank_config"]["tailor"]
    rule = meta.get("inner_rule", tcfg.get("inner_rule", "sgd"))
    data = dataset_from_options(**meta["dataset_options"])
    model, _, _ = load_mlp(run / "model.pt")
    start = {k: v.detach() for k, v in model.named_parameters()}
    compile_ = dsl_compiler(data.var_names)
    ranking = pd.read_csv(run / "ranking.csv")
    kw = {"dt": data.time_step, "form": tcfg["loss_form"], "integrator": tcfg["inner_integrator"]}
    rows = []
    for law in ranking.itertuples():
        g, _ = compile_(law.formula)
        theta = torch.tensor(parse_params(law.fitted_params), dtype=torch.float32)
        for split, trajectories in (("train", data.train), ("test", data.test)):
            for i, tr in enumerate(trajectories):
                x0 = torch.tensor(tr.x[:1], dtype=torch.float32)  # a copy: the data are read-only
                horizon = tcfg["horizon"] or len(tr.t) - 1
                params = dict(start)
                for step in range(int(law.inner_steps) + 1):
                    with torch.no_grad():
                        grads, loss = mlp_sequence_grads(
                            params, g, theta, x0, horizon=horizon, **kw
                        )
                    sq = sum(v.pow(2).sum() for v in grads.values())
                    scale = float(polyak_scale(sq, loss[0])) if rule == "polyak" else 1.0
                    last = step == int(law.inner_steps)
                    rows.append({"run": run.name, "law": law.formula, "split": split, "sequence": i,
                                 "step": step, "noether_loss": float(loss[0]), "grad_sq": float(sq),
                                 "rate": float("nan") if last else law.inner_lr * scale})  # fmt: skip
                    if not last:  # the inner step itself, as tailoring takes it
                        direction = rule_grads(rule, grads, loss)
                        params = {k: params[k] - law.inner_lr * direction[k][0] for k in params}
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, help="also write the rows to this CSV")
    args = ap.parse_args()
    table = pd.concat([sequence_steps(r) for r in args.runs], ignore_index=True)
    if args.out:
        table.to_csv(args.out, index=False)
    wide = table.pivot_table(
        index=["run", "law", "split", "sequence"],
        columns="step",
        values=["noether_loss", "rate"],
        sort=False,
    )
    wide = wide.dropna(axis=1, how="all")
    with pd.option_context("display.width", 220, "display.float_format", "{:.4g}".format):
        print(wide.to_string())
        first = table[table["step"] == 0].set_index(["run", "law", "split", "sequence"])
        end = table.groupby(["run", "law", "split", "sequence"], sort=False)["noether_loss"].last()
        kept = (end / first["noether_loss"]).groupby(["run", "law"], sort=False).mean()
        print("\nfraction of the Noether loss left after the inner steps (mean over sequences):")
        print(kept.rename("left").to_string())


if __name__ == "__main__":
    main()
