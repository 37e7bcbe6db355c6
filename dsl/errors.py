"""Errors that mean "the user's input is wrong" and are shown as one line, with exit code 2.

They live in the lowest layer, the formula language, so that every package above it raises the same types;
:mod:`formula_search.errors` re-exports them.
"""


class FsearchError(Exception):
    """Base class of every error the command line shows as a one-line message (exit code 2)."""


class InputError(FsearchError, ValueError):
    """Bad user input: a malformed formula, an unknown unit, a broken data file, an invalid option."""
