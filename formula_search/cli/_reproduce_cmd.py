"""``fsearch reproduce``: the paper's three scientific experiments with the paper's protocol, one run directory
each (and one more each as ``fsearch run`` does by default), and ``OUT/report.md`` beside the paper's numbers."""

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
    "--ours/--no-ours",
    default=True,
    show_default=True,
    help="Also run each dataset as `fsearch run` does by default (the card's measure, the meta-tailoring "
    "protocol chosen on the training data), as a second row (about 8 min more on a CPU).",
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
    ours,
    device,
):
    """Reproduce the paper's three scientific experiments and write OUT/report.md beside the paper's numbers."""
    from rich.console import Console

    from formula_search.io import atomic_path

    experiments = _experiments(_dataset_names(datasets), ours)
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
        inner_rule=inner_rule,
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
    lines = _report_head(dedup, pretrain_keep) + rows + _ours_notes(experiments)
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


#: The paper's rows: its measure and its protocol (fixed-rate inner step, outer rate 1e-3), unless the
#: command's --inner-rule names another rule.
PAPER_ROW = {"measure": "paper", "protocol": "paper"}
#: Our rows: what `fsearch run` does without options (the card's measure, the protocol chosen by CV).
OURS_ROW = {"measure": None, "protocol": "auto"}


def _experiments(names: list[str], ours: bool) -> list[tuple[str, str, dict]]:
    """(dataset, row label and run directory, settings over the command's) of every run: each dataset
    with the paper's protocol, then with ``ours`` each one as ``fsearch run`` runs it by default."""
    experiments = [(name, name, PAPER_ROW) for name in names]
    if ours:
        experiments += [(n, f"{n}-ours", OURS_ROW) for n in names]
    return experiments


def _run_experiment(name: str, run_dir: Path, settings: dict) -> tuple[Path, dict]:
    """One run of a built-in dataset (seed 0, no added noise) with the comparators, its ``meta.json``
    with the total time."""
    options = {"dataset": name, "seed": 0, "noise": None}
    t0 = time.perf_counter()
    if settings.get("inner_rule") is not None:  # --inner-rule fixes the protocol of both rows
        settings = {**settings, "protocol": "auto"}
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


def _ours_notes(experiments: list) -> list[str]:
    """A note under the table when it has our rows: what they ran with."""
    if not any(label != name for name, label, _ in experiments):
        return []
    return [
        "",
        "`NAME-ours`: NAME as `fsearch run --dataset NAME` runs it (the card's conservation measure; the "
        "meta-tailoring protocol chosen by cross-validation over the training trajectories unless "
        "--inner-rule fixed it, see each run's report.md).",
    ]


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
