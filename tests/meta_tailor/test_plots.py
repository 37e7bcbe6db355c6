"""The run plots: what a reader sees in the legend, checked on the figure itself."""

from __future__ import annotations

import pandas as pd

from meta_tailor import plots as _plots


def test_horizon_plot_names_methods_and_dashes_the_oracle(tmp_path, monkeypatch):
    """The legend uses the given names (not the CSV's keys), and the oracle is dashed so that a Noether
    Network equal to it stays visible under it."""
    figures = []
    monkeypatch.setattr(_plots, "save_png", lambda fig, path: figures.append(fig) or path)
    rows = [
        {"method": m, "horizon": h, "t": 0.1 * h, "mse": 1e-3 * (h + 1)}
        for m in ("vanilla_mlp", "noether", "oracle")
        for h in range(4)
    ]
    _plots.plot_horizons(
        pd.DataFrame(rows),
        tmp_path / "h.png",
        labels={"vanilla_mlp": "Vanilla MLP", "noether": "Noether Nets: p^2 - 3*cos(q)"},
    )
    (ax,) = figures[0].axes
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["Vanilla MLP", "Noether Nets: p^2 - 3*cos(q)", "oracle"]  # unnamed: its key
    styles = {line.get_label(): line.get_linestyle() for line in ax.get_lines()}
    assert styles["oracle"] == "--" and styles["Vanilla MLP"] == "-"
    # horizon 0 (the initial state, error 0 by construction) is left out of the log plot
    assert all(len(line.get_xdata()) == 3 for line in ax.get_lines())
