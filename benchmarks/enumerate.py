"""Time and peak memory of the exhaustive enumeration at depth 7, 8 and 9.

Each (system, depth, level) runs in a fresh subprocess so that peak memory (``ru_maxrss``) is its own; rows are
consumed as they stream (nothing is kept), as ``fsearch enumerate`` does before writing them in batches.

Usage::

    python benchmarks/enumerate.py                      # pendulum, depths 7 8 9, all three levels
    python benchmarks/enumerate.py --depths 7 --systems pendulum spring --levels commutative

Targets (issue 2): depth 7 under 2 s; depth 9 under 60 s with peak memory under 2 GB, on one core.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SYSTEMS = {"pendulum": "q:rad,p:kg*m^2/s", "spring": "q:m,p:kg*m/s"}
LEVELS = ("commutative", "algebraic", "conservation")

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import dsl
from formula_search.advanced import Enumerator
variables = dsl.parse_variables({spec!r})
t0 = time.perf_counter()
n = 0
for _ in Enumerator(variables, dedup={level!r}).rows({depth}):
    n += 1
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
print(json.dumps({{"count": n, "seconds": seconds, "peak_mib": peak}}))
"""


def run_one(system: str, depth: int, level: str) -> dict:
    root = str(Path(__file__).resolve().parents[1])
    code = _CHILD.format(root=root, spec=SYSTEMS[system], level=level, depth=depth)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--systems", nargs="+", default=["pendulum"], choices=list(SYSTEMS))
    parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=LEVELS)
    args = parser.parse_args()
    print(
        f"{'system':<9} {'depth':>5} {'level':<13} {'formulas':>11} {'seconds':>8} {'peak MiB':>9}"
    )
    for system in args.systems:
        for depth in args.depths:
            for level in args.levels:
                r = run_one(system, depth, level)
                print(
                    f"{system:<9} {depth:>5} {level:<13} {r['count']:>11,} "
                    f"{r['seconds']:>8.2f} {r['peak_mib']:>9.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
