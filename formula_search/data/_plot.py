"""Pictures of a dataset: phase portrait, and energy over time when a reference Hamiltonian is known."""

from __future__ import annotations

import os
from pathlib import Path

from formula_search.data._dataset import Dataset
from formula_search.data._simulate import energy_function
from formula_search.errors import InputError
from formula_search.io import atomic_path

_FORMATS = (".png", ".pdf", ".svg")


def plot_dataset(ds: Dataset, out: str | os.PathLike[str], *, max_trajectories: int = 25) -> Path:
    """Draw ``ds`` and write the figure atomically to ``out`` (``.png``, ``.pdf`` or ``.svg``).

    Left: phase portrait of the first coordinate against its momentum (two-dimensional systems), or the
    coordinates' plane (``x``-``y`` positions, for systems of four or more variables), train in blue and test
    in orange. Right: the reference energy along each trajectory over time (skipped when unknown).

    Args:
        ds: the dataset.
        out: output file.
        max_trajectories: at most this many trajectories of each split are drawn.

    Returns:
        The written path.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in _FORMATS:
        raise InputError(
            f"{out}: unsupported image format {suffix or '(none)'!r}; use .png, .pdf or .svg"
        )
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    energy_text = ds.reference_hamiltonian or ds.hamiltonian
    energy = energy_function(energy_text, ds.var_names) if energy_text else None
    n = len(ds.variables)
    if n >= 4 and n % 2 == 0:
        k = n // 2
        pairs = [(i, i + k // 2) for i in range(k // 2)] if k % 2 == 0 else [(0, 1)]
        v = ds.variables
        xlabel = ", ".join(v[a].name for a, _ in pairs) + f" [{v[pairs[0][0]].unit}]"
        ylabel = ", ".join(v[b].name for _, b in pairs) + f" [{v[pairs[0][1]].unit}]"
    else:
        pairs = [(0, 1 if n > 1 else 0)]
        xlabel = f"{ds.variables[0].name} [{ds.variables[0].unit}]"
        j = pairs[0][1]
        ylabel = f"{ds.variables[j].name} [{ds.variables[j].unit}]"

    ncols = 2 if energy is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 4.5), squeeze=False)
    ax = axes[0, 0]
    for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
        for i, tr in enumerate(ds.trajectories(split)[:max_trajectories]):
            for a, b in pairs:
                ax.plot(
                    tr.x[:, a],
                    tr.x[:, b],
                    ".-",
                    ms=2,
                    lw=0.6,
                    color=color,
                    label=split if i == 0 else None,
                )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(
        f"{ds.name}: phase portrait" if len(pairs) == 1 and n == 2 else f"{ds.name}: trajectories"
    )
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys())
    if energy is not None:
        ax = axes[0, 1]
        for split, color in (("train", "tab:blue"), ("test", "tab:orange")):
            for tr in ds.trajectories(split)[:max_trajectories]:
                ax.plot(tr.t, energy(tr.x), lw=0.8, color=color)
        ax.set_xlabel("t")
        ax.set_ylabel("H")
        ax.set_title(f"H = {energy_text}", fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=suffix[1:], dpi=120)
    plt.close(fig)
    return out
