"""Argument types and the flags every subcommand shares.

Bad values are refused while parsing, so they end as argparse's one-line error and
exit code 2 (see `_main.py`), before any computation starts.
"""

import argparse
import math
import pathlib


class UsageError(Exception):
    """A value the parser cannot see is impossible (e.g. an lr above the horizon).

    `_main.main` prints it as one line on stderr and exits with code 2.
    """


def refuse_failure(result, what: str) -> None:
    """Raise `UsageError` if `result` (a `corridors.RESULTS` item, or a batch of them,
    from a call with `throw=False`) holds a failure. Commands learn of failures from
    the status, never from an error's text."""
    import jax
    import numpy as np

    import corridors as cr

    failed = np.asarray(result != cr.RESULTS.successful).ravel()
    if not failed.any():
        return
    index = int(np.argmax(failed))
    first = jax.tree.map(lambda value: np.asarray(np.ravel(value)[index]), result)
    of = f" ({failed.sum()} of {failed.size})" if failed.size > 1 else ""
    raise UsageError(f"{what}{of}: {cr.RESULTS[first]}")


def positive_float(text: str) -> float:
    """A finite float > 0 (learning rates, horizons)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


def _integer_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text} must be an integer ≥ {minimum}")
    return value


def positive_int(text: str) -> int:
    """An int ≥ 1 (step counts, widths)."""
    return _integer_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An int ≥ 0 (seeds)."""
    return _integer_at_least(text, 0)


def unit_interval(text: str) -> float:
    """A float in [0, 1) (momentum coefficients)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} must lie in [0, 1)")
    return value


def existing_folder(text: str) -> pathlib.Path:
    """A folder that exists (data folders, run folders)."""
    path = pathlib.Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    return path


def add_common_flags(
    parser: argparse.ArgumentParser,
    *,
    out: str | None,
    out_help: str,
    seed: bool = True,
) -> None:
    """`--out`, `--seed`, `--quiet`, `--json`, with the same meaning everywhere."""
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--out",
        metavar="DIR",
        type=pathlib.Path,
        default=None if out is None else pathlib.Path(out),
        help=out_help,
    )
    if seed:
        group.add_argument(
            "--seed",
            type=non_negative_int,
            default=0,
            help="random seed for initial points, data splits and batches (default: 0)",
        )
    group.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar, tables or messages (errors still go to stderr)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        help="print the results as one JSON document on stdout (instead of tables)",
    )
