"""``fsearch pretrain``, ``rank``, ``run`` and ``reproduce`` (``export`` and ``plot``: :mod:`.export_cmd`).

A run directory (``RUN``, default ``runs/DATASET``) holds:

- ``model.pt``: the pretrained vanilla MLP (``fsearch pretrain``; loaded with ``weights_only=True``);
- ``pretrain_curve.csv``: its training loss after each number of Adam steps (0 to 2000);
- ``ranking.csv``: the ranking table (:data:`meta_tailor.RANK_COLUMNS`), one row per accepted survivor;
- ``screen.csv``: every screened (formula, inner_lr, inner_steps) and its screen loss;
- ``meta_curves.csv``: the long stage epoch by epoch, per finalist and outer rate: outer loss and the
  training rollout MSE the returned epoch is chosen by (:data:`meta_tailor.CURVE_COLUMNS`);
- ``comparators.csv``: vanilla MLP, MLP with more epochs, Noether winner, oracle, HNN
  (:data:`meta_tailor.COMPARATOR_COLUMNS`);
- ``horizons.csv``: test error per prediction horizon and method;
- ``law_ranking.csv``: with ``--law-choice paper`` (and another inner rule or outer rate), the ranking that
  chose the law, with the paper's inner rule and outer rate;
- ``cv.csv``: with ``--law-choice cv``, every fold's held-out rollout MSE per finalist
  (:data:`meta_tailor.CV_COLUMNS`); the ranking's ``cv_mse`` is its mean over the folds;
- ``winner.pt``: the meta-tailored winner's MLP weights and formula parameters;
- ``meta.json``: dataset, variables and units, settings, device, timings, the winner, and a run id.

The stages themselves live in :mod:`formula_search.runs` (:func:`formula_search.discover`), which writes
the folder as a whole or not at all.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from formula_search.cli._common import MEASURE, OPERATORS, SMOOTHING, dedup_option, parse_operators
from formula_search.cli.export_cmd import (
    METHOD_NAMES,
    export_cmd,
    law_rows,
    method_description,
    plot_cmd,
)
from formula_search.errors import InputError
from formula_search.runs import (  # noqa: F401  (cv_summary, model_fingerprint, search_stage: tests)
    cv_summary,
    ensure_writable,
    load_data,
    model_fingerprint,
    most_conserved,
    pretrain_stage,
    resolve_device_name,
    run_claims,
    run_folder,
    search_stage,
    write_json,
)
from formula_search.runs import execute as _execute

DEVICE = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to compute.",
)


TAILOR = click.option(
    "--tailor",
    "tailor",
    type=click.Choice(["state", "trajectory"]),
    default=None,
    help="Tailoring per trajectory (Algorithm 1, the default) or per query state.",
)


INNER_RULE = click.option(
    "--inner-rule",
    type=click.Choice(["sgd", "polyak"]),
    default="sgd",
    show_default=True,
    help="Inner step: the paper's fixed rate (sgd), or a Polyak rate per sequence (the rate is the "
    "fraction of the sequence's Noether loss one step removes; screens 0.1 to 1).",
)


MODEL_SEED = click.option(
    "--model-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the MLP's and the HNN's initialisation (0 is the reference set-up's). A run "
    "directory keeps one pretrained MLP: another seed retrains it.",
)


PRETRAIN_KEEP = click.option(
    "--pretrain-keep",
    type=click.Choice(["last", "best"]),
    default="last",
    show_default=True,
    help="Weights the MLP (and the HNN and the MLP with more epochs) keep: those after the last Adam "
    "step (the reference set-up's), or those with the lowest training loss of all steps (full-batch "
    "Adam keeps spiking, and the last step may land on a spike).",
)


def _stage_options(f):
    """Options shared by ``fsearch rank`` and ``fsearch run``."""
    decorators = [
        _dataset_options,
        click.option(
            "--survivors",
            type=click.Path(dir_okay=False),
            default=None,
            help="Fitter output (.csv/.parquet) to rank [default: run the search, or reuse a cached one].",
        ),
        click.option(
            "--depth",
            type=click.IntRange(min=1),
            default=7,
            show_default=True,
            help="Largest formula size in tokens (tree nodes) for the search.",
        ),
        dedup_option(),
        OPERATORS,
        click.option(
            "--ratio", type=float, default=0.01, show_default=True, help="Fit filter threshold."
        ),
        MEASURE,
        SMOOTHING,
        click.option(
            "--jobs",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Processes for the fit, and for the folds of --law-choice cv.",
        ),
        click.option("--run", "run", default=None, help="Run directory [default: runs/DATASET]."),
        click.option(
            "--top-k",
            type=click.IntRange(min=1),
            default=None,
            help="Survivors meta-tailored after the screen [20].",
        ),
        click.option(
            "--epochs",
            type=click.IntRange(min=0),
            default=None,
            help="Meta-tailoring epochs [100].",
        ),
        click.option(
            "--pretrain-steps",
            type=click.IntRange(min=0),
            default=None,
            help="Steps if the MLP must be trained [2000].",
        ),
        TAILOR,
        INNER_RULE,
        click.option(
            "--outer-lr",
            type=click.FloatRange(min=0, min_open=True),
            multiple=True,
            help="Adam rate of the MLP weights in meta-tailoring [1e-3]. Repeat it to screen several: "
            "each finalist keeps the rate with the lowest training rollout MSE (the time grows with "
            "their number).",
        ),
        click.option(
            "--inner-integrator",
            type=click.Choice(["euler", "rk4"]),
            default=None,
            help="Trajectory mode's inner rollout: the paper's finite difference x + f(x) dt (euler) "
            "or one RK4 step per dt, the integrator of the evaluation [rk4].",
        ),
        click.option(
            "--outer-warmup",
            type=click.IntRange(min=0),
            default=None,
            help="Meta-tailoring steps over which the outer Adam rates rise linearly to their values "
            "(a fresh Adam moves every weight by about the full rate at its first step; 0: none) [10].",
        ),
        click.option(
            "--outer-decay",
            type=click.Choice(["none", "cosine"]),
            default=None,
            help="Outer Adam rates after the warm-up: constant, or falling as a half cosine towards zero "
            "at the last epoch, so that the long stage settles [none].",
        ),
        click.option(
            "--outer-adam",
            type=click.Choice(["fresh", "continue"]),
            default="fresh",
            show_default=True,
            help="The outer Adam of the MLP weights: a fresh optimiser, or the MLP's pretraining Adam "
            "continued (its moment estimates scale each weight's first outer steps; the MLP with more "
            "epochs and the oracle continue it too).",
        ),
        click.option(
            "--law-from",
            type=click.Path(file_okay=False),
            default=None,
            help="Meta-tailor only the law an earlier run on the same data chose (its run directory), "
            "starting from the fit's constants: the law found with one setting, the predictor built "
            "with another (e.g. a first run with the paper's settings, then --inner-rule polyak).",
        ),
        click.option(
            "--law-choice",
            type=click.Choice(["train", "cv", "paper"]),
            default="train",
            show_default=True,
            help="Choose the winner by the meta-tailored models' rollouts of the training trajectories "
            "(train, the paper's), or by cross-validation over them (cv: the MLP's pretraining and the "
            "ranking again without each fold, scored by rollouts of the held-out trajectories; costs "
            "--cv-folds more rankings, run in --jobs processes), or as train but with the paper's inner "
            "rule and outer rate (paper: the law of a ranking with --inner-rule sgd and --outer-lr 1e-3, "
            "then meta-tailored alone with this run's settings; written to law_ranking.csv).",
        ),
        click.option(
            "--cv-folds",
            type=click.IntRange(min=2),
            default=None,
            help="Folds of --law-choice cv; trajectory j goes to fold j mod K [4, or the number of "
            "training trajectories if fewer].",
        ),
        MODEL_SEED,
        PRETRAIN_KEEP,
        DEVICE,
    ]
    for d in reversed(decorators):
        f = d(f)
    return f


def _dataset_options(f):
    from formula_search.cli._data_options import dataset_options

    return dataset_options(f)


@click.command("pretrain")
@_dataset_options
@click.option("--run", "run", default=None, help="Run directory [default: runs/DATASET].")
@click.option(
    "--steps",
    type=click.IntRange(min=0),
    default=None,
    help="Adam steps [default: 2000, the paper's].",
)
@MODEL_SEED
@PRETRAIN_KEEP
@DEVICE
def pretrain_cmd(run, steps, model_seed, pretrain_keep, device, **kwargs):
    """Train the baseline MLP (HNN "vanilla MLP") and save it as RUN/model.pt."""
    from formula_search.data import pop_dataset_options

    options = pop_dataset_options(kwargs)
    data = load_data(options)
    out = run_folder(run, data.name)
    ensure_writable(out)  # a read-only folder fails now, not after the training
    secs, trained = pretrain_stage(
        data,
        options,
        out,
        steps=steps,
        device=resolve_device_name(device),
        model_seed=model_seed,
        keep=pretrain_keep,
    )
    if trained:
        click.echo(f"wrote {out / 'model.pt'} ({secs:.1f} s)")
    else:
        click.echo(f"{out / 'model.pt'} is already trained on these data and settings")


@click.command("rank")
@_stage_options
@click.option(
    "--comparators/--no-comparators",
    default=True,
    show_default=True,
    help="Also train and evaluate the comparators.",
)
@click.option("--hnn/--no-hnn", default=True, show_default=True, help="Include the HNN comparator.")
def rank_cmd(**kwargs):
    """Rank conserved formulas by meta-tailoring the pretrained MLP; write RUN/ranking.csv and more.

    Without --survivors it runs (or reuses, when cached) the search: enumeration up to --depth tokens and
    the fit with its variance-ratio filter.
    """
    from formula_search.data import pop_dataset_options

    options = pop_dataset_options(kwargs)
    kwargs["operators"] = parse_operators(kwargs["operators"])
    out, meta = _execute(options, **kwargs)
    winner = meta["winner"]
    if winner:
        click.echo(
            f"winner: {winner['formula']} params={winner['params']} test RMSE {winner['test_rmse']:.4g}"
        )
    click.echo(f"wrote {out}/ranking.csv, screen.csv, meta_curves.csv, meta.json")


def _finish(out: Path, meta: dict, console) -> list | None:
    """After ranking with comparators: LaTeX and Markdown export, plots, and a summary on the terminal.
    Returns the paper's claims checked on the run (:func:`formula_search.runs.run_claims`), which the summary prints."""
    from rich.table import Table

    import dsl
    from formula_search.io import read_table

    laws = law_rows(out, meta, 1)
    for fmt, name in (("latex", "law.tex"), ("markdown", "report.md")):
        ctx = export_cmd.make_context("export", [str(out), "--format", fmt, "-o", str(out / name)])
        with ctx:
            export_cmd.invoke(ctx)
    ctx = plot_cmd.make_context("plot", [str(out)])
    with ctx:
        plot_cmd.invoke(ctx)
    table = Table(title=f"{meta['dataset']}: long-term prediction on the test trajectories")
    for col in ("method", "description", "test RMSE"):
        table.add_column(col, justify="right" if col == "test RMSE" else "left")
    comp_path = out / "comparators.csv"
    if comp_path.exists():
        for _, c in read_table(comp_path).iterrows():
            table.add_row(
                METHOD_NAMES.get(c["method"], c["method"]).replace("$\\mathcal{H}$", "H"),
                method_description(c["description"]),
                f"{c['test_rmse']:.4g}",
            )
    console.print(table)
    if laws:
        law = laws[0]
        console.print(f"discovered law: [bold]{dsl.to_display(law['expr'], law['params'])}[/bold]")
        console.print(f"LaTeX: {dsl.to_latex(law['expr'], law['params'])}")
        best = meta.get("most_conserved")
        if best and dsl.to_text(law["expr"]) != best["formula"]:
            expr = dsl.parse(best["formula"], [v["name"] for v in meta["variables"]])
            values = [
                float(v) for v in best["params"].split(";") if v.strip()
            ]  # the fit table's form
            shown = dsl.to_display(expr, values or None)
            console.print(
                f"most conserved by the fit: {shown} (ratio {best['ratio']:.2g}); the law above is the "
                "one that most improved the meta-tailored predictions"
            )
    checks = (
        run_claims(meta, laws[0] if laws else None, read_table(comp_path))
        if comp_path.exists()
        else None
    )
    if checks:
        _print_claims(checks, console)
        hint = _opt_in_hint(meta, checks)
        if hint:
            console.print(hint)
    return checks


def _opt_in_hint(meta: dict, checks: list) -> str | None:
    """After a claim fails on a dataset with an opt-in setting of ours (:data:`formula_search.paper.OPT_IN`)
    that the run did not use: a line that names it."""
    from formula_search.paper import OPT_IN, opt_in_args

    settings = OPT_IN.get(meta.get("dataset"))
    if not settings or all(c.holds for c in checks):
        return None
    used = (
        meta.get("measure", "paper") == settings["measure"]
        and meta.get("inner_rule") == settings["inner_rule"]
        and meta.get("law_choice") == settings["law_choice"]
        and meta.get("rank_config", {}).get("tailor", {}).get("outer_lr") == settings["outer_lr"][0]
    )
    if used:
        return None
    return (
        f"hint: our opt-in setting `{opt_in_args(meta['dataset'])}` (not the paper's) met every one of these "
        "claims in the MLP seeds tested (docs/meta-tailoring.md)"
    )


def _print_claims(checks: list, console) -> None:
    """One line per claim: whether it holds, what it says, and our numbers."""
    from rich.markup import escape

    console.print("the paper's claims, as the acceptance checks them (one MLP seed):")
    for c in checks:
        verdict = "[green]holds[/green]" if c.holds else "[red]does not hold[/red]"
        console.print(f"  {verdict}: {escape(c.claim)}: {escape(c.ours)}")


@click.command("run")
@_stage_options
@click.option("--hnn/--no-hnn", default=True, show_default=True, help="Include the HNN comparator.")
def run_cmd(**kwargs):
    """Run the whole pipeline end to end: search, pretrain, rank, comparators, export and plots.

    Every stage is cached by its inputs: a second run on the same data reuses the search and the
    pretrained model. The run directory gets ranking.csv, comparators.csv, law.tex, report.md and PNG plots.
    """
    from rich.console import Console

    from formula_search.data import pop_dataset_options

    options = pop_dataset_options(kwargs)
    kwargs["operators"] = parse_operators(kwargs["operators"])
    console = Console()
    t0 = time.perf_counter()
    out, meta = _execute(options, comparators=True, **kwargs)
    meta["timings"]["total_s"] = time.perf_counter() - t0
    write_json(meta, out / "meta.json")
    _finish(out, meta, console)
    console.print(f"run directory: {out} ({meta['timings']['total_s']:.0f} s)")


@click.command("reproduce")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs/reproduce",
    show_default=True,
    help="Folder for the three run directories and the report.",
)
@click.option(
    "--datasets",
    default="ideal_pendulum,ideal_spring,real_pendulum",
    show_default=True,
    help="Comma-separated built-in datasets to run.",
)
@dedup_option()
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="[20]")
@click.option("--epochs", type=click.IntRange(min=0), default=None, help="[100]")
@click.option("--pretrain-steps", type=click.IntRange(min=0), default=None, help="[2000]")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True)
@TAILOR
@INNER_RULE
@PRETRAIN_KEEP
@click.option(
    "--opt-in/--no-opt-in",
    default=True,
    show_default=True,
    help="Also run each dataset that has one with our opt-in setting that meets the paper's claims where "
    "its protocol does not (formula_search.paper.OPT_IN; the real pendulum: --measure paper --inner-rule polyak "
    "--outer-lr 3e-4 --law-choice paper), as a second row (about 5 min more on a CPU).",
)
@DEVICE
def reproduce_cmd(
    out,
    datasets,
    dedup,
    top_k,
    epochs,
    pretrain_steps,
    jobs,
    tailor,
    inner_rule,
    pretrain_keep,
    opt_in,
    device,
):
    """Reproduce the paper's three scientific experiments and write OUT/report.md beside the paper's numbers."""
    from rich.console import Console

    import dsl
    from formula_search.data import list_datasets
    from formula_search.io import atomic_path, read_table
    from formula_search.paper import OPT_IN, PAPER, law_constant, opt_in_args

    names = [d.strip() for d in datasets.split(",") if d.strip()]
    known = set(list_datasets()["name"])
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown dataset(s) {', '.join(unknown)}; see `fsearch datasets list`")
    console = Console()
    lines = [
        "# Reproduction of the Noether Networks scientific experiments",
        "",
        f"Search: depth 7, dedup `{dedup}`; ranking: the paper's protocol (see docs/meta-tailoring.md); "
        f"trained models keep their {'last-step' if pretrain_keep == 'last' else 'lowest-loss'} weights "
        f"(`--pretrain-keep {pretrain_keep}`).",
        "",
        "| dataset | discovered law | constant (ours / paper) | method | test RMSE (ours) | paper |",
        "|---|---|---|---|---|---|",
    ]
    claims: list[str] = []
    # (dataset, row label and run directory, settings over the command's)
    experiments = [(name, name, {}) for name in names]
    if opt_in:
        experiments += [(n, f"{n}-opt-in", OPT_IN[n]) for n in names if n in OPT_IN]
    for name, label, settings in experiments:
        console.rule(label)
        options = {"dataset": name, "seed": 0, "noise": None}
        t0 = time.perf_counter()
        run_dir, meta = _execute(
            options,
            survivors=None,
            run=str(Path(out) / label),
            depth=7,
            dedup=dedup,
            ratio=0.01,
            jobs=jobs,
            top_k=top_k,
            epochs=epochs,
            pretrain_steps=pretrain_steps,
            comparators=True,
            hnn=True,
            device=device,
            tailor=tailor,
            pretrain_keep=pretrain_keep,
            # the paper's tables are reproduced with the paper's measure
            **({"inner_rule": inner_rule, "measure": "paper"} | settings),
        )
        meta["timings"]["total_s"] = time.perf_counter() - t0
        write_json(meta, run_dir / "meta.json")
        checks = _finish(run_dir, meta, console)
        laws = law_rows(run_dir, meta, 1)
        paper = PAPER.get(name, {})
        law = laws[0] if laws else None
        law_text = dsl.to_display(law["expr"], law["params"]) if law else "none"
        names_ = [v["name"] for v in meta["variables"]]
        # the same reading of the constant as the law's claim: a law of another form has none
        k = law_constant(name, law["expr"], law["params"], names_) if law and paper else None
        const = f"{k:.4g} / {paper['constant']:.4g}" if k is not None else "n/a"
        comp = read_table(run_dir / "comparators.csv")
        if checks:
            claims += [
                f"| {label} | {c.claim} | {c.ours} | {'yes' if c.holds else '**no**'} |"
                for c in checks
            ]
        for i, (_, c) in enumerate(comp.iterrows()):
            ref = paper.get("rmse", {}).get(c["method"])
            lines.append(
                f"| {label if i == 0 else ''} | {('`' + law_text + '`') if i == 0 else ''} | "
                f"{const if i == 0 else ''} | {METHOD_NAMES.get(c['method'], c['method'])} | "
                f"{c['test_rmse']:.4g} | {'' if ref is None else ref} |"
            )
    for name, label, _ in experiments:
        if label != name:
            lines += [
                "",
                f"`{label}`: {name} with `{opt_in_args(name)}` (ours, not the paper's; "
                "docs/meta-tailoring.md).",
            ]
    if claims:
        lines += [
            "",
            "## The paper's claims, checked on these runs",
            "",
            "The thresholds are those of docs/meta-tailoring.md (`formula_search.paper`); one run per dataset "
            "(MLP seed 0). Over MLP seeds: `python benchmarks/model_seeds.py --dataset NAME --seeds ...`.",
            "",
            "| dataset | claim | ours | holds |",
            "|---|---|---|---|",
            *claims,
        ]
    report = Path(out) / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    console.print(f"wrote {report}")
