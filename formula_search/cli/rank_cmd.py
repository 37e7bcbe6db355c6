"""``fsearch pretrain``, ``fsearch rank``, ``fsearch export`` and ``fsearch plot``.

A run directory (``RUN``, default ``runs/DATASET``) holds:

- ``model.pt``: the pretrained vanilla MLP (``fsearch pretrain``; loaded with ``weights_only=True``);
- ``ranking.csv``: the ranking table (:data:`meta_tailor.RANK_COLUMNS`), one row per accepted survivor;
- ``screen.csv``: every screened (formula, inner_lr, inner_steps) and its screen loss;
- ``comparators.csv``: vanilla MLP, MLP with more epochs, Noether winner, oracle, HNN
  (:data:`meta_tailor.COMPARATOR_COLUMNS`);
- ``horizons.csv``: test error per prediction horizon and method;
- ``winner.pt``: the meta-tailored winner's MLP weights and formula parameters;
- ``meta.json``: dataset, variables and units, settings, device, timings, and the winner.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import click

from formula_search.errors import InputError

DEVICE = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to compute.",
)


def _run_dir(run: str | None, dataset: str) -> Path:
    return Path(run) if run else Path("runs") / dataset


def _load_data(dataset: str, noise: float | None, seed: int):
    from formula_search.data import load_dataset

    return load_dataset(dataset, noise=noise, seed=seed)


def _write_json(obj: dict, path: Path) -> None:
    from formula_search.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))


def _read_meta(run: Path) -> dict:
    path = run / "meta.json"
    if not path.exists():
        raise InputError(f"{run}: not a run directory (no meta.json); run `fsearch rank` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: broken JSON ({exc.msg})") from exc


def _progress():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )


def _pretrain(dataset, data, run: Path, *, steps: int | None, device: str, noise, seed) -> float:
    from meta_tailor import paper_configs, pretrain, save_mlp

    mlp_cfg, _ = paper_configs(dataset)
    if steps is not None:
        mlp_cfg = replace(mlp_cfg, steps=steps)
    t0 = time.perf_counter()
    with _progress() as bar:
        task = bar.add_task("pretrain MLP", total=mlp_cfg.steps)
        model = pretrain(
            data,
            config=mlp_cfg,
            device=device,
            progress=lambda s: bar.update(task, completed=s + 1),
        )
    save_mlp(
        model,
        run / "model.pt",
        config=mlp_cfg,
        n_vars=len(data.var_names),
        dataset=dataset,
        noise=float(noise or 0.0),
        seed=seed,
    )
    return time.perf_counter() - t0


@click.command("pretrain")
@click.option("--dataset", required=True, help="Built-in dataset name (e.g. ideal_pendulum).")
@click.option("--run", "run", default=None, help="Run directory [default: runs/DATASET].")
@click.option(
    "--noise", type=float, default=None, help="Observation noise added to simulated data."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--steps",
    type=click.IntRange(min=0),
    default=None,
    help="Adam steps [default: 2000, the paper's].",
)
@DEVICE
def pretrain_cmd(dataset, run, noise, seed, steps, device):
    """Train the baseline MLP (HNN "vanilla MLP") and save it as RUN/model.pt."""
    data = _load_data(dataset, noise, seed)
    out = _run_dir(run, dataset)
    secs = _pretrain(dataset, data, out, steps=steps, device=device, noise=noise, seed=seed)
    click.echo(f"wrote {out / 'model.pt'} ({secs:.1f} s)")


@click.command("rank")
@click.option("--dataset", required=True, help="Built-in dataset name.")
@click.option(
    "--survivors",
    required=True,
    type=click.Path(dir_okay=False),
    help="Fitter output table (.csv/.parquet).",
)
@click.option("--run", "run", default=None, help="Run directory [default: runs/DATASET].")
@click.option("--noise", type=float, default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=None,
    help="Survivors meta-tailored after the screen [20].",
)
@click.option(
    "--epochs", type=click.IntRange(min=0), default=None, help="Meta-tailoring epochs [100]."
)
@click.option(
    "--pretrain-steps",
    type=click.IntRange(min=0),
    default=None,
    help="Steps if the MLP must be trained [2000].",
)
@click.option(
    "--comparators/--no-comparators",
    default=True,
    show_default=True,
    help="Also train and evaluate the comparators.",
)
@DEVICE
def rank_cmd(
    dataset, survivors, run, noise, seed, top_k, epochs, pretrain_steps, comparators, device
):
    """Rank conserved formulas by meta-tailoring the pretrained MLP; write RUN/ranking.csv and more."""
    from formula_search.io import read_table, write_table
    from meta_tailor import comparators as run_comparators
    from meta_tailor import load_mlp, paper_configs, rank, resolve_device

    try:
        device = resolve_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    table = read_table(survivors)
    data = _load_data(dataset, noise, seed)
    out = _run_dir(run, dataset)
    timings = {}
    if not (out / "model.pt").exists():
        timings["pretrain_s"] = _pretrain(
            dataset, data, out, steps=pretrain_steps, device=device, noise=noise, seed=seed
        )
    model, mlp_cfg, _ = load_mlp(out / "model.pt")
    _, cfg = paper_configs(dataset)
    cfg = replace(cfg, device=device)
    if top_k is not None:
        cfg = replace(cfg, top_k=top_k)
    if epochs is not None:
        cfg = replace(cfg, tailor=replace(cfg.tailor, epochs=epochs))

    stamps = {"start": time.perf_counter()}
    with _progress() as bar:
        tasks = {}

        def progress(stage, done, total):
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)
            stamps[stage] = time.perf_counter()

        res = rank(table, model, data, config=cfg, progress=progress)
        timings["screen_s"] = stamps.get("screen", stamps["start"]) - stamps["start"]
        timings["meta_tailor_s"] = time.perf_counter() - stamps.get("screen", stamps["start"])
        write_table(res.table, out / "ranking.csv")
        write_table(res.screen, out / "screen.csv")
        winner = res.table.iloc[0].to_dict() if res.winner_model is not None else None
        if res.winner_model is not None:
            import torch

            from formula_search.io import atomic_path

            with atomic_path(out / "winner.pt") as tmp:
                torch.save(
                    {"state_dict": res.winner_model.state_dict(), "theta": res.winner_theta}, tmp
                )
        if comparators:
            t0 = time.perf_counter()
            comp = run_comparators(
                model,
                data,
                mlp_config=mlp_cfg,
                rank_config=cfg,
                winner=winner,
                winner_model=res.winner_model,
                oracle=data.hamiltonian,
                progress=progress,
            )
            timings["comparators_s"] = time.perf_counter() - t0
            write_table(comp.table, out / "comparators.csv")
            write_table(comp.horizons, out / "horizons.csv")
    meta = {
        "dataset": dataset,
        "noise": noise,
        "seed": seed,
        "variables": [{"name": v.name, "unit": v.unit} for v in data.variables],
        "time_step": float(data.time_step),
        "hamiltonian": data.hamiltonian,
        "survivors": str(survivors),
        "device": device,
        "rank_config": asdict(cfg),
        "mlp_config": asdict(mlp_cfg),
        "timings": timings,
        "winner": {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in (winner or {}).items()
        },
    }
    _write_json(meta, out / "meta.json")
    if winner:
        click.echo(
            f"winner: {winner['formula']} params={winner['params']} test RMSE {winner['test_rmse']:.4g}"
        )
    click.echo(
        f"wrote {out}/ranking.csv, screen.csv{', comparators.csv, horizons.csv' if comparators else ''}, meta.json"
    )


def _law_rows(run: Path, meta: dict, top: int):
    import dsl
    from formula_search.io import read_table
    from meta_tailor._rank import parse_params

    table = read_table(run / "ranking.csv")
    table = table[table["rank"].notna()].sort_values("rank").head(top)
    variables = tuple(dsl.Variable(v["name"], v["unit"]) for v in meta["variables"])
    names = [v.name for v in variables]
    rows = []
    for _, r in table.iterrows():
        expr = dsl.parse(r["formula"], names)
        params = parse_params(r["params"])
        try:
            units = [u.to_units() for u in dsl.param_units(expr, variables)]
        except Exception:  # a formula without a consistent unit assignment still exports
            units = [""] * len(params)
        rows.append(
            {
                "rank": int(r["rank"]),
                "formula": r["formula"],
                "expr": expr,
                "params": params,
                "units": units,
                "test_rmse": float(r["test_rmse"]),
                "train_rollout_mse": float(r["train_rollout_mse"]),
                "inner_lr": float(r["inner_lr"]),
                "inner_steps": int(r["inner_steps"]),
            }
        )
    return rows


METHOD_NAMES = {
    "vanilla_mlp": "Vanilla MLP",
    "mlp_more_epochs": "MLP (more epochs)",
    "noether": "Noether Nets",
    "oracle": r"True $\mathcal{H}$ [oracle]",
    "hnn": "HNN",
}


@click.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["latex", "sympy", "json", "markdown"]),
    default="markdown",
    show_default=True,
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many ranked laws to export.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write here instead of stdout.",
)
def export_cmd(run, fmt, top, output):
    """Export the discovered laws (with fitted constants and their units) and the results table."""
    import dsl
    from formula_search.io import atomic_path, read_table

    run = Path(run)
    meta = _read_meta(run)
    laws = _law_rows(run, meta, top)
    comp = read_table(run / "comparators.csv") if (run / "comparators.csv").exists() else None
    if fmt == "latex":
        lines = []
        for r in laws:
            lines.append(f"% rank {r['rank']}: {r['formula']}")
            lines.append(f"$${dsl.to_latex(r['expr'], r['params'])}$$")
            for k, (v, u) in enumerate(zip(r["params"], r["units"])):
                lines.append(f"% c_{k} = {v:.6g} [{u or 'dimensionless'}]")
        if comp is not None:
            lines += [
                r"\begin{tabular}{llr}",
                r"\toprule",
                r"Method & Description & RMSE \\",
                r"\midrule",
            ]
            for _, c in comp.iterrows():
                desc = "N/A"
                if c["method"] in ("noether", "oracle") and laws:
                    expr = dsl.parse(c["description"], [v["name"] for v in meta["variables"]])
                    desc = (
                        "$"
                        + dsl.to_latex(
                            expr, laws[0]["params"] if c["method"] == "noether" else None
                        )
                        + "$"
                    )
                elif c["method"] != "vanilla_mlp":
                    desc = str(c["description"])
                lines.append(
                    f"{METHOD_NAMES.get(c['method'], c['method'])} & {desc} & {c['test_rmse']:.4f} \\\\"
                )
            lines += [r"\bottomrule", r"\end{tabular}"]
        text = "\n".join(lines) + "\n"
    elif fmt == "sympy":
        text = "".join(f"{dsl.to_sympy(r['expr'], r['params'])}\n" for r in laws)
    elif fmt == "json":
        payload = {
            "dataset": meta["dataset"],
            "laws": [
                {k: v for k, v in r.items() if k != "expr"}
                | {
                    "text": dsl.to_text(r["expr"], r["params"]),
                    "latex": dsl.to_latex(r["expr"], r["params"]),
                }
                for r in laws
            ],
            "comparators": comp.to_dict(orient="records") if comp is not None else [],
        }
        text = json.dumps(payload, indent=2) + "\n"
    else:
        lines = [
            f"# Discovered conservation laws: {meta['dataset']}",
            "",
            "| rank | law | parameters | test RMSE |",
            "|---|---|---|---|",
        ]
        for r in laws:
            ps = ", ".join(
                f"c_{k} = {v:.4g} {u}".strip()
                for k, (v, u) in enumerate(zip(r["params"], r["units"]))
            )
            lines.append(
                f"| {r['rank']} | `{dsl.to_text(r['expr'], r['params'], digits=4)}` | {ps} | {r['test_rmse']:.4g} |"
            )
        if comp is not None:
            lines += ["", "| method | description | test RMSE |", "|---|---|---|"]
            lines += [
                f"| {METHOD_NAMES.get(c['method'], c['method'])} | {c['description']} | {c['test_rmse']:.4g} |"
                for _, c in comp.iterrows()
            ]
        text = "\n".join(lines) + "\n"
    if output:
        with atomic_path(output) as tmp:
            tmp.write_text(text)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@click.command("plot")
@click.argument("run", type=click.Path(file_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the PNGs [default: RUN].",
)
def plot_cmd(run, output):
    """Plot error against horizon per method and the discovered law along the test trajectories (PNG)."""
    from meta_tailor._plots import plot_horizons, plot_law

    run = Path(run)
    meta = _read_meta(run)
    out = Path(output) if output else run
    written = []
    if (run / "horizons.csv").exists():
        written.append(
            plot_horizons(run / "horizons.csv", out / "horizon_error.png", title=meta["dataset"])
        )
    laws = _law_rows(run, meta, 1)
    if laws:
        written.append(plot_law(meta, laws[0], out / "law_along_test.png"))
    if not written:
        raise InputError(f"{run}: nothing to plot (no horizons.csv and no ranked law)")
    click.echo("wrote " + ", ".join(str(p) for p in written))
