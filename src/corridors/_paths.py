"""Path geometry: restricted secant inequality (RSI) and error bound (EB) along a path.

For a recorded path x_0, …, x_n with gradients g_k and a reference point x* (by default
the last iterate), RSI_k = ⟨g_k, x_k − x*⟩/‖x_k − x*‖² and EB_k = ‖g_k‖/‖x_k − x*‖.
If μ ≤ RSI_k and EB_k ≤ L along the path, the step h = μ/L² contracts the distance to
x*: ‖x_{k+1} − x*‖² = (1 − 2h·RSI_k + h²·EB_k²)‖x_k − x*‖² ≤ (1 − μ²/L²)‖x_k − x*‖².
"""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from ._checks import (
    as_float_params,
    check_finite,
    check_leading_axis,
    check_outputs,
    check_same_structure,
)


def checked_path(
    where: str, iterates: Any, grads: Any, x_star: Any
) -> tuple[PyTree, PyTree, PyTree]:
    """Validate a path (iterates, grads with a step axis) and its reference point."""
    iterates = as_float_params(where, iterates, "iterates")
    grads = as_float_params(where, grads, "grads")
    check_same_structure(where, "iterates", iterates, "grads", grads)
    check_leading_axis(where, "iterates", iterates)
    if x_star is None:
        x_star = jax.tree.map(lambda leaf: leaf[-1], iterates)
    else:
        x_star = as_float_params(where, x_star, "x_star")
        one_step = jax.tree.map(lambda leaf: leaf[0], iterates)
        check_same_structure(where, "iterates[k]", one_step, "x_star", x_star)
    iterates = check_finite(where, "iterates", iterates)
    grads = check_finite(where, "grads", grads)
    x_star = check_finite(where, "x_star", x_star)
    return iterates, grads, x_star


def path_geometry(
    iterates: PyTree, grads: PyTree, x_star: PyTree | None = None
) -> tuple[Array, Array]:
    """RSI and EB at every step of a path, relative to x* (default: the last iterate).

    RSI_k = ⟨g_k, x_k − x*⟩ / ‖x_k − x*‖²  (restricted secant inequality constant),
    EB_k = ‖g_k‖ / ‖x_k − x*‖               (error bound constant),

    with inner products and norms over all leaves. On a quadratic ½(x − x*)ᵀA(x − x*)
    both lie in [λ_min(A), λ_max(A)]. μ = min RSI and L = max EB give the linear rate
    √(1 − μ²/L²) for the step μ/L² (see `corridors.lr.rsi_eb_schedule`).

    Where x_k = x* (always the last step when x* is the last iterate; also where
    ‖x_k − x*‖² underflows) both quantities are undefined; they are reported as 0.0,
    never NaN, and `rsi_eb_schedule` turns them into a zero step.

    **Arguments:**

    - `iterates`: the path, a pytree whose leaves have a leading step axis of length
      n + 1 (e.g. the output of `corridors.gd`).
    - `grads`: the gradient used at each iterate, same structure and shapes (e.g.
      `jax.vmap(jax.grad(loss))(iterates)`, or minibatch gradients; see
      `corridors.lr.measure_rsi_eb`).
    - `x_star`: the reference point, a pytree like one iterate; default the last one.

    **Returns:**

    `(rsi, eb)`, two arrays of shape `(n + 1,)`.
    """
    iterates, grads, x_star = checked_path("path_geometry", iterates, grads, x_star)
    return _path_geometry(iterates, grads, x_star)


@eqx.filter_jit
def _path_geometry(iterates, grads, x_star):
    diffs = jax.tree.map(lambda x, star: x - star[None], iterates, x_star)
    # Per step, scale the differences and the gradients by their largest entry before
    # squaring: sums of squares of a path at 1e25 would overflow (1e20 in float32).
    d_scale, g_scale = _step_scale(diffs), _step_scale(grads)
    distance2 = inner = grad2 = 0.0
    for d, g in zip(jax.tree.leaves(diffs), jax.tree.leaves(grads), strict=True):
        d = d / _broadcast(d_scale, d)
        g = g / _broadcast(g_scale, g)
        axes = tuple(range(1, d.ndim))
        distance2 = distance2 + jnp.sum(d * d, axis=axes)
        inner = inner + jnp.sum(g * d, axis=axes)
        grad2 = grad2 + jnp.sum(g * g, axis=axes)
    away = d_scale > 0
    safe_distance2 = jnp.where(away, distance2, 1)
    ratio = jnp.where(away, g_scale / jnp.where(away, d_scale, 1), 0)
    rsi = jnp.where(away, ratio * inner / safe_distance2, 0)
    eb = jnp.where(away, ratio * jnp.sqrt(grad2 / safe_distance2), 0)
    return check_outputs(
        "path_geometry",
        (rsi, eb),
        [],
        "RSI or EB (the ratio ‖g_k‖/‖x_k − x*‖ overflows)",
    )


def _step_scale(stacked: PyTree) -> Array:
    """max |entry| at every step of the leading axis (1 where the step is all zero)."""
    per_leaf = [
        jnp.max(jnp.abs(x).reshape(x.shape[0], -1), axis=1, initial=0.0)
        for x in jax.tree.leaves(stacked)
    ]
    largest = jnp.max(jnp.stack(per_leaf), axis=0)
    return largest


def _broadcast(scale: Array, leaf: Array) -> Array:
    """`scale` (one per step) shaped to divide `leaf`, 1 where the step is zero."""
    safe = jnp.where(scale > 0, scale, 1)
    return safe.reshape(safe.shape + (1,) * (leaf.ndim - 1))
