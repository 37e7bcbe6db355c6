"""The paper's scientific results, and checks of a run against them.

:data:`PAPER` holds the numbers of *Noether Networks* (Tables 1-2 and section 4) for the three scientific
experiments. :func:`check_claims` turns each experiment's claims into checks of one run: is the discovered law
the paper's, with its constant in range, and are the errors as the paper reports them? The thresholds are the
acceptance of the meta-tailoring stage (docs/meta-tailoring.md), which makes the paper's numbers testable:

- ideal pendulum: p^2 - c cos q with c within 1% of 3.0; the Noether Network's test RMSE at least 15% below
  the vanilla MLP's (the paper: 25%) and at most 5% above the oracle's (the paper: 0.2% above it);
- ideal spring: q^2 + c p^2 with c within 1% of 1.0; below the vanilla MLP (the paper: 5%) and at most 5%
  above the oracle (the paper: 0.6% below it);
- real pendulum: p^2 - c cos q with c in [2.3, 2.5] (the paper: 2.39); a long-term MSE at least 10 times
  below the vanilla MLP's and an error below HNN's (the paper's words: "more than 10x better than the MLP,
  better than HNN").

``fsearch reproduce`` writes these checks into its report, and ``benchmarks/model_seeds.py`` counts them
over MLP seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple


class ErrorClaim(NamedTuple):
    """An error claim: it holds when the Noether Network's test RMSE is below ``factor`` times ``method``'s
    (an MSE 10x lower: ``10**-0.5``); ``in_mse`` adds the MSE ratio to the numbers shown."""

    method: str
    claim: str
    factor: float
    in_mse: bool = False


#: The paper's numbers: its law and constant (the size of the coefficient of ``other_term`` when ``unit_term``
#: has coefficient 1, and that coefficient's sign), the range of the constant the checks accept, and its test
#: RMSEs per method; ``errors`` lists its error claims (:class:`ErrorClaim`).
PAPER = {
    "ideal_pendulum": {
        "law": "p^2 - 2.99*cos(q)",
        "constant": 3.0,
        "unit_term": "p^2",
        "other_term": "cos(q)",
        "sign": -1,
        "constant_range": (2.97, 3.03),
        "rmse": {"vanilla_mlp": 0.0563, "noether": 0.0423, "oracle": 0.0422},
        "errors": [
            ErrorClaim("vanilla_mlp", "at least 15% below the vanilla MLP (the paper: 25%)", 0.85),
            ErrorClaim("oracle", "at most 5% above the oracle (the paper: 0.2% above it)", 1.05),
        ],
    },
    "ideal_spring": {
        "law": "q^2 + 1.002*p^2",
        "constant": 1.0,
        "unit_term": "q^2",
        "other_term": "p^2",
        "sign": 1,
        "constant_range": (0.99, 1.01),
        "rmse": {"vanilla_mlp": 0.0174, "noether": 0.0165, "oracle": 0.0166},
        "errors": [
            ErrorClaim("vanilla_mlp", "below the vanilla MLP (the paper: 5% below)", 1.0),
            ErrorClaim("oracle", "at most 5% above the oracle (the paper: 0.6% below it)", 1.05),
        ],
    },
    "real_pendulum": {
        "law": "p^2 - 2.39*cos(q)",
        "constant": 2.39,
        "unit_term": "p^2",
        "other_term": "cos(q)",
        "sign": -1,
        "constant_range": (2.3, 2.5),
        "rmse": {},
        "errors": [
            ErrorClaim(
                "vanilla_mlp",
                "a long-term MSE at least 10x below the vanilla MLP's",
                10**-0.5,
                in_mse=True,
            ),
            ErrorClaim("hnn", "below HNN", 1.0),
        ],
    },
}


def normalised_constant(
    expr,
    params: Sequence[float],
    names: Sequence[str],
    unit_term: str,
    other_term: str | None = None,
    *,
    signed: bool = False,
) -> float | None:
    """The constant of a two-term law written as the paper writes it: ``unit_term`` with coefficient 1.

    ``c*p^2 - cos(q)`` with ``unit_term="p^2"`` gives ``1/c`` (the paper's ``p^2 - 3 cos q``: 3);
    ``q^2 + c*p^2`` with ``unit_term="q^2"`` gives ``c``. Returns ``None`` unless the law has exactly two
    terms with inputs, one of them ``unit_term`` (and, when given, the other ``other_term``). The size of
    the ratio of coefficients, or with ``signed=True`` the ratio itself (``p^2 - 3 cos q``: -3).
    """
    import sympy

    import dsl

    law = sympy.expand(dsl.to_sympy(expr, list(params)))
    terms = [t for t in sympy.Add.make_args(law) if t.free_symbols]
    unit = dsl.to_sympy(dsl.parse(unit_term, list(names)))
    coeffs = [t.as_coeff_Mul() for t in terms]
    if len(terms) != 2 or not any(rest == unit for _, rest in coeffs):
        return None
    first = 0 if coeffs[0][1] == unit else 1
    if other_term is not None and coeffs[1 - first][1] != dsl.to_sympy(
        dsl.parse(other_term, list(names))
    ):
        return None
    ratio = float(coeffs[1 - first][0] / coeffs[first][0])
    return ratio if signed else abs(ratio)


@dataclass(frozen=True)
class ClaimCheck:
    """One claim of the paper checked on one run: what it says, whether it holds, and our numbers."""

    claim: str
    holds: bool
    ours: str


def _error_check(rmse: Mapping[str, float], error: ErrorClaim) -> ClaimCheck:
    """``error.claim`` holds when the Noether Network's test RMSE is below ``error.factor`` times that of
    ``error.method``."""
    method, claim = error.method, error.claim
    noether, other = rmse.get("noether", math.nan), rmse.get(method, math.nan)
    if not (math.isfinite(noether) and math.isfinite(other) and other > 0):
        return ClaimCheck(
            claim, False, f"Noether {noether:.4g}, {method} {other:.4g}: not comparable"
        )
    if noether <= other:
        change = f"{100 * (1 - noether / other):.1f}% below"
    elif noether < 2 * other:
        change = f"{100 * (noether / other - 1):.1f}% above"
    else:
        change = f"{noether / other:.3g}x as large"
    ours = f"{noether:.4g} against {other:.4g}: {change}"
    if error.in_mse and noether > 0:
        ours += f" (MSE {(other / noether) ** 2:.3g}x lower)"
    return ClaimCheck(claim, noether < error.factor * other, ours)


def law_constant(dataset: str, expr, params: Sequence[float], names: Sequence[str]) -> float | None:
    """The discovered law's constant as the paper writes its law for ``dataset`` (``p^2 - c cos q``: c;
    ``q^2 + c p^2``: c), or ``None`` when the law has another form. A constant of the wrong sign comes out
    negative (``p^2 + 3 cos q``: -3)."""
    paper = PAPER[dataset]
    ratio = normalised_constant(
        expr, params, names, paper["unit_term"], paper["other_term"], signed=True
    )
    return None if ratio is None else paper["sign"] * ratio


def check_claims(
    dataset: str,
    expr,
    params: Sequence[float],
    names: Sequence[str],
    rmse: Mapping[str, float],
) -> list[ClaimCheck] | None:
    """Check one run against the paper's claims for ``dataset`` (``None`` for a dataset the paper lacks).

    Args:
        dataset: a built-in dataset name (a key of :data:`PAPER`).
        expr: the discovered law (a :class:`dsl.Expr`), or ``None`` when the run found none.
        params: its meta-learned parameters.
        names: the dataset's variable names, in order.
        rmse: test RMSE per method (``vanilla_mlp``, ``oracle``, ``hnn``, ``noether``); a missing or NaN
            value makes its check fail.

    Returns:
        The law check first (its form and the constant's range), then the error checks of
        ``PAPER[dataset]["errors"]``.
    """
    paper = PAPER.get(dataset)
    if paper is None:
        return None
    low, high = paper["constant_range"]
    k = None if expr is None else law_constant(dataset, expr, params, names)
    form = f"{paper['unit_term']} {'-' if paper['sign'] < 0 else '+'} c {paper['other_term']}"
    checks = [
        ClaimCheck(
            f"the law is {form} with c in [{low:g}, {high:g}] (the paper: {paper['law']})",
            k is not None and low <= k <= high,
            f"c = {k:.4g}" if k is not None else "another law" if expr is not None else "no law",
        )
    ]
    checks += [_error_check(rmse, error) for error in paper["errors"]]
    return checks
