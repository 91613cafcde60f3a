"""The `corridors` command. Subcommands (demo, drift, train, plot, prove) arrive with
their issues; until then it reports the version and where to start."""

import argparse
import sys

from .. import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corridors",
        description=(
            "The geometry of gradient-based optimization: how far gradient descent "
            "drifts from the gradient flow, and where it does not (corridors)."
        ),
        epilog="Example: python examples/quickstart.py  (a tour of the core measurements)",
    )
    parser.add_argument(
        "--version", action="version", version=f"corridors {__version__}"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `corridors` console script; returns the exit code."""
    build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    print(
        f"corridors {__version__}: run `corridors --help`, or see the README's quickstart."
    )
    return 0
