"""``fsearch datasets``: list, show and plot datasets."""

from __future__ import annotations

import click


@click.group("datasets")
def datasets_group() -> None:
    """List, show and plot the built-in datasets (or your own file)."""


@datasets_group.command("list")
def list_cmd() -> None:
    """Table of the built-in datasets."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from formula_search.data import list_datasets

    df = list_datasets()
    table = Table(title="built-in datasets")
    for col in ("name", "kind", "variables", "traj", "points", "split"):
        justify = "right" if col in ("traj", "points") else "left"
        # names, sizes and splits whole; the variables fold over lines in a narrow terminal
        wrap = col == "variables"
        table.add_column(col, justify=justify, no_wrap=not wrap, min_width=7 if wrap else None)
    for row in df.itertuples(index=False):
        table.add_row(
            row.name,
            row.kind,
            escape(_names(row.variables)),
            str(row.trajectories),
            row.points,
            row.split,
        )
    Console().print(table)
    click.echo(
        "traj = trajectories, split = train/test trajectories; `fsearch datasets show NAME` for units."
    )


def _names(variables: str) -> str:
    """``"q [rad], p [rad/s]"`` -> ``"q, p"`` (the list's short form)."""
    return ", ".join(v.split(" [")[0] for v in variables.split("], "))


def _load(name: str, kwargs: dict):
    from formula_search.data import dataset_from_options

    return dataset_from_options(dataset=name, **kwargs)


def _user_options(func):
    from formula_search.cli._data_options import user_file_options

    return user_file_options(func)


@datasets_group.command("show")
@click.argument("name")
@_user_options
def show_cmd(name: str, **kwargs) -> None:
    """Variables, units, sizes, split and source of dataset NAME (a built-in name, a card or your file)."""
    ds = _load(name, kwargs)
    s = ds.summary()
    lines = [
        f"{ds.name} ({ds.kind})",
        f"  {ds.description}" if ds.description else None,
        "variables:",
        *[f"  {v.name:<8} {v.unit}" for v in ds.variables],
        f"trajectories: {s['train_trajectories']} train, {s['test_trajectories']} test "
        f"({s['points_per_trajectory']} points each)",
        f"points: {s['train_points']} train, {s['test_points']} test"
        + (f" (from {ds.n_rows} rows)" if ds.n_rows is not None else ""),
        f"time step: {ds.time_step:.6g} (typical)",
        f"dx/dt: {ds.derivative}",
        f"noise: {ds.noise:g}  seed: {ds.seed}",
        f"conservation window: {ds.default_window} points" if ds.default_window else None,
        f"hamiltonian: {s['hamiltonian']}" if s["hamiltonian"] else "hamiltonian: unknown",
        f"source: {ds.source}" if ds.source else None,
        f"cite: {ds.citation}" if ds.citation else None,
        f"license: {ds.license}" if ds.license else None,
    ]
    click.echo("\n".join(line for line in lines if line is not None))


@datasets_group.command("plot")
@click.argument("name")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="Image file (.png, .pdf, .svg)."
)
@_user_options
def plot_cmd(name: str, out: str, **kwargs) -> None:
    """Phase portrait of dataset NAME, and its energy over time if a reference Hamiltonian is known."""
    from formula_search.data import plot_dataset

    ds = _load(name, kwargs)
    path = plot_dataset(ds, out)
    click.echo(f"wrote {path}")
