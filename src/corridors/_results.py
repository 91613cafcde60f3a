"""Statuses of value-dependent failures, and the `throw=` plumbing (diffrax style).

A function that can fail on the values it meets (a flow solve hitting `max_steps`, an
eigensolver that does not converge, a loss that turns NaN along a path) computes a
`RESULTS` item alongside its output. With `throw=True` (the default) a failure raises an
error naming the function the user called; with `throw=False` nothing raises and the
item is returned as `.result`, so a training loop can record it and carry on.
"""

from collections.abc import Callable, Sequence
from typing import Any

import diffrax
import equinox as eqx
import jax.numpy as jnp

from ._checks import is_concrete


class RESULTS(diffrax.RESULTS):  # type: ignore[misc]
    """Outcome of a corridors computation: `RESULTS.successful` or why it failed.

    Extends `diffrax.RESULTS` (so `max_steps_reached`, `nonfinite`, `dt_min_reached`
    and the rest keep their meaning) with the failures of corridors' own computations.
    Compare items with `==`; `RESULTS[item]` gives the message.

    **Example:**

    ```python
    import corridors as cr
    print(cr.RESULTS[cr.RESULTS.not_converged].startswith("The eigensolver"))  # True
    ```
    """

    not_converged = (
        "The eigensolver did not reach `tol` within its iteration budget; raise the "
        "budget or loosen `tol`."
    )
    diverged = (
        "The iterates became NaN or Inf along the path (they overflowed, or a step "
        "was not finite)."
    )
    nonfinite_reference = "The reference path became NaN or Inf."
    nonfinite_loss = (
        "The loss or its gradient became NaN or Inf along the path, at finite "
        "parameters (is the loss defined there?)."
    )


def as_result(result: Any) -> RESULTS:
    """A `RESULTS` item from ours or from diffrax's (or lineax's) enumeration."""
    if isinstance(result, RESULTS):
        return result
    return RESULTS.promote(result)


def first_failure(*results: RESULTS) -> RESULTS:
    """The first of `results` that is not successful (successful if none is)."""
    out = RESULTS.successful
    for result in reversed(results):
        out = RESULTS.where(result == RESULTS.successful, out, result)
    return out


Hints = Sequence[tuple[RESULTS, str]]


def raise_on_failure(where: str, value: Any, result: RESULTS, hints: Hints = ()) -> Any:
    """Tie to `value` an error, naming `where`, that fires if `result` is a failure.

    Under `jit` the error fires when the compiled code runs (`equinox.error_if`);
    eagerly, at once. `hints` are `(item, text)` pairs: `text` (static, e.g. the
    option that ran out) is appended to that item's message. Returns `value`.
    """
    messages = [f"{where}: {message}" for message in RESULTS._index_to_message]
    for item, text in hints:
        messages[item._value] += f" {text}"
    return eqx.branched_error_if(
        value,
        result != RESULTS.successful,
        jnp.asarray(result._value),
        messages,
    )


def checked(
    where: str,
    value: Any,
    result: RESULTS,
    detail: Callable[[], str],
    hints: Hints = (),
) -> Any:
    """`value`, or the error of a failed `result` naming `where` and its hint.

    Under an outer `jit` the error is tied to `value`'s arrays (`equinox.error_if`: it
    fires when the compiled code runs); eagerly it is raised here, with `detail()`
    appended: where along the computation it failed (a step, a flow time), which a
    traced value could not print.
    """
    if not is_concrete((value, result)):
        arrays, rest = eqx.partition(value, eqx.is_array)
        return eqx.combine(raise_on_failure(where, arrays, result, hints), rest)
    code = int(result._value)
    if code == RESULTS.successful._value:
        return value
    message = RESULTS._index_to_message[code]
    for item, text in hints:
        if item._value == code:
            message += f" {text}"
    raise eqx.EquinoxRuntimeError(f"{where}: {message} {detail()}")


def check_throw(where: str, throw: Any) -> bool:
    """Refuse a `throw` that is not a Python bool (it selects the compiled code)."""
    if not isinstance(throw, bool):
        from ._checks import InvalidInputError

        raise InvalidInputError(f"{where}: `throw` must be a bool, got {throw!r}.")
    return throw


def finish(
    where: str, value: Any, result: RESULTS, throw: bool, hints: Hints = ()
) -> Any:
    """`value` with the error tied on when `throw`, untouched otherwise."""
    if check_throw(where, throw):
        return raise_on_failure(where, value, result, hints)
    return value


def failed_if(flag: Any, item: RESULTS) -> RESULTS:
    """`item` where the boolean `flag` is true, else `RESULTS.successful`."""
    return RESULTS.where(flag, item, RESULTS.successful)
