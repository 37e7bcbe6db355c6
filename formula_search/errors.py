"""Errors that mean "the user's input is wrong" and are shown as one line, with exit code 2.

Defined in :mod:`dsl.errors` (the lowest layer) and re-exported here.
"""

from dsl.errors import FsearchError, InputError

__all__ = ["FsearchError", "InputError"]
