"""The `corridors` command: parser, dispatch, error handling.

Subcommands are registered from `COMMANDS`, a tuple of module names. Each module
defines `NAME`, `HELP` (one line), `EXAMPLE` (the epilog of its `--help`),
`add_arguments(parser)` and `run(options) -> int` (the exit code), and imports its
heavy dependencies inside `run`, so `corridors --help` and bad flags answer quickly.
Adding a subcommand is a new module and one line here.

Exit codes: 0 success; 1 a check or proof failed; 2 bad flags or impossible values
(one line on stderr, never a traceback); 130 interrupted. `CORRIDORS_TRACEBACK=1`
re-raises instead, for debugging.
"""

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from .. import __version__
from ._options import UsageError

COMMANDS = ("._demo", "._drift", "._train", "._prove", "._plot")
"""Subcommand modules, in the order `corridors --help` lists them."""

EPILOG = """\
examples:
  corridors demo                           # the tour: report in corridors-demo/
  corridors drift --landscape quadratic --lr 0.2 0.1 0.05 --method gd rk4
  corridors drift --model mlp --dataset digits --reference modified
  corridors train --model mlp --dataset digits --optimizer clr --steps 200
  corridors prove lemma_2_8 appendix_c     # or all statements: corridors prove
  corridors plot corridors-demo            # redraw a report's figures
  corridors plot runs/train                # figures of training runs

Every subcommand takes --out DIR, --quiet and --json (and --seed where randomness
enters); `corridors COMMAND --help` shows its options and an example."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="corridors",
        description=(
            "The geometry of gradient-based optimization: how far gradient descent "
            "drifts from the gradient flow, and where it does not (corridors)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"corridors {__version__}"
    )
    subparsers = parser.add_subparsers(
        dest="command", title="commands", metavar="COMMAND"
    )
    for name in COMMANDS:
        module = importlib.import_module(name, __package__)
        sub = subparsers.add_parser(
            module.NAME,
            help=module.HELP,
            description=(module.__doc__ or module.HELP).strip(),
            epilog=module.EXAMPLE,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def one_line(error: BaseException) -> str:
    """The first line of `error`'s message (its type's name if it has none)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "impossible input", reported in one line with exit code 2."""
    import jax

    # Value-dependent failures of the library (a diverged run) arrive as statuses
    # (`throw=False`, then `refuse_failure`), never as equinox's runtime errors.
    return (
        UsageError,
        ValueError,  # corridors.InvalidInputError included
        jax.errors.JaxRuntimeError,
        OSError,  # an --out folder that cannot be written, a missing file
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `corridors` console script; returns the exit code."""
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        options = parser.parse_args(arguments)
    except SystemExit as stop:  # --help, --version, or a parse error (code 2)
        return stop.code if isinstance(stop.code, int) else 0
    if options.command is None:
        parser.print_help()
        return 0
    with warnings.catch_warnings():
        # A library warning (a skipped line of a metrics file) is one line too.
        warnings.showwarning = _one_line_warning(options.command)
        return _run(options)


def _one_line_warning(command: str):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"corridors {command}: warning: {message}", file=file or sys.stderr)

    return show


def _run(options: argparse.Namespace) -> int:
    try:
        return options.run(options)
    except KeyboardInterrupt:
        print(f"corridors {options.command}: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as error:
        if os.environ.get("CORRIDORS_TRACEBACK") == "1":
            raise
        print(f"corridors {options.command}: error: {one_line(error)}", file=sys.stderr)
        return 2
