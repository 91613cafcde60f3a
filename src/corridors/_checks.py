"""Input validation shared by the public functions.

Every check names the function and the argument. A check on a concrete value (a Python
number or an array outside `jit`) raises `ValueError` at once; the same check on a traced
value becomes an `equinox.error_if`, which raises `equinox.EquinoxRuntimeError` when the
compiled code runs. Either way the user never gets a silent NaN.
"""

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


def is_concrete(x: Any) -> bool:
    """Whether every leaf of `x` has a value now (no tracers)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


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
        raise ValueError(f"{where}: `{name}` has no array leaves (got {params!r}).")
    for leaf in leaves:
        dtype = jnp.asarray(leaf).dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(
                f"{where}: every leaf of `{name}` must be a floating-point array, got "
                f"dtype {dtype}. Cast it, e.g. `jnp.asarray(x, float)`."
            )
    return jax.tree.map(jnp.asarray, params)


def any_nonfinite(tree: Any) -> Array:
    """A traced boolean: does any leaf of `tree` hold NaN or Inf?"""
    return jnp.stack(
        [~jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    ).any()


def check_finite(where: str, name: str, tree: Any, *, tie: Any = None) -> Any:
    """Refuse NaN or Inf anywhere in `tree`.

    Returns `tie` (default: `tree`); when traced, the check runs before it is used.
    """
    tie = tree if tie is None else tie
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return tie
    message = f"{where}: `{name}` contains NaN or Inf."
    if is_concrete(tree):
        for leaf in leaves:
            if not np.all(np.isfinite(np.asarray(leaf))):
                raise ValueError(message)
        return tie
    return eqx.error_if(tie, any_nonfinite(tree), message)


def check_positive(where: str, name: str, value: Any) -> Any:
    """Refuse a value ≤ 0 (or non-finite). Works on scalars and arrays."""
    if is_concrete(value):
        array = np.asarray(value, dtype=float)
        if not (np.all(np.isfinite(array)) and np.all(array > 0)):
            raise ValueError(f"{where}: `{name}` must be finite and > 0, got {value}.")
        return value
    value = jnp.asarray(value)
    bad = ~jnp.all(jnp.isfinite(value) & (value > 0))
    return eqx.error_if(value, bad, f"{where}: `{name}` must be finite and > 0.")


def check_beta(where: str, beta: Any) -> Any:
    """Refuse a momentum coefficient outside [0, 1)."""
    if is_concrete(beta):
        b = float(np.asarray(beta))
        if not (0.0 <= b < 1.0):
            raise ValueError(f"{where}: `beta` must lie in [0, 1), got {beta}.")
        return beta
    beta = jnp.asarray(beta)
    bad = ~((beta >= 0) & (beta < 1))
    return eqx.error_if(beta, bad, f"{where}: `beta` must lie in [0, 1).")


def check_steps(where: str, name: str, n: Any, *, minimum: int = 0) -> int:
    """A static, non-negative integer step count (it sizes a `lax.scan`)."""
    if isinstance(n, jax.core.Tracer):
        raise ValueError(
            f"{where}: `{name}` sizes the output and must be a static Python int, not a "
            "traced value (mark it static under jit)."
        )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{where}: `{name}` must be an int, got {n!r}.")
    if n < minimum:
        raise ValueError(f"{where}: `{name}` must be ≥ {minimum}, got {n}.")
    return int(n)


def check_increasing(where: str, name: str, ts: Any) -> Any:
    """Refuse times that are not a 1-D, finite, strictly increasing array."""
    ts = jnp.asarray(ts)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"{where}: `{name}` must be a non-empty 1-D array of times.")
    if not jnp.issubdtype(ts.dtype, jnp.floating):
        ts = ts.astype(jnp.result_type(float))
    if is_concrete(ts):
        array = np.asarray(ts)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{where}: `{name}` contains NaN or Inf.")
        if np.any(np.diff(array) <= 0):
            first = int(np.argmax(np.diff(array) <= 0))
            raise ValueError(
                f"{where}: `{name}` must be strictly increasing, but {name}[{first + 1}]"
                f" = {array[first + 1]} ≤ {name}[{first}] = {array[first]}."
            )
        return ts
    bad = ~jnp.all(jnp.isfinite(ts)) | jnp.any(jnp.diff(ts) <= 0)
    return eqx.error_if(
        ts, bad, f"{where}: `{name}` must be finite and strictly increasing."
    )


def check_same_structure(where: str, name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Refuse two pytrees that differ in structure or in any leaf's shape."""
    struct_a, struct_b = jax.tree.structure(a), jax.tree.structure(b)
    if struct_a != struct_b:
        raise ValueError(
            f"{where}: `{name_b}` must have the same pytree structure as `{name_a}`; "
            f"got {struct_b} vs {struct_a}."
        )
    for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jnp.shape(leaf_a) != jnp.shape(leaf_b):
            raise ValueError(
                f"{where}: `{name_b}` has a leaf of shape {jnp.shape(leaf_b)} where "
                f"`{name_a}` has shape {jnp.shape(leaf_a)}."
            )


def check_loss(where: str, loss: Callable, params: Any, args: tuple) -> None:
    """Refuse a non-callable loss, a non-tuple `args`, or a loss that is not a scalar.

    Runs `loss` abstractly (`jax.eval_shape`), so it costs no FLOPs.
    """
    if not callable(loss):
        raise ValueError(
            f"{where}: `loss` must be callable, got {type(loss).__name__}."
        )
    if not isinstance(args, tuple):
        raise ValueError(
            f"{where}: `args` must be a tuple of extra arguments to `loss`, got "
            f"{type(args).__name__}; write `args=(x,)` for a single one."
        )
    try:
        out = jax.eval_shape(lambda p: loss(p, *args), params)
    except Exception as error:  # re-raised with the argument named, cause kept
        raise ValueError(
            f"{where}: calling `loss(params, *args)` failed: {error}"
        ) from error
    if not (
        hasattr(out, "shape")
        and out.shape == ()
        and jnp.issubdtype(out.dtype, jnp.floating)
    ):
        raise ValueError(
            f"{where}: `loss(params, *args)` must return a floating scalar, got "
            f"{getattr(out, 'shape', type(out))} {getattr(out, 'dtype', '')}."
        )


def check_lr_array(where: str, name: str, lrs: Any) -> np.ndarray:
    """A concrete, non-empty 1-D array of positive learning rates."""
    if not is_concrete(lrs):
        raise ValueError(f"{where}: `{name}` must be concrete (it sets step counts).")
    array = np.atleast_1d(np.asarray(lrs, dtype=float))
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{where}: `{name}` must be a non-empty 1-D array.")
    if not np.all(np.isfinite(array) & (array > 0)):
        raise ValueError(f"{where}: every entry of `{name}` must be finite and > 0.")
    return array


def finite_scalar_or_raise(where: str, name: str, value: Any) -> float:
    """A concrete finite Python float (used for static options such as `horizon`)."""
    try:
        out = float(value)
    except (TypeError, jax.errors.ConcretizationTypeError) as error:
        raise ValueError(f"{where}: `{name}` must be a concrete number.") from error
    if not math.isfinite(out):
        raise ValueError(f"{where}: `{name}` must be finite, got {value}.")
    return out
