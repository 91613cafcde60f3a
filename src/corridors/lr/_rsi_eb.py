"""Step sizes from path geometry (RSI/EB), and RSI/EB along a minibatch training path."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .._checks import (
    InvalidInputError,
    check_finite,
    check_leading_axis,
    check_loss,
    check_positive,
)
from .._paths import _path_geometry, checked_path
from .._steppers import batch_tuple


def rsi_eb_schedule(rsi: Array, eb: Array, *, safety: float | Array = 1.0) -> Array:
    """The step sizes h_k = safety·RSI_k / EB_k² prescribed by path geometry.

    One GD step of size h from x_k gives exactly
    ‖x_{k+1} − x*‖² = (1 − 2h·RSI_k + h²·EB_k²)‖x_k − x*‖²; h = RSI_k/EB_k² minimizes
    this factor, to 1 − RSI_k²/EB_k². With bounds μ ≤ RSI, EB ≤ L along the path, the
    uniform step μ/L² (`safety · min(rsi) / max(eb)²`, computed by the caller) gives the
    rate √(1 − μ²/L²) per step. `safety` < 1 trades speed for slack when RSI/EB were
    measured on a different path (or with minibatch noise).

    Steps where EB_k = 0 (x_k = x*, or a zero gradient) or RSI_k ≤ 0 (no positive step
    shrinks the distance to x*) get h_k = 0. No NaN, also under differentiation.

    **Arguments:**

    - `rsi`, `eb`: arrays of the same shape, e.g. from `corridors.path_geometry`.
    - `safety`: a factor > 0 multiplying every step.

    **Returns:**

    An array h of the shape of `rsi`; use it as `optax.sgd(lambda k: h[k])`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr
    print(cr.lr.rsi_eb_schedule(jnp.array([1.0, 2.0, 0.0]), jnp.array([2.0, 2.0, 0.0])))  # [0.25 0.5  0.  ]
    ```
    """
    where = "rsi_eb_schedule"
    rsi, eb = jnp.asarray(rsi), jnp.asarray(eb)
    if rsi.shape != eb.shape:
        raise InvalidInputError(
            f"{where}: `rsi` and `eb` must have the same shape, got {rsi.shape} and "
            f"{eb.shape}."
        )
    for name, array in (("rsi", rsi), ("eb", eb)):
        if not jnp.issubdtype(array.dtype, jnp.floating):
            raise InvalidInputError(f"{where}: `{name}` must be a floating array.")
    safety = check_positive(where, "safety", safety)
    rsi = check_finite(where, "rsi", rsi)
    eb = check_finite(where, "eb", eb)
    return _rsi_eb_schedule(rsi, eb, jnp.asarray(safety, rsi.dtype))


@jax.jit
def _rsi_eb_schedule(rsi, eb, safety):
    eb2 = eb * eb
    ok = (eb2 > 0) & (rsi > 0)
    return jnp.where(ok, safety * rsi / jnp.where(ok, eb2, 1), 0)


def measure_rsi_eb(
    loss: Callable,
    iterates: PyTree,
    batches: Any,
    args: tuple = (),
    *,
    x_star: PyTree | None = None,
) -> tuple[Array, Array]:
    """RSI and EB along a recorded training path, with minibatch gradients.

    At step k the gradient is g_k = ∇_θ loss(θ_k, *batch_k, *args), the gradient an SGD
    run takes there; `path_geometry` then gives RSI_k and EB_k relative to x* (default:
    the last iterate). Pass the iterates and the batches of a `corridors.sgd` run as
    they are: m batches and m + 1 iterates, where the final iterate has no batch of its
    own and serves only as x*.

    **Arguments:**

    - `loss`: `loss(params, *batch, *args) -> scalar`.
    - `iterates`: the path, leaves with a leading step axis of length m or m + 1.
    - `batches`: a tuple of arrays sharing a leading axis of length m (as for
      `corridors.sgd`); a single array is read as a 1-tuple.
    - `args`: extra arguments passed to `loss` after the batch.
    - `x_star`: the reference point (a pytree like one iterate); default the last
      iterate.

    **Returns:**

    `(rsi, eb)`, arrays of shape `(m,)`; entry k uses iterate k and batch k. Steps
    where x_k = x* get 0.0 (see `corridors.path_geometry`).

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    import corridors as cr
    loss = lambda th, x: 0.5 * jnp.sum((x * th) ** 2)       # one batch: a scale vector x
    batches = jax.random.uniform(jax.random.key(0), (10, 2), minval=0.5, maxval=1.5)
    iterates = cr.sgd(loss, jnp.array([2.0, -1.0]), 0.3, batches)
    rsi, eb = cr.lr.measure_rsi_eb(loss, iterates, batches)
    print(rsi.shape, eb.shape)  # (10,) (10,)
    ```
    """
    where = "measure_rsi_eb"
    batches = batch_tuple(where, batches)
    n_batches = check_leading_axis(where, "batches", batches)
    n_iterates = check_leading_axis(where, "iterates", iterates)
    if n_iterates not in (n_batches, n_batches + 1):
        raise InvalidInputError(
            f"{where}: `iterates` has {n_iterates} steps but `batches` has {n_batches}; "
            "pass one batch per iterate, or the m batches and m + 1 iterates of an SGD "
            "run."
        )
    if x_star is None:
        x_star = jax.tree.map(lambda leaf: leaf[-1], iterates)
    path = jax.tree.map(lambda leaf: leaf[:n_batches], iterates)
    first = jax.tree.map(lambda leaf: leaf[0], (path, batches))
    if not isinstance(args, tuple):
        raise InvalidInputError(
            f"{where}: `args` must be a tuple, got {type(args).__name__}."
        )
    check_loss(where, loss, first[0], (*first[1], *args))
    grads = _minibatch_grads(loss, path, batches, args)
    path, grads, x_star = checked_path(where, path, grads, x_star)
    return _path_geometry(path, grads, x_star)


@eqx.filter_jit
def _minibatch_grads(loss, path, batches, args):
    grad = jax.grad(loss)
    return jax.lax.map(lambda xb: grad(xb[0], *xb[1], *args), (path, batches))
