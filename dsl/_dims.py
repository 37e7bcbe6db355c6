"""Exact physical dimensions.

pint is used at the edges (parsing a unit a user typed, printing a unit back); inside the enumeration's hot loop
a dimension is a :class:`Dim`, a tuple of exponents over the seven SI base dimensions, which hashes and compares
in nanoseconds. Exponents are :class:`fractions.Fraction` so that the inferred unit of a parameter under a
square (``square(c) = p``, so ``[c] = [p]^(1/2)``) is still exact.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

from dsl.errors import InputError

#: pint's names of the base dimensions, in the order of :attr:`Dim.exps`.
BASE_DIMENSIONS: tuple[str, ...] = (
    "[length]",
    "[mass]",
    "[time]",
    "[current]",
    "[temperature]",
    "[substance]",
    "[luminosity]",
)
#: SI base unit of each base dimension, used to print a dimension as a unit.
_BASE_UNITS: tuple[str, ...] = ("m", "kg", "s", "A", "K", "mol", "cd")
#: Order in which units are printed: mass first, as in kg*m^2/s.
_PRINT_ORDER: tuple[int, ...] = (1, 0, 2, 3, 4, 5, 6)


class UnitError(InputError):
    """A unit that pint does not know, or a formula whose units do not agree."""


@functools.cache
def _registry():
    import pint

    return pint.UnitRegistry()


def pretty_units(units: str) -> str:
    """Units written for people, as pint's short pretty format: ``"1 / s ** 2"`` -> ``"1/s²"``; ``""`` when
    dimensionless (``"1"`` or empty).

    Examples:
        >>> pretty_units("kg * m ** 2 / s")
        'kg·m²/s'
    """
    if not units.strip() or units.strip() == "1":
        return ""
    return format(_registry().Unit(units), "~P")


@dataclass(frozen=True, slots=True)
class Dim:
    """A physical dimension: exponents of length, mass, time, current, temperature, substance, luminosity.

    Angles are dimensionless (pint's convention: ``rad`` has no dimension).

    Examples:
        >>> Dim.from_units("kg*m^2/s") * Dim.from_units("1/s")
        Dim('kg * m ** 2 / s ** 2')
    """

    exps: tuple[Fraction, ...]

    def __post_init__(self) -> None:
        if len(self.exps) != len(BASE_DIMENSIONS):
            raise ValueError(f"a Dim needs {len(BASE_DIMENSIONS)} exponents, got {len(self.exps)}")
        object.__setattr__(self, "exps", tuple(Fraction(e) for e in self.exps))

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def dimensionless(cls) -> Dim:
        return DIMENSIONLESS

    @classmethod
    def from_units(cls, text: str) -> Dim:
        """Parse a unit such as ``"kg*m^2/s"``, ``"rad"`` or ``"1"`` with pint.

        Raises:
            UnitError: the unit is unknown to pint or not a pure unit (an offset unit, a number).
        """
        return _dim_from_units(text.strip())

    # -- algebra ------------------------------------------------------------------------------------------
    def __mul__(self, other: Dim) -> Dim:
        return Dim(tuple(a + b for a, b in zip(self.exps, other.exps)))

    def __truediv__(self, other: Dim) -> Dim:
        return Dim(tuple(a - b for a, b in zip(self.exps, other.exps)))

    def __pow__(self, k: int | Fraction) -> Dim:
        k = Fraction(k)
        return Dim(tuple(a * k for a in self.exps))

    @property
    def is_dimensionless(self) -> bool:
        return not any(self.exps)

    # -- printing -----------------------------------------------------------------------------------------
    def to_units(self) -> str:
        """The dimension written in SI base units, e.g. ``"kg * m ** 2 / s"``; ``"1"`` when dimensionless."""
        num, den = [], []
        for i in _PRINT_ORDER:
            unit, e = _BASE_UNITS[i], self.exps[i]
            if e == 0:
                continue
            power = abs(e)
            text = unit if power == 1 else f"{unit} ** {_fmt_exp(power)}"
            (num if e > 0 else den).append(text)
        if not num and not den:
            return "1"
        out = " * ".join(num) if num else "1"
        if den:
            out += " / " + (den[0] if len(den) == 1 else "(" + " * ".join(den) + ")")
        return out

    def to_pint(self):
        """The dimension as a pint ``Unit`` in SI base units."""
        return _registry().Unit(self.to_units().replace("**", "^") if self.exps else "")

    def __repr__(self) -> str:
        return f"Dim({self.to_units()!r})"

    def __str__(self) -> str:
        return self.to_units()


def _fmt_exp(e: Fraction) -> str:
    return str(e.numerator) if e.denominator == 1 else f"({e.numerator}/{e.denominator})"


DIMENSIONLESS = Dim((0,) * len(BASE_DIMENSIONS))


@functools.lru_cache(maxsize=1024)
def _dim_from_units(text: str) -> Dim:
    import pint

    if not text:
        raise UnitError("empty unit; write '1' or 'dimensionless' for a dimensionless variable")
    reg = _registry()
    try:
        quantity = reg.parse_expression(text)
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError) as exc:
        raise UnitError(f"unknown unit {text!r}: {exc}") from None
    except Exception as exc:  # pint raises assorted errors (tokenize, attribute) on garbage
        raise UnitError(f"cannot parse unit {text!r}: {exc}") from None
    if not hasattr(quantity, "dimensionality"):
        # a bare number such as "1" or "2": dimensionless
        return DIMENSIONLESS
    dimensionality = quantity.dimensionality
    unknown = set(dimensionality) - set(BASE_DIMENSIONS)
    if unknown:
        raise UnitError(f"unit {text!r} has dimensions outside SI ({', '.join(sorted(unknown))})")
    return Dim(
        tuple(Fraction(dimensionality.get(d, 0)).limit_denominator(64) for d in BASE_DIMENSIONS)
    )
