"""The version of formula-search (read by run folders and caches)."""

__version__ = "0.1.0"
