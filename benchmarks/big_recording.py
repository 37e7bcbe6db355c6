"""Memory and time of ``fsearch fit`` on 2-million-row recordings (the reliability issue's acceptance).

    python benchmarks/big_recording.py                    # both files, depth 5, both measures
    python benchmarks/big_recording.py --rows 200000      # smaller

Writes two CSV files into a temporary folder: ``many.csv`` (2,000 pendulum trajectories of 1,000 points,
trajectory column, 1% noise) and ``long.csv`` (one pendulum recording of 2,000,000 points released at 90
degrees, 1% noise), then runs ``fsearch fit --depth 5`` on each as a separate process and reads its peak
resident memory (``ru_maxrss`` of the child) and wall time. One job at a time; run on an idle machine.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np


def _rk4_pendulum(q, p, dt, steps, sub=4):  # vectorised over the pendulums
    """Rows (steps, n) of q and p of many pendulums (g = 9.8) by RK4, ``sub`` substeps per sample."""
    qs, ps = np.empty((steps, len(q))), np.empty((steps, len(q)))
    h = dt / sub
    for i in range(steps):
        qs[i], ps[i] = q, p
        for _ in range(sub):
            k1q, k1p = p, -9.8 * np.sin(q)
            k2q, k2p = p + h / 2 * k1p, -9.8 * np.sin(q + h / 2 * k1q)
            k3q, k3p = p + h / 2 * k2p, -9.8 * np.sin(q + h / 2 * k2q)
            k4q, k4p = p + h * k3p, -9.8 * np.sin(q + h * k3q)
            q = q + h / 6 * (k1q + 2 * k2q + 2 * k3q + k4q)
            p = p + h / 6 * (k1p + 2 * k2p + 2 * k3p + k4p)
    return qs, ps


def write_files(folder: Path, rows: int, seed: int = 0) -> dict[str, tuple[Path, list[str]]]:
    rng = np.random.default_rng(seed)
    n_traj, n_pts = max(2, rows // 1000), 1000
    q, p = _rk4_pendulum(rng.uniform(-2, 2, n_traj), rng.uniform(-2, 2, n_traj), 0.01, n_pts)
    q += 0.01 * q.std() * rng.standard_normal(q.shape)
    p += 0.01 * p.std() * rng.standard_normal(p.shape)
    t = np.tile(np.arange(n_pts) * 0.01, n_traj)
    many = folder / "many.csv"
    with open(many, "w") as fh:
        fh.write("trial,t,q,p\n")
        np.savetxt(
            fh,
            np.c_[np.repeat(np.arange(n_traj), n_pts), t, q.T.ravel(), p.T.ravel()],
            fmt=["%d", "%.4f", "%.8g", "%.8g"],
            delimiter=",",
        )
    from scipy.integrate import solve_ivp

    t_long = np.arange(rows) * 0.001
    sol = solve_ivp(
        lambda _t, y: [y[1], -9.8 * np.sin(y[0])],
        (0.0, t_long[-1]),
        [np.pi / 2, 0.0],
        t_eval=t_long,
        rtol=1e-9,
        atol=1e-11,
    )
    x = sol.y.T.copy()
    x += 0.01 * x.std(0) * rng.standard_normal(x.shape)
    long = folder / "long.csv"
    with open(long, "w") as fh:
        fh.write("t,q,p\n")
        np.savetxt(
            fh, np.c_[np.arange(rows) * 0.001, x], fmt=["%.4f", "%.8g", "%.8g"], delimiter=","
        )
    cols = ["--columns", "q:rad,p:rad/s"]
    return {"many": (many, cols + ["--traj-col", "trial"]), "long": (long, cols)}


#: Runs the command given as arguments and prints its peak resident memory (KiB) as the last line of stderr.
_WRAP = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)"
)


@click.command()
@click.option("--rows", type=int, default=2_000_000, show_default=True)
@click.option("--depth", type=int, default=5, show_default=True)
@click.option("--measure", "measures", multiple=True, default=("derivative", "paper"))
def main(rows, depth, measures):
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"fsearch fit --depth {depth} on {rows:,}-row recordings")
    for col in ("file", "measure", "wall s", "peak MiB", "accepted", "exit"):
        table.add_column(col, justify="left" if col in ("file", "measure") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = write_files(folder, rows)
        for name, (path, opts) in files.items():
            for measure in measures:
                if measure == "paper" and name == "long":
                    continue  # one sequence at one energy: the paper measure has nothing to compare
                out = folder / f"fit-{name}-{measure}"
                cmd = [sys.executable, "-m", "formula_search.cli", "fit", "--dataset", str(path)]
                cmd += opts + ["--depth", str(depth), "--measure", measure, "--out", str(out)]
                t0 = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-c", _WRAP, *cmd], capture_output=True, text=True
                )
                wall = time.perf_counter() - t0
                peak = float(proc.stderr.strip().splitlines()[-1])
                last = [ln for ln in proc.stdout.splitlines() if "accepted" in ln]
                table.add_row(
                    name,
                    measure,
                    f"{wall:.1f}",
                    f"{peak / 1024:,.0f}",
                    last[-1].split(" formulas")[0] if last else proc.stderr.strip()[-80:],
                    str(proc.returncode),
                )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
