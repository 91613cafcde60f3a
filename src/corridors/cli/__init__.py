"""The `corridors` command line: demo, drift, prove, plot (see `corridors --help`)."""

from ._main import main

__all__ = ["main"]
