"""``fsearch export`` and ``fsearch plot``: what a run directory (``fsearch rank`` / ``run``) holds, as text
and pictures: the discovered laws with their constants and units, the comparators' table, and the plots."""

from __future__ import annotations

import json
from pathlib import Path

import click

from formula_search.errors import InputError
from formula_search.runs import check_run, describe_protocol, read_meta


def law_rows(run: Path, meta: dict, top: int):
    import dsl
    from formula_search.io import parse_params, read_table

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


def method_description(text) -> str:
    """A comparator's description as shown; the vanilla MLP has none (an empty CSV cell reads back as NaN)."""
    return "N/A" if not isinstance(text, str) or not text else text


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
    from formula_search.io import atomic_path, read_table

    run = Path(run)
    meta = read_meta(run)
    check_run(run, meta)
    laws = law_rows(run, meta, top)
    comp = read_table(run / "comparators.csv") if (run / "comparators.csv").exists() else None
    if fmt == "latex":
        text = _latex(laws, comp, meta)
    elif fmt == "sympy":
        text = _sympy(laws)
    elif fmt == "json":
        text = _json(laws, comp, meta)
    else:
        text = _markdown(laws, comp, meta)
    if output:
        with atomic_path(output) as tmp:
            tmp.write_text(text)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


def _latex(laws: list[dict], comp, meta: dict) -> str:
    """``--format latex``: each law as a display equation with its constants, then the results table."""
    import dsl

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
            desc = method_description(c["description"])
            if c["method"] in ("noether", "oracle") and laws:
                expr = dsl.parse(c["description"], [v["name"] for v in meta["variables"]])
                desc = (
                    "$"
                    + dsl.to_latex(expr, laws[0]["params"] if c["method"] == "noether" else None)
                    + "$"
                )
            lines.append(
                f"{METHOD_NAMES.get(c['method'], c['method'])} & {desc} & {c['test_rmse']:.4f} \\\\"
            )
        lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _sympy(laws: list[dict]) -> str:
    """``--format sympy``: one law per line as SymPy prints it."""
    import dsl

    return "".join(f"{dsl.to_sympy(r['expr'], r['params'])}\n" for r in laws)


def _json(laws: list[dict], comp, meta: dict) -> str:
    """``--format json``: the dataset, the laws (with text and LaTeX forms) and the comparators' rows."""
    import dsl

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
    return json.dumps(payload, indent=2) + "\n"


def _markdown(laws: list[dict], comp, meta: dict) -> str:
    """``--format markdown``: a table of the laws for people, then the comparators' table."""
    import dsl

    lines = [
        f"# Discovered conservation laws: {meta['dataset']}",
        "",
        "| rank | law | parameters | test RMSE |",
        "|---|---|---|---|",
    ]
    for r in laws:
        ps = ", ".join(
            f"c_{k} = {v:.4g} {dsl.pretty_units(u)}".strip()
            for k, (v, u) in enumerate(zip(r["params"], r["units"]))
        )
        lines.append(
            f"| {r['rank']} | `{dsl.to_display(r['expr'], r['params'])}` | {ps} | {r['test_rmse']:.4g} |"
        )
    protocol = describe_protocol(meta)
    if protocol:
        lines += ["", protocol[0].upper() + protocol[1:] + "."]
    if comp is not None:
        lines += ["", "| method | description | test RMSE |", "|---|---|---|"]
        lines += [
            f"| {METHOD_NAMES.get(c['method'], c['method'])} | {method_description(c['description'])} | "
            f"{c['test_rmse']:.4g} |"
            for _, c in comp.iterrows()
        ]
    return "\n".join(lines) + "\n"


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
    """Plot error against horizon per method, the discovered law along the test trajectories, the
    finalists' training rollouts during meta-tailoring, (after --law-choice cv) every fold's held-out
    error per law, and the MLP's pretraining loss (PNG)."""
    import dsl
    from formula_search.io import read_table
    from meta_tailor.plots import (
        plot_cv,
        plot_horizons,
        plot_law,
        plot_meta_curves,
        plot_pretrain_curve,
    )

    run = Path(run)
    meta = read_meta(run)
    check_run(run, meta)
    out = Path(output) if output else run
    written = []
    laws = law_rows(run, meta, 1)
    if (run / "horizons.csv").exists():
        labels = dict(METHOD_NAMES)
        if laws:
            labels["noether"] += f": {dsl.to_display(laws[0]['expr'], laws[0]['params'])}"
        written.append(
            plot_horizons(
                run / "horizons.csv",
                out / "horizon_error.png",
                title=meta["dataset"],
                labels=labels,
            )
        )
    if laws:
        written.append(plot_law(meta, laws[0], out / "law_along_test.png"))
    curves = run / "meta_curves.csv"
    if curves.exists() and (table := read_table(curves))["score"].notna().any():
        written.append(plot_meta_curves(table, out / "meta_curves.png", title=meta["dataset"]))
    if (run / "cv.csv").exists():
        written.append(
            plot_cv(run / "cv.csv", out / "cv.png", title=f"{meta['dataset']}: choice of the law")
        )
    if (run / "pretrain_curve.csv").exists():
        keep = meta.get("mlp_config", {}).get("keep", "last")
        written.append(
            plot_pretrain_curve(
                run / "pretrain_curve.csv",
                out / "pretrain_curve.png",
                keep=keep,
                title=f"{meta['dataset']}: pretraining of the MLP",
            )
        )
    if not written:
        raise InputError(f"{run}: nothing to plot (no horizons.csv and no ranked law)")
    click.echo("wrote " + ", ".join(str(p) for p in written))
