"""Input validation shared by the public functions.

Every check names the function and the argument. A check on a concrete value (a Python
number, or an array outside `jit`) raises `InvalidInputError` at once: a `ValueError`
that is also an `equinox.EquinoxRuntimeError`, so code written against either
convention catches it. The same check on a traced value becomes an `equinox.error_if`,
which raises when the compiled code runs. Either way the user never gets a silent NaN.
"""

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


class InvalidInputError(ValueError, eqx.EquinoxRuntimeError):
    """Bad input detected before any computation (a `ValueError`)."""


def is_concrete(x: Any) -> bool:
    """Whether every leaf of `x` has a value now (no tracers)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def known(flag: Any) -> bool | None:
    """The value of a boolean flag if it can be known now, else `None` (it is traced).

    Concrete inputs are evaluated eagerly even while an outer `jit` traces, so a check
    on a constant still fails at once.
    """
    try:
        with jax.ensure_compile_time_eval():
            return bool(flag() if callable(flag) else flag)
    except jax.errors.ConcretizationTypeError:
        return None


def _refuse(where: str, value: Any, bad: Callable[[], Any], message: str) -> Any:
    """Raise `InvalidInputError(message)` if `bad()` is known to be true; tie the check
    to `value` with `equinox.error_if` if it is traced; else return `value`."""
    verdict = known(bad)
    if verdict is None:
        return eqx.error_if(value, bad(), message)
    if verdict:
        raise InvalidInputError(message)
    return value


def float_dtype(params: Any):
    """The floating dtype of a params pytree (float32 unless it holds float64)."""
    leaves = jax.tree.leaves(params)
    if not leaves:
        return jnp.result_type(float)
    return jnp.result_type(*[jnp.asarray(leaf).dtype for leaf in leaves], jnp.float32)


def as_float_params(where: str, params: Any, name: str = "params0") -> Any:
    """Convert every leaf to a floating JAX array, refusing empty or integer pytrees."""
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise InvalidInputError(
            f"{where}: `{name}` has no array leaves (got {params!r})."
        )
    for leaf in leaves:
        dtype = jnp.asarray(leaf).dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            raise InvalidInputError(
                f"{where}: every leaf of `{name}` must be a floating-point array, got "
                f"dtype {dtype}. Cast it, e.g. `jnp.asarray(x, float)`."
            )
    return jax.tree.map(jnp.asarray, params)


def any_nonfinite(tree: Any) -> Array:
    """A boolean array: does any leaf of `tree` hold NaN or Inf?"""
    return jnp.stack(
        [~jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    ).any()


def any_nan(tree: Any) -> Array:
    """A boolean array: does any leaf of `tree` hold NaN?"""
    return jnp.stack([jnp.any(jnp.isnan(leaf)) for leaf in jax.tree.leaves(tree)]).any()


# Jitted so that on concrete arrays the reduction runs where the arrays live and only
# one bool comes back.
_any_nonfinite_jit = jax.jit(any_nonfinite)


def check_finite(where: str, name: str, tree: Any, *, tie: Any = None) -> Any:
    """Refuse NaN or Inf anywhere in `tree`.

    Returns `tie` (default: `tree`); when traced, the check runs before it is used.
    """
    tie = tree if tie is None else tie
    if not jax.tree.leaves(tree):
        return tie
    return _refuse(
        where,
        tie,
        lambda: _any_nonfinite_jit(tree),
        f"{where}: `{name}` contains NaN or Inf.",
    )


def check_positive(where: str, name: str, value: Any) -> Any:
    """Refuse a value ≤ 0 (or non-finite). Works on scalars and arrays."""
    shown = f", got {value}" if is_concrete(value) else ""
    return _refuse(
        where,
        value,
        lambda: ~jnp.all(jnp.isfinite(value) & (jnp.asarray(value) > 0)),
        f"{where}: `{name}` must be finite and > 0{shown}.",
    )


def check_nonnegative(where: str, name: str, value: Any) -> Any:
    """Refuse a value < 0 (or non-finite). Works on scalars and arrays."""
    shown = f", got {value}" if is_concrete(value) else ""
    return _refuse(
        where,
        value,
        lambda: ~jnp.all(jnp.isfinite(value) & (jnp.asarray(value) >= 0)),
        f"{where}: `{name}` must be finite and ≥ 0{shown}.",
    )


def check_beta(where: str, beta: Any) -> Any:
    """Refuse a momentum coefficient outside [0, 1)."""
    shown = f", got {beta}" if is_concrete(beta) else ""
    return _refuse(
        where,
        beta,
        lambda: ~((jnp.asarray(beta) >= 0) & (jnp.asarray(beta) < 1)),
        f"{where}: `beta` must lie in [0, 1){shown}.",
    )


def check_steps(where: str, name: str, n: Any, *, minimum: int = 0) -> int:
    """A static, non-negative integer step count (it sizes a `lax.scan`)."""
    if isinstance(n, jax.core.Tracer):
        raise InvalidInputError(
            f"{where}: `{name}` sizes the output and must be a static Python int, not a "
            "traced value (mark it static under jit)."
        )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise InvalidInputError(f"{where}: `{name}` must be an int, got {n!r}.")
    if n < minimum:
        raise InvalidInputError(f"{where}: `{name}` must be ≥ {minimum}, got {n}.")
    return int(n)


def check_increasing(where: str, name: str, ts: Any) -> Any:
    """Refuse times that are not a 1-D, finite, strictly increasing array."""
    ts = jnp.asarray(ts)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise InvalidInputError(
            f"{where}: `{name}` must be a non-empty 1-D array of times."
        )
    if not jnp.issubdtype(ts.dtype, jnp.floating):
        ts = ts.astype(jnp.result_type(float))
    ts = _refuse(
        where,
        ts,
        lambda: ~jnp.all(jnp.isfinite(ts)),
        f"{where}: `{name}` contains NaN or Inf.",
    )
    return _refuse(
        where,
        ts,
        lambda: jnp.any(jnp.diff(ts) <= 0),
        f"{where}: `{name}` must be strictly increasing.",
    )


def check_leading_axis(where: str, name: str, tree: Any) -> int:
    """The common, non-empty leading-axis length of every leaf of `tree` (a step or
    batch axis)."""
    leaves = jax.tree.leaves(tree)
    lengths = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
    if not leaves or None in lengths or len(lengths) != 1 or 0 in lengths:
        raise InvalidInputError(
            f"{where}: every leaf of `{name}` must share one non-empty leading (step or "
            f"batch) axis; got leading sizes {sorted(map(str, lengths))}."
        )
    return lengths.pop()


def check_same_structure(where: str, name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Refuse two pytrees that differ in structure or in any leaf's shape."""
    struct_a, struct_b = jax.tree.structure(a), jax.tree.structure(b)
    if struct_a != struct_b:
        raise InvalidInputError(
            f"{where}: `{name_b}` must have the same pytree structure as `{name_a}`; "
            f"got {struct_b} vs {struct_a}."
        )
    for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jnp.shape(leaf_a) != jnp.shape(leaf_b):
            raise InvalidInputError(
                f"{where}: `{name_b}` has a leaf of shape {jnp.shape(leaf_b)} where "
                f"`{name_a}` has shape {jnp.shape(leaf_a)}."
            )


def checked_params(
    where: str, loss: Callable, params: Any, args: tuple, name: str = "params0"
) -> Any:
    """The checks every public function starts with; returns the params as arrays.

    A callable `loss`, a tuple `args`, floating leaves, no NaN/Inf.
    """
    if not callable(loss):
        raise InvalidInputError(
            f"{where}: `loss` must be callable, got {type(loss).__name__}."
        )
    if not isinstance(args, tuple):
        raise InvalidInputError(
            f"{where}: `args` must be a tuple of extra arguments to `loss`, got "
            f"{type(args).__name__}; write `args=(x,)` for a single one."
        )
    params = as_float_params(where, params, name)
    return check_finite(where, name, params)


def traced_floats(args: tuple) -> tuple:
    """`args` with Python and NumPy float scalars turned into JAX arrays.

    Our kernels are `equinox.filter_jit`-ed, which would treat a Python float as static
    and recompile for every new value; as under `jax.jit`, floats are traced instead.
    Ints, bools and other objects stay static (they may set shapes or control flow).
    """
    floating = (float, complex, np.floating, np.complexfloating)
    return jax.tree.map(
        lambda x: jnp.asarray(x) if isinstance(x, floating) else x, args
    )


def check_loss(where: str, loss: Callable, params: Any, args: tuple) -> None:
    """Refuse a loss that fails on `params` or does not return a floating scalar.

    Call it inside the jitted kernel: it then runs once per compilation, abstractly
    (`jax.eval_shape`), at no cost to warm calls.
    """
    try:
        out = jax.eval_shape(lambda p: loss(p, *args), params)
    except Exception as error:  # re-raised with the argument named, cause kept
        raise InvalidInputError(
            f"{where}: calling `loss(params, *args)` failed: {error}"
        ) from error
    if not (
        hasattr(out, "shape")
        and out.shape == ()
        and jnp.issubdtype(out.dtype, jnp.floating)
    ):
        raise InvalidInputError(
            f"{where}: `loss(params, *args)` must return a floating scalar, got "
            f"{getattr(out, 'shape', type(out))} {getattr(out, 'dtype', '')}."
        )


def check_lr_array(where: str, name: str, lrs: Any) -> np.ndarray:
    """A concrete, non-empty 1-D array of positive learning rates."""
    if not is_concrete(lrs):
        raise InvalidInputError(
            f"{where}: `{name}` must be concrete (it sets step counts)."
        )
    array = np.atleast_1d(np.asarray(lrs, dtype=float))
    if array.ndim != 1 or array.size == 0:
        raise InvalidInputError(f"{where}: `{name}` must be a non-empty 1-D array.")
    if not np.all(np.isfinite(array) & (array > 0)):
        raise InvalidInputError(
            f"{where}: every entry of `{name}` must be finite and > 0."
        )
    return array


def finite_scalar_or_raise(where: str, name: str, value: Any) -> float:
    """A concrete finite Python float (used for static options such as `horizon`)."""
    try:
        out = float(value)
    except (TypeError, jax.errors.ConcretizationTypeError) as error:
        raise InvalidInputError(
            f"{where}: `{name}` must be a concrete number."
        ) from error
    if not math.isfinite(out):
        raise InvalidInputError(f"{where}: `{name}` must be finite, got {value}.")
    return out
