"""Compile a tree into a torch function of a batch of states and a vector of parameters."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dsl._expr import Const, Expr, Input, Param, n_params
from dsl._primitives import PRIMITIVES
from dsl.errors import InputError

Compiled = Callable[..., "torch.Tensor"]  # noqa: F821


def compile_torch(expr: Expr, variables: Sequence[str]) -> Compiled:
    """Turn ``expr`` into ``g(x, theta)``.

    The returned function evaluates the formula with ``x[..., i]`` for the ``i``-th variable and
    ``theta[..., k]`` for the parameter ``c_k``; the two broadcast together, so a ``theta`` of shape
    ``(B, 1, n_params)`` with ``x`` of shape ``(T, n_vars)`` gives ``(B, T)``. ``theta`` may be omitted
    (or ``None``) for a formula without parameters. Works with ``torch.func`` transforms
    (``grad``, ``vmap``) and autograd.

    Args:
        expr: the formula.
        variables: variable names in the order of the last axis of ``x``.

    Raises:
        InputError: the formula reads a variable not in ``variables``.
    """
    index = {name: i for i, name in enumerate(variables)}
    counter = iter(range(n_params(expr)))

    def build(node: Expr) -> Callable:
        if isinstance(node, Input):
            if node.name not in index:
                raise InputError(
                    f"formula reads {node.name!r}, which is not among {', '.join(variables)}"
                )
            i = index[node.name]
            return lambda x, theta: x[..., i]
        if isinstance(node, Param):
            k = next(counter)
            return lambda x, theta: theta[..., k]
        if isinstance(node, Const):
            value = node.value
            return lambda x, theta: x.new_tensor(value)
        fn = PRIMITIVES[node.name].torch_fn
        if len(node.args) == 1:
            inner = build(node.args[0])
            return lambda x, theta: fn(inner(x, theta))
        left, right = (build(a) for a in node.args)
        return lambda x, theta: fn(left(x, theta), right(x, theta))

    body = build(expr)
    n = n_params(expr)

    def g(x, theta=None):
        if theta is None:
            if n:
                raise ValueError(f"this formula has {n} parameter(s): pass theta")
            theta = x.new_zeros(0)
        return body(x, theta)

    g.n_params = n  # type: ignore[attr-defined]
    return g
