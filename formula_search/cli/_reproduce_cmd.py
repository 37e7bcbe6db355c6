"""``fsearch reproduce``: the paper's three scientific experiments, one run directory each (and one more per
dataset with an opt-in setting of ours), and ``OUT/report.md`` beside the paper's numbers."""

from __future__ import annotations

import time
from pathlib import Path

import click

from formula_search.cli._common import dedup_option
from formula_search.cli._run_summary import finish
from formula_search.cli._stage_options import DEVICE, INNER_RULE, PRETRAIN_KEEP, TAILOR
from formula_search.cli.export_cmd import METHOD_NAMES, law_rows
from formula_search.errors import InputError
from formula_search.runs import execute, write_json


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

    from formula_search.io import atomic_path

    experiments = _experiments(_dataset_names(datasets), opt_in)
    console = Console()
    common = dict(
        survivors=None,
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
        inner_rule=inner_rule,
        measure="paper",
    )
    rows: list[str] = []
    claims: list[str] = []
    for name, label, settings in experiments:
        console.rule(label)
        run_dir, meta = _run_experiment(name, Path(out) / label, common | settings)
        checks = finish(run_dir, meta, console)
        claims += [
            f"| {label} | {c.claim} | {c.ours} | {'yes' if c.holds else '**no**'} |"
            for c in checks or ()
        ]
        rows += _result_rows(name, label, run_dir, meta)
    lines = _report_head(dedup, pretrain_keep) + rows + _opt_in_notes(experiments)
    lines += _claims_section(claims)
    report = Path(out) / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    console.print(f"wrote {report}")


def _dataset_names(datasets: str) -> list[str]:
    """The ``--datasets`` list; every one must be a built-in dataset."""
    from formula_search.data import list_datasets

    names = [d.strip() for d in datasets.split(",") if d.strip()]
    known = set(list_datasets()["name"])
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown dataset(s) {', '.join(unknown)}; see `fsearch datasets list`")
    return names


def _experiments(names: list[str], opt_in: bool) -> list[tuple[str, str, dict]]:
    """(dataset, row label and run directory, settings over the command's) of every run: each dataset,
    then with ``opt_in`` each one that has an opt-in setting of ours with it."""
    from formula_search.paper import OPT_IN

    experiments = [(name, name, {}) for name in names]
    if opt_in:
        experiments += [(n, f"{n}-opt-in", OPT_IN[n]) for n in names if n in OPT_IN]
    return experiments


def _run_experiment(name: str, run_dir: Path, settings: dict) -> tuple[Path, dict]:
    """One run of a built-in dataset (seed 0, no added noise) with the comparators, its ``meta.json``
    with the total time."""
    options = {"dataset": name, "seed": 0, "noise": None}
    t0 = time.perf_counter()
    run_dir, meta = execute(options, run=str(run_dir), **settings)
    meta["timings"]["total_s"] = time.perf_counter() - t0
    write_json(meta, run_dir / "meta.json")
    return run_dir, meta


def _report_head(dedup: str, pretrain_keep: str) -> list[str]:
    return [
        "# Reproduction of the Noether Networks scientific experiments",
        "",
        f"Search: depth 7, dedup `{dedup}`; ranking: the paper's protocol (see docs/meta-tailoring.md); "
        f"trained models keep their {'last-step' if pretrain_keep == 'last' else 'lowest-loss'} weights "
        f"(`--pretrain-keep {pretrain_keep}`).",
        "",
        "| dataset | discovered law | constant (ours / paper) | method | test RMSE (ours) | paper |",
        "|---|---|---|---|---|---|",
    ]


def _result_rows(name: str, label: str, run_dir: Path, meta: dict) -> list[str]:
    """The report's rows of one run: its law and constant, then every method's test RMSE beside the
    paper's."""
    import dsl
    from formula_search.io import read_table
    from formula_search.paper import PAPER, law_constant

    laws = law_rows(run_dir, meta, 1)
    paper = PAPER.get(name, {})
    law = laws[0] if laws else None
    law_text = dsl.to_display(law["expr"], law["params"]) if law else "none"
    names = [v["name"] for v in meta["variables"]]
    # the same reading of the constant as the law's claim: a law of another form has none
    k = law_constant(name, law["expr"], law["params"], names) if law and paper else None
    const = f"{k:.4g} / {paper['constant']:.4g}" if k is not None else "n/a"
    rows = []
    for i, (_, c) in enumerate(read_table(run_dir / "comparators.csv").iterrows()):
        ref = paper.get("rmse", {}).get(c["method"])
        rows.append(
            f"| {label if i == 0 else ''} | {('`' + law_text + '`') if i == 0 else ''} | "
            f"{const if i == 0 else ''} | {METHOD_NAMES.get(c['method'], c['method'])} | "
            f"{c['test_rmse']:.4g} | {'' if ref is None else ref} |"
        )
    return rows


def _opt_in_notes(experiments: list) -> list[str]:
    """A note under the table for each opt-in row: the setting it ran with."""
    from formula_search.paper import opt_in_args

    lines = []
    for name, label, _ in experiments:
        if label != name:
            lines += [
                "",
                f"`{label}`: {name} with `{opt_in_args(name)}` (ours, not the paper's; "
                "docs/meta-tailoring.md).",
            ]
    return lines


def _claims_section(claims: list[str]) -> list[str]:
    """The report's section of the paper's claims checked on the runs (none when no run had any)."""
    if not claims:
        return []
    return [
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
