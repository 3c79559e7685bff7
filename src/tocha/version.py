"""The version of tocha: one place, read by the package, the records and the command."""

__version__ = "0.1.0"
