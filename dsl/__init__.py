"""The formula language: expression trees with physical units.

Vocabulary (from the paper): ``Input`` (a dataset variable with a unit), ``Param`` (a trainable scalar whose
unit is inferred), and the operators of :data:`PRIMITIVES`: ``+ - * / sin cos square`` (enumerated by default) and ``sqrt``. ``Const`` numbers
exist only to write reference Hamiltonians.

Examples:
    >>> import dsl
    >>> variables = dsl.parse_variables("q:rad, p:kg*m^2/s")
    >>> law = dsl.parse("p^2 - c*cos(q)", [v.name for v in variables])
    >>> dsl.size(law), dsl.to_text(law), dsl.param_units(law, variables)[0].to_units()
    (7, 'p^2 - c_0*cos(q)', 'kg ** 2 * m ** 4 / s ** 2')
"""

from dsl._canonical import CanonicalForms, DedupLevel
from dsl._compile import compile_torch
from dsl._dims import BASE_DIMENSIONS, DIMENSIONLESS, Dim, UnitError, pretty_units
from dsl._expr import (
    Const,
    Expr,
    Input,
    Op,
    Param,
    Variable,
    add,
    cos,
    dimension,
    div,
    inputs,
    is_valid,
    mul,
    n_params,
    param_units,
    parse_variables,
    sin,
    size,
    square,
    sub,
    walk,
)
from dsl._parse import ParseError, parse
from dsl._primitives import (
    BINARY,
    DEFAULT_OPERATORS,
    FREE,
    PRIMITIVES,
    UNARY,
    Primitive,
    check_operators,
)
from dsl._printing import to_display, to_latex, to_sympy, to_text

__all__ = [
    "BASE_DIMENSIONS",
    "BINARY",
    "DEFAULT_OPERATORS",
    "DIMENSIONLESS",
    "FREE",
    "PRIMITIVES",
    "CanonicalForms",
    "Const",
    "DedupLevel",
    "Dim",
    "Expr",
    "Input",
    "Op",
    "Param",
    "ParseError",
    "Primitive",
    "UNARY",
    "UnitError",
    "Variable",
    "add",
    "check_operators",
    "compile_torch",
    "cos",
    "dimension",
    "div",
    "inputs",
    "is_valid",
    "mul",
    "n_params",
    "param_units",
    "parse",
    "parse_variables",
    "pretty_units",
    "sin",
    "size",
    "square",
    "sub",
    "to_display",
    "to_latex",
    "to_sympy",
    "to_text",
    "walk",
]
