"""Where does the true law rank among all candidates when the data are noisy?

    python benchmarks/fit_noise.py                         # ideal pendulum, noise 0 and 0.1, smooth 1 and 9
    python benchmarks/fit_noise.py --dataset ideal_spring --noise 0.1 --smooth 1

For every setting it fits every depth-7 candidate (conservation dedup level by default), finds the row that
conserves the same quantity as the reference law (same conservation class, whatever form the enumeration
kept), and prints its fitted constant, its ratio, its rank by ratio among all candidates, the number of
survivors at the default threshold, and the largest threshold that would keep it.
"""

from __future__ import annotations

import time

import click

LAWS = {"ideal_pendulum": "p^2 - c*cos(q)", "ideal_spring": "q^2 + c*p^2"}


@click.command()
@click.option(
    "--dataset", default="ideal_pendulum", show_default=True, type=click.Choice(sorted(LAWS))
)
@click.option("--noise", "noises", multiple=True, type=float, default=(0.0, 0.1), show_default=True)
@click.option("--smooth", "smooths", multiple=True, type=int, default=(1, 9), show_default=True)
@click.option("--dedup", default="conservation", show_default=True)
@click.option("--depth", type=int, default=7, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def main(dataset, noises, smooths, dedup, depth, device):
    import torch
    from rich.console import Console
    from rich.table import Table

    import dsl
    from formula_search.advanced import FitConfig, enumeration_table, fit_formulas
    from formula_search.data import load_dataset

    torch.set_num_threads(1)
    table = Table(title=f"true law among all depth-{depth} candidates ({dataset}, dedup {dedup})")
    for col in (
        "noise",
        "smooth",
        "kept form",
        "params",
        "ratio",
        "rank",
        "of",
        "survivors",
        "seconds",
    ):
        table.add_column(col, justify="left" if col == "kept form" else "right")
    for noise in noises:
        data = load_dataset(dataset, noise=noise or None)
        names = list(data.var_names)
        forms = dsl.CanonicalForms()
        target = forms.conservation_key(forms.of(dsl.parse(LAWS[dataset], names)))
        cands = enumeration_table(data.variables, max_size=depth, dedup=dedup)
        for smooth in smooths:
            t0 = time.perf_counter()
            out = fit_formulas(cands, data, config=FitConfig(device=device, smooth=smooth))
            secs = time.perf_counter() - t0
            keys = [forms.conservation_key(forms.of(dsl.parse(f, names))) for f in out["formula"]]
            hits = [i for i, k in enumerate(keys) if k == target]
            ok = out[out["status"] == "ok"].sort_values("ratio", kind="stable")
            if not hits:
                table.add_row(f"{noise:g}", str(smooth), "(not enumerated)", "", "", "", "", "", "")
                continue
            best = min(hits, key=lambda i: out["ratio"].iloc[i])
            row = out.iloc[best]
            rank = int((ok["ratio"] < row["ratio"]).sum()) + 1
            table.add_row(
                f"{noise:g}",
                str(smooth),
                row["formula"],
                str(row["params"]),
                f"{row['ratio']:.3g}",
                str(rank),
                str(len(ok)),
                str(int(out["accepted"].sum())),
                f"{secs:.1f}",
            )
    console = Console(width=160)
    console.print(table)
    console.print(
        "rank: position of the true law by ratio among the candidates with status ok (1 = best); "
        "a threshold of at least its ratio keeps it."
    )


if __name__ == "__main__":
    main()
