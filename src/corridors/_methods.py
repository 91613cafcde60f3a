"""What corridors knows about each discrete method (the method registry): its family,
its convergence order, its clock along a corridor and whether a modified flow is defined
for it; and the convergence order measured from drifts."""

import dataclasses
from typing import Any, NamedTuple

import diffrax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._checks import (
    InvalidInputError,
    check_beta,
    check_lr,
    check_real,
    check_steps,
    check_storage,
)
from ._tableaux import NAMED_METHODS, explicit_solver

MOMENTUM_METHODS = ("momentum", "nesterov")
METHOD_NAMES = ("gd", *MOMENTUM_METHODS, *NAMED_METHODS)
"""Every method known by name, in the order the command line lists them."""


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """What corridors knows about a discrete method, from [`corridors.method_info`][].

    **Fields:**

    - `name`: "gd", "momentum", "nesterov", a Runge–Kutta name, or for a user's
      tableau or solver "tableau" / the solver's class name.
    - `family`: "gradient" (optax SGD: gd, momentum, nesterov) or "runge_kutta"
      (a diffrax solver stepping the gradient flow with a constant step).
    - `global_order`: p such that the drift from the gradient flow at a fixed flow
      time scales as lrᵖ (for Runge–Kutta methods `solver.order(terms)`); `None`
      where unknown.
    - `modified_flow`: whether `reference="modified"` (the first-order modified flow
      θ' = −∇L − (lr/2)H∇L of gradient descent) is defined for this method.
    - `solver`: the diffrax solver (Runge–Kutta methods), else `None`.
    """

    name: str
    family: str
    global_order: int | None
    modified_flow: bool
    solver: diffrax.AbstractSolver | None = None

    @property
    def local_order(self) -> int | None:
        """The order of the one-step drift: `global_order + 1`."""
        return None if self.global_order is None else self.global_order + 1

    @property
    def momentum(self) -> bool:
        """Heavy ball or Nesterov: its clock depends on `beta`."""
        return self.name in MOMENTUM_METHODS

    def drift_order(
        self, reference: str = "flow", *, local: bool = False
    ) -> int | None:
        """The drift order the theory predicts against `reference` ("flow" or
        "modified"), at a fixed horizon or, with `local=True`, after one step."""
        if reference == "modified":
            order = 2 if self.modified_flow else None
        else:
            order = self.global_order
        return None if order is None else order + int(local)

    def matched_times(
        self, lr: float | Array, n_steps: int, *, beta: float | Array = 0.9
    ) -> Float[Array, " n_plus_1"]:
        """[`corridors.matched_times`][] for this method."""
        return matched_times(self.name, lr, n_steps, beta=beta)


def method_info(method: Any, *, where: str = "method_info") -> MethodInfo:
    """What corridors knows about `method`: family, order, clock, modified-flow support.

    **Arguments:**

    - `method`: "gd", "momentum", "nesterov", a Runge–Kutta name ("euler",
      "midpoint", "heun", "ralston", "rk4"), an explicit `diffrax.ButcherTableau` or an
      explicit diffrax Runge–Kutta solver.
    - `where`: the name of the function the user called, for error messages.

    **Returns:**

    A [`corridors.MethodInfo`][].

    **Example:**

    ```python
    import corridors as cr
    print(cr.method_info("rk4").global_order, cr.method_info("gd").local_order)  # 4 2
    ```
    """
    if isinstance(method, str) and method in ("gd", *MOMENTUM_METHODS):
        return MethodInfo(method, "gradient", 1, method == "gd")
    if isinstance(method, str) and method not in NAMED_METHODS:
        raise InvalidInputError(
            f"{where}: unknown `method` {method!r}; choose one of {list(METHOD_NAMES)}, "
            "or pass a diffrax.ButcherTableau or an explicit diffrax solver."
        )
    if not isinstance(method, (str, diffrax.ButcherTableau, diffrax.AbstractSolver)):
        raise InvalidInputError(
            f"{where}: `method` must be one of {list(METHOD_NAMES)}, a "
            f"diffrax.ButcherTableau or an explicit diffrax solver, got "
            f"{type(method).__name__}."
        )
    solver = explicit_solver(where, method, "method")
    if isinstance(method, str):
        name = method
    elif isinstance(method, diffrax.ButcherTableau):
        name = "tableau"
    else:
        name = type(method).__name__
    # Euler is gradient descent: its modified flow is the first-order one.
    euler = isinstance(solver, diffrax.Euler)
    return MethodInfo(name, "runge_kutta", solver.order(_TERMS), euler, solver)


_TERMS = diffrax.ODETerm(lambda t, y, args: -y)


def matched_times(
    method: Any, lr: float | Array, n_steps: int, *, beta: float | Array = 0.9
) -> Float[Array, " n_plus_1"]:
    """Flow time reached after k = 0..n steps of `method` along a corridor.

    In a corridor GD and every consistent Runge–Kutta method step exactly on the
    gradient flow, one step of size lr per lr of flow time; heavy-ball momentum from
    rest (optax convention) reaches lr·Σ_{j=1..k}(1 − β^j)/(1 − β) after k steps
    (Lemma A.1), Nesterov lr·Σ_{j=1..k}(1 − β^{j+1})/(1 − β).

    **Arguments:**

    - `method`: "gd", "momentum", "nesterov", a Runge–Kutta name, an explicit
      `diffrax.ButcherTableau` or an explicit diffrax solver (as
      [`corridors.method_info`][]; anything else is refused).
    - `lr`: the learning rate > 0, a scalar.
    - `n_steps`: the number of steps, a static int ≥ 0.
    - `beta`: the momentum coefficient in [0, 1), a scalar ("momentum" and
      "nesterov" only).

    **Returns:**

    An array of shape `(n_steps + 1,)`, starting at 0.

    **Example:**

    ```python
    import corridors as cr
    print(cr.matched_times("momentum", 0.1, 2, beta=0.5))  # [0.   0.1  0.25]
    ```
    """
    where = "matched_times"
    name = method_info(method, where=where).name  # refuses what is no method
    n_steps = check_steps(where, "n_steps", n_steps)
    lr = jnp.asarray(check_lr(where, lr), jnp.result_type(float))
    check_storage(where, f"n_steps = {n_steps:,}", n_steps + 1, lr)
    momentum = name in MOMENTUM_METHODS
    if momentum:
        beta = check_real(where, "beta", beta, scalar=True)
        beta = check_beta(where, jnp.asarray(beta, lr.dtype))
    return clock(name if momentum else "gd", lr, n_steps, beta)


def clock(name: str, lr: Array, n_steps: int, beta: Array | None) -> Array:
    """`matched_times` without the checks (inside kernels whose inputs are checked)."""
    k = jnp.arange(1, n_steps + 1, dtype=lr.dtype)
    if name in MOMENTUM_METHODS:
        power = k if name == "momentum" else k + 1
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
        # Complex input is refused, not cast: the cast would drop the imaginary part
        # with only a warning.
        if any(np.iscomplexobj(np.asarray(v)) for v in (lrs, distances)):
            raise TypeError("complex values")
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
