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

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr
    A = jnp.diag(jnp.array([1.0, 4.0]))
    loss = lambda x: 0.5 * x @ A @ x                      # x* = 0, spectrum [1, 4]
    iterates = cr.gd(loss, jnp.array([1.0, 1.0]), 0.1, 5)
    rsi, eb = cr.path_geometry(iterates, iterates @ A, x_star=jnp.zeros(2))
    print(bool(jnp.all((1 <= rsi) & (rsi <= eb) & (eb <= 4))))  # True: μ ≤ RSI ≤ EB ≤ L
    ```
    """
    iterates, grads, x_star = checked_path("path_geometry", iterates, grads, x_star)
    return _path_geometry(iterates, grads, x_star)


@eqx.filter_jit
def _path_geometry(iterates, grads, x_star):
    def per_step(total, leaf_x, leaf_g, leaf_star):
        axes = tuple(range(1, leaf_x.ndim))
        diff = leaf_x - leaf_star[None]
        return (
            total[0] + jnp.sum(diff * diff, axis=axes),
            total[1] + jnp.sum(leaf_g * diff, axis=axes),
            total[2] + jnp.sum(leaf_g * leaf_g, axis=axes),
        )

    leaves = zip(
        jax.tree.leaves(iterates),
        jax.tree.leaves(grads),
        jax.tree.leaves(x_star),
        strict=True,
    )
    dtype = jnp.result_type(*jax.tree.leaves(iterates), *jax.tree.leaves(grads))
    n = jax.tree.leaves(iterates)[0].shape[0]
    total = (jnp.zeros(n, dtype),) * 3
    for leaf_x, leaf_g, leaf_star in leaves:
        total = per_step(total, leaf_x, leaf_g, leaf_star)
    distance2, inner, grad2 = total
    away = distance2 > 0
    safe_distance2 = jnp.where(away, distance2, 1)
    rsi = jnp.where(away, inner / safe_distance2, 0)
    ratio = jnp.where(away, grad2 / safe_distance2, 0)
    positive = ratio > 0
    eb = jnp.where(positive, jnp.sqrt(jnp.where(positive, ratio, 1)), 0)
    return rsi, eb
