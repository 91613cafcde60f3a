"""What corridors knows about each discrete method: its clock along a corridor, and the
convergence order measured from drifts."""

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._checks import InvalidInputError, check_beta, check_positive, check_steps

MOMENTUM_METHODS = ("momentum", "nesterov")


def matched_times(
    method: Any, lr: float | Array, n_steps: int, *, beta: float | Array = 0.9
) -> Float[Array, " n_plus_1"]:
    """Flow time reached after k = 0..n steps of `method` along a corridor.

    In a corridor GD and every consistent Runge–Kutta method step exactly on the
    gradient flow, one step of size lr per lr of flow time; heavy-ball momentum from
    rest (optax convention) reaches lr·Σ_{j=1..k}(1 − β^j)/(1 − β) after k steps
    (Lemma A.1), Nesterov lr·Σ_{j=1..k}(1 − β^{j+1})/(1 − β).

    **Arguments:**

    - `method`: "gd", "momentum", "nesterov", a Runge–Kutta name or tableau (any other
      method advances lr per step).
    - `lr`: the learning rate > 0.
    - `n_steps`: the number of steps, a static int ≥ 0.
    - `beta`: the momentum coefficient in [0, 1) ("momentum" and "nesterov" only).

    **Returns:**

    An array of shape `(n_steps + 1,)`, starting at 0.

    **Example:**

    ```python
    import corridors as cr
    print(cr.matched_times("momentum", 0.1, 2, beta=0.5))  # [0.   0.1  0.25]
    ```
    """
    where = "matched_times"
    n_steps = check_steps(where, "n_steps", n_steps)
    lr = check_positive(where, "lr", jnp.asarray(lr, jnp.result_type(float)))
    k = jnp.arange(1, n_steps + 1, dtype=lr.dtype)
    if isinstance(method, str) and method in MOMENTUM_METHODS:
        beta = check_beta(where, jnp.asarray(beta, lr.dtype))
        power = k if method == "momentum" else k + 1
        speeds = (1 - beta**power) / (1 - beta)
    else:
        speeds = jnp.ones_like(k)
    return jnp.concatenate([jnp.zeros(1, lr.dtype), lr * jnp.cumsum(speeds)])


class DriftOrder(NamedTuple):
    """A convergence order measured as a log-log least-squares slope.

    **Fields:**

    - `order`: the slope of log(distance) against log(lr).
    - `stderr`: its standard error (0 for two points, which fit exactly).
    """

    order: float
    stderr: float


def drift_order(lrs: Any, distances: Any) -> DriftOrder:
    """The log-log least-squares slope of `distances` against `lrs`, with its error.

    A method of order p drifts like C·lr^p for small lr: the slope of log(distance)
    against log(lr) measures p. This is the convention of diffrax's order tests.

    **Arguments:**

    - `lrs`: at least two distinct positive step sizes.
    - `distances`: positive, finite distances, one per step size.

    **Returns:**

    A `DriftOrder(order, stderr)`.

    **Example:**

    ```python
    import corridors as cr
    print(cr.drift_order([0.1, 0.2, 0.4], [1e-2, 4e-2, 1.6e-1]).order)  # ≈ 2.0
    ```
    """
    where = "drift_order"
    try:
        xs = np.asarray(lrs, dtype=float).ravel()
        ys = np.asarray(distances, dtype=float).ravel()
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"{where}: `lrs` and `distances` must be arrays of real numbers."
        ) from error
    if xs.shape != ys.shape:
        raise InvalidInputError(
            f"{where}: `lrs` and `distances` must have the same length, got "
            f"{xs.size} and {ys.size}."
        )
    if np.unique(xs).size < 2:
        raise InvalidInputError(f"{where}: `lrs` needs at least two distinct values.")
    for name, values in (("lrs", xs), ("distances", ys)):
        if not np.all(np.isfinite(values) & (values > 0)):
            raise InvalidInputError(
                f"{where}: every entry of `{name}` must be finite and > 0 (a zero "
                "distance has no logarithm: is the method exact here?)."
            )
    log_x, log_y = np.log(xs), np.log(ys)
    design = np.stack([log_x, np.ones_like(log_x)], axis=1)
    (slope, intercept), *_ = np.linalg.lstsq(design, log_y, rcond=None)
    dof = xs.size - 2
    if dof == 0:
        return DriftOrder(float(slope), 0.0)
    residuals = log_y - design @ np.array([slope, intercept])
    variance = residuals @ residuals / dof
    centred = log_x - log_x.mean()
    return DriftOrder(float(slope), float(np.sqrt(variance / (centred @ centred))))
