"""Exhaustive enumeration: counts against a brute force written differently, dedup, units, the paper's laws."""

from __future__ import annotations

import math
from collections import Counter
from fractions import Fraction

import pint
import pytest
import torch

import dsl
from dsl._canonical import CanonicalForms
from formula_search._enumerate import COLUMNS, Enumerator, count_formulas, enumeration_table

PENDULUM = dsl.parse_variables("q:rad, p:kg*m^2/s")
SPRING = dsl.parse_variables("q:m, p:kg*m/s")
SYSTEMS = {"pendulum": PENDULUM, "spring": SPRING}
LAWS = {"pendulum": "p^2 - c*cos(q)", "spring": "q^2 + c*p^2"}
LEVELS = ("commutative", "algebraic", "conservation")
UREG = pint.UnitRegistry()


# -- brute force: every tree, validity by linear algebra on unit exponents, commutativity by sorting ------


def _all_trees(max_size: int, names) -> dict[int, list]:
    """Every tree (nested tuples) of each size, no unit check, no dedup."""
    by_size = {1: [("in", n) for n in names] + [("c",)]}
    for n in range(2, max_size + 1):
        out = [(op, a) for op in ("square", "sin", "cos") for a in by_size[n - 1]]
        for i in range(1, n - 1):
            for a in by_size[i]:
                for b in by_size[n - 1 - i]:
                    out.extend((op, a, b) for op in ("add", "sub", "mul", "div"))
        by_size[n] = out
    return by_size


def _rank(rows: list[list[Fraction]]) -> int:
    rows = [r[:] for r in rows]
    rank, col = 0, 0
    ncols = len(rows[0]) if rows else 0
    while rank < len(rows) and col < ncols:
        pivot = next((r for r in range(rank, len(rows)) if rows[r][col] != 0), None)
        if pivot is None:
            col += 1
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        for r in range(len(rows)):
            if r != rank and rows[r][col] != 0:
                f = rows[r][col] / rows[rank][col]
                rows[r] = [x - f * y for x, y in zip(rows[r], rows[rank])]
        rank += 1
        col += 1
    return rank


def _exponent(node, dims, axis, n_params, counter, equations) -> list[Fraction]:
    """Affine form of ``node``'s exponent along ``axis``; appends the equations its units impose."""
    kind = node[0]
    if kind == "in":
        return [Fraction(0)] * n_params + [Fraction(dims[node[1]][axis])]
    if kind == "c":
        form = [Fraction(0)] * (n_params + 1)
        form[next(counter)] = Fraction(1)
        return form
    args = [_exponent(a, dims, axis, n_params, counter, equations) for a in node[1:]]
    if kind in ("add", "sub"):
        equations.append([x - y for x, y in zip(*args)])
        return args[0]
    if kind == "mul":
        return [x + y for x, y in zip(*args)]
    if kind == "div":
        return [x - y for x, y in zip(*args)]
    if kind == "square":
        return [2 * x for x in args[0]]
    equations.append(args[0])  # sin, cos: exponent 0
    return [Fraction(0)] * (n_params + 1)


def _brute_valid(tree, variables) -> bool:
    """Valid iff, for each base dimension, the linear equations on the parameters' exponents are consistent.

    An exponent is an affine form: one coefficient per parameter, then a constant.
    """
    dims = {v.name: v.dim.exps for v in variables}
    n_params = str(tree).count("'c'")
    for axis in range(len(dsl.BASE_DIMENSIONS)):
        equations: list[list[Fraction]] = []
        _exponent(tree, dims, axis, n_params, iter(range(n_params)), equations)
        if not equations:
            continue
        if n_params == 0:
            if any(eq[-1] != 0 for eq in equations):
                return False
        elif _rank([eq[:-1] for eq in equations]) != _rank(equations):
            return False
    return True


def _commutative_key(tree) -> str:
    if tree[0] == "in":
        return tree[1]
    if tree[0] == "c":
        return "c"
    args = [_commutative_key(a) for a in tree[1:]]
    if tree[0] in ("add", "mul"):
        args.sort()
    return f"{tree[0]}({','.join(args)})"


@pytest.mark.parametrize("system", SYSTEMS)
def test_commutative_counts_match_brute_force(system):
    variables = SYSTEMS[system]
    trees = _all_trees(5, [v.name for v in variables])
    expected = {
        n: len({_commutative_key(t) for t in ts if _brute_valid(t, variables)})
        for n, ts in trees.items()
    }
    assert count_formulas(variables, max_size=5, dedup="commutative") == expected


def _to_expr(tree):
    if tree[0] == "in":
        return dsl.Input(tree[1])
    if tree[0] == "c":
        return dsl.Param()
    return dsl.Op(tree[0], tuple(_to_expr(a) for a in tree[1:]))


@pytest.mark.parametrize("system", SYSTEMS)
def test_algebraic_and_conservation_counts_match_brute_force(system):
    # every valid tree canonicalised whole (the enumerator only combines representatives of smaller classes)
    variables = SYSTEMS[system]
    forms = CanonicalForms()
    first_size: dict[int, int] = {}
    for n, ts in _all_trees(5, [v.name for v in variables]).items():
        for t in ts:
            if _brute_valid(t, variables):
                first_size.setdefault(forms.of(_to_expr(t)), n)
    first_size.pop(CanonicalForms.UNDEFINED, None)
    algebraic = Counter(first_size.values())
    assert count_formulas(variables, max_size=5, dedup="algebraic") == {
        n: algebraic[n] for n in range(1, 6)
    }
    key_size: dict = {}
    for sid, n in sorted(first_size.items(), key=lambda item: item[1]):
        key = forms.conservation_key(sid)
        if key is not None:
            key_size.setdefault(key, n)
    conservation = Counter(key_size.values())
    assert count_formulas(variables, max_size=5, dedup="conservation") == {
        n: conservation[n] for n in range(1, 6)
    }


def test_brute_force_validity_agrees_on_hand_examples():
    assert _brute_valid(("add", ("in", "q"), ("mul", ("c",), ("in", "p"))), SPRING)
    assert not _brute_valid(("add", ("in", "q"), ("in", "p")), SPRING)
    assert not _brute_valid(("sin", ("in", "p")), PENDULUM)
    assert _brute_valid(("add", ("in", "q"), ("mul", ("c",), ("c",))), SPRING)
    assert not _brute_valid(("add", ("in", "q"), ("sin", ("c",))), SPRING)
    assert not _brute_valid(("add", ("sin", ("mul", ("c",), ("in", "p"))), ("in", "p")), SPRING)


# -- dedup: nothing equivalent twice, nothing lost -------------------------------------------------------


def _tree_key(expr) -> str:
    if isinstance(expr, dsl.Input):
        return expr.name
    if isinstance(expr, dsl.Param):
        return "c"
    args = [_tree_key(a) for a in expr.args]
    if expr.name in ("add", "mul"):
        args.sort()
    return f"{expr.name}({','.join(args)})"


def _rows(variables, level, depth):
    e = Enumerator(variables, dedup=level)
    return [(r, e.expr(r)) for r in e.formulas(depth)]


@pytest.mark.parametrize("system", SYSTEMS)
def test_no_two_formulas_equivalent_at_their_level_and_no_class_lost(system):
    variables = SYSTEMS[system]
    depth = 6
    forms = (
        CanonicalForms()
    )  # fresh: ids recomputed from the printed text, not from the enumeration
    commutative = _rows(variables, "commutative", depth)
    keys = [_tree_key(t) for _, t in commutative]
    assert len(set(keys)) == len(keys)

    all_ids = {forms.of(t) for _, t in commutative} - {CanonicalForms.UNDEFINED}
    algebraic = [forms.of(t) for _, t in _rows(variables, "algebraic", depth)]
    assert len(set(algebraic)) == len(algebraic)
    assert set(algebraic) == all_ids

    all_keys = {forms.conservation_key(i) for i in all_ids} - {None}
    conservation = [
        forms.conservation_key(forms.of(t)) for _, t in _rows(variables, "conservation", depth)
    ]
    assert None not in conservation
    assert len(set(conservation)) == len(conservation)
    assert set(conservation) == all_keys


def _fingerprint(expr, variables):
    """Values at three fixed states (parameter-free formulas only), rounded to 9 significant digits."""
    x = torch.tensor([[0.3, 0.7], [1.1, -0.4], [-0.8, 1.9]], dtype=torch.float64)
    with torch.no_grad():
        y = dsl.compile_torch(expr, [v.name for v in variables])(x)
    y = torch.broadcast_to(y, (3,))
    if not torch.isfinite(y).all():
        return None
    return tuple(float(f"{v:.9g}") + 0.0 for v in y.tolist())


@pytest.mark.parametrize("system", SYSTEMS)
def test_algebraic_merges_only_equal_functions(system):
    # independent of the canonical form: parameter-free formulas evaluated numerically
    variables = SYSTEMS[system]
    forms = CanonicalForms()
    by_id: dict[int, set] = {}
    for _, t in _rows(variables, "commutative", 5):
        # by definition the level folds subtrees without inputs (q/q, cos(q - q)) into one generic constant,
        # so sin(q/q) ~ cos(q/q); compare only formulas without such subtrees
        folded = any(forms.is_constant(forms.of(s)) for s in dsl.walk(t))
        if dsl.n_params(t) == 0 and not folded:
            fp = _fingerprint(t, variables)
            if fp is not None:
                by_id.setdefault(forms.of(t), set()).add(fp)
    assert by_id and all(len(fps) == 1 for fps in by_id.values())
    kept = [
        _fingerprint(t, variables)
        for _, t in _rows(variables, "algebraic", 5)
        if not dsl.n_params(t) and not forms.is_constant(forms.of(t))
    ]
    kept = [fp for fp in kept if fp is not None]
    assert len(set(kept)) == len(kept)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("p^2 - c*cos(q)", "p^2 + c*cos(q)"),
        ("p^2 - c*cos(q)", "c*(p^2 - c*cos(q)) + c"),
        ("p^2 - c*cos(q)", "(-1)*(cos(q) - c*p^2)"),
        ("p^2 - c*cos(q)", "c/(p^2 + c*cos(q))"),
        ("q*p", "c/(q*p)"),
        ("(c - q)^2", "(q + c)^2"),
        ("q*p", "(q*p)^2"),
        ("q*p", "c/(q*p)^2"),
        ("p^2 - c*cos(q)", "(p^2 + c*cos(q))^2"),
        ("cos(c - q)", "cos(q + c)"),
    ],
)
def test_conservation_equivalences(a, b):
    forms = CanonicalForms()
    ka = forms.conservation_key(forms.of(dsl.parse(a, ["q", "p"])))
    kb = forms.conservation_key(forms.of(dsl.parse(b, ["q", "p"])))
    assert ka is not None and ka == kb


@pytest.mark.parametrize(
    ("a", "b"),
    [("p^2 - c*cos(q)", "p^2 - c*sin(q)"), ("p^2 - cos(q)", "p^2 + cos(q)"), ("q", "q + p")],
)
def test_different_laws_stay_apart(a, b):
    forms = CanonicalForms()
    ka = forms.conservation_key(forms.of(dsl.parse(a, ["q", "p"])))
    kb = forms.conservation_key(forms.of(dsl.parse(b, ["q", "p"])))
    assert ka != kb


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("system", SYSTEMS)
def test_the_paper_laws_are_present_at_every_level(system, level):
    variables = SYSTEMS[system]
    law = dsl.parse(LAWS[system], ["q", "p"])
    if level == "commutative":  # every tree up to commutativity: the law as written is there
        texts = {r[0] for r in Enumerator(variables, dedup=level).rows(7)}
        assert dsl.to_text(law) in texts
        return
    forms = CanonicalForms()
    law_id = forms.of(law)
    rows = _rows(variables, level, 7)
    if level == "conservation":
        key = forms.conservation_key(law_id)
        hits = [r.formula for r, t in rows if forms.conservation_key(forms.of(t)) == key]
    else:
        hits = [r.formula for r, t in rows if forms.of(t) == law_id]
    assert len(hits) >= 1
    # the representative kept is the paper's form, with the free coefficient's sign unrestricted
    expected = {"pendulum": "p^2 + c_0*cos(q)", "spring": "q^2 + c_0*p^2"}[system]
    assert hits == [expected]


# -- each row ----------------------------------------------------------------------------------------------


def _pint_check(expr, variables, param_units):
    units = {v.name: v.unit for v in variables}
    params = iter(param_units)

    def go(node):
        if isinstance(node, dsl.Input):
            return UREG.Quantity(0.7, units[node.name])
        if isinstance(node, dsl.Param):
            return UREG.Quantity(1.3, next(params).replace("**", "^"))
        a = [go(x) for x in node.args]
        if node.name == "add":
            return a[0] + a[1]
        if node.name == "sub":
            return a[0] - a[1]
        if node.name == "mul":
            return a[0] * a[1]
        if node.name == "div":
            return a[0] * (1 / a[1].units)  # units only: the value may be zero
        if node.name == "square":
            return a[0] ** 2
        return UREG.Quantity(math.cos(a[0].to("dimensionless").magnitude))

    return go(expr)


@pytest.mark.parametrize("level", ["commutative", "conservation"])
@pytest.mark.parametrize("system", SYSTEMS)
def test_every_row_is_unit_valid_in_pint(system, level):
    variables = SYSTEMS[system]
    for row, expr in _rows(variables, level, 5 if level == "commutative" else 6):
        units = row.param_units.split("; ") if row.n_params else []
        assert len(units) == row.n_params == dsl.n_params(expr)
        value = _pint_check(expr, variables, units)  # raises DimensionalityError if invalid
        assert row.size == dsl.size(expr)
        if row.dimension != "free":
            assert (
                value.dimensionality == UREG.Unit(row.dimension.replace("**", "^")).dimensionality
            )
        assert row.formula == dsl.to_text(expr)


def test_order_is_deterministic_and_sizes_ascend():
    first = [r.formula for r in Enumerator(PENDULUM, dedup="algebraic").formulas(6)]
    second = [r.formula for r in Enumerator(PENDULUM, dedup="algebraic").formulas(6)]
    assert first == second
    sizes = [r.size for r in Enumerator(PENDULUM).formulas(5)]
    assert sizes == sorted(sizes)


def test_on_size_reports_the_rows_of_each_size():
    seen: dict[int, int] = {}
    rows = list(Enumerator(SPRING, dedup="conservation").rows(5, on_size=seen.__setitem__))
    per_size = Counter(r[1] for r in rows)
    assert seen == {n: per_size[n] for n in range(1, 6)}


def test_table_has_the_documented_columns():
    df = enumeration_table(SPRING, max_size=3, dedup="commutative")
    assert tuple(df.columns) == COLUMNS
    assert df["size"].tolist() == sorted(df["size"].tolist())
    assert df.loc[df.formula == "q*c_0", "param_units"].item() == "1"


@pytest.mark.parametrize("bad", [0, -1, 2.5, "7"])
def test_bad_depth_is_an_input_error(bad):
    from formula_search.errors import InputError

    with pytest.raises(InputError):
        list(Enumerator(PENDULUM).rows(bad))
