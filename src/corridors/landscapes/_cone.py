"""Cones a‖θ − c‖ + b and concave cones b − a‖θ − c‖: corridors away from the apex."""

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, PyTree, Scalar

from ._base import (
    AbstractExactLandscape,
    Minimum,
    common_dtype,
    constant,
    constant_tree,
    positive_constant,
    rounding_tolerance,
    tree_norm,
)


def _radial(params: PyTree, center: PyTree) -> tuple[PyTree, Scalar, PyTree]:
    """(θ − c, ‖θ − c‖, (θ − c)/‖θ − c‖ or 0 at the apex)."""
    offset = jax.tree.map(jnp.subtract, params, center)
    radius = tree_norm(offset)
    positive = radius > 0
    safe = jnp.where(positive, radius, 1.0)
    direction = jax.tree.map(lambda x: jnp.where(positive, x / safe, 0.0), offset)
    return offset, radius, direction


class _AbstractCone(AbstractExactLandscape):
    is_corridor: ClassVar[bool] = True

    center: PyTree
    slope: Scalar
    offset: Scalar

    def __init__(self, center: Any, slope: float | Array, offset: float | Array = 0.0):
        """**Arguments:**

        - `center`: the apex c, an array or a pytree of arrays (params then have its
          structure; the norm runs over all leaves).
        - `slope`: a > 0, the norm of the gradient everywhere off the apex.
        - `offset`: b, the loss at the apex.
        """
        name = type(self).__name__
        center = constant_tree(name, "center", center)
        slope = positive_constant(name, "slope", slope)
        offset = constant(name, "offset", offset, ndim=0)
        dtype = common_dtype(slope, offset, *jax.tree.leaves(center))
        self.center = jax.tree.map(lambda x: x.astype(dtype), center)
        self.slope = slope.astype(dtype)
        self.offset = offset.astype(dtype)

    def _template(self) -> PyTree:
        return self.center

    @eqx.filter_jit
    def radius(self, params: PyTree) -> Scalar:
        """‖θ − c‖, the distance from the apex."""
        params = self.checked_params(f"{type(self).__name__}.radius", params, "params")
        return _radial(params, self.center)[1]

    @eqx.filter_jit
    def in_corridor(
        self, params: PyTree, *, tol: float | None = None
    ) -> Bool[Array, ""]:
        """Whether θ is off the apex, ‖θ − c‖ > `tol` (there H∇L = 0 exactly).

        The default `tol` is rounding noise, 64·eps·(1 + ‖θ‖ + ‖c‖).
        """
        params = self.checked_params(
            f"{type(self).__name__}.in_corridor", params, "params"
        )
        if tol is None:
            tol = rounding_tolerance(params, self.center)
        return _radial(params, self.center)[1] > tol


class Cone(_AbstractCone):
    """The cone L(θ) = a‖θ − c‖ + b, with slope a > 0 (paper, Section 2: cones are
    corridors).

    Off the apex ∇L = a·u with u = (θ − c)/‖θ − c‖ and H = (a/‖θ − c‖)(I − uuᵀ), so
    H∇L = 0: every point but the apex is in the corridor. The gradient flow runs
    straight to the apex at speed a,

        θ(t) = θ₀ − t·a·u₀   for t < t* = ‖θ₀ − c‖/a,      θ(t) = c   for t ≥ t*,

    reaching it in the finite time t* = `apex_time(params0)` and stopping there; the
    loss falls linearly, L = L(θ₀) − a²t, until then. Negative t gives the backward
    flow (away from the apex).

    **At the apex** L is not differentiable. The loss uses a safe norm whose gradient at
    the apex is 0 (never NaN), so every method stops if it lands exactly on c. A
    discrete method with step h lands on the flow exactly until the step that would
    cross the apex; that step overshoots to the other side, and from then on the
    iterates oscillate across the apex within distance h·a of it (GD alternates
    between two points) instead of stopping. An adaptive ODE solver
    (`corridors.gradient_flow`) can integrate up to the apex but not through it: the
    vector field flips there and the step size collapses, so it raises on `max_steps`.
    Use `exact_flow` beyond `apex_time`.

    **Fields:** `center` (c, an array or pytree), `slope` (a), `offset` (b).
    **Minimum:** value b at the apex c.
    """

    def loss(self, params: PyTree) -> Scalar:
        params = self.checked_params("Cone.loss", params, "params")
        return self.slope * _radial(params, self.center)[1] + self.offset

    def apex_time(self, params0: PyTree) -> Scalar:
        """t* = ‖θ₀ − c‖/a, the time the flow from `params0` reaches the apex."""
        return self.radius(params0) / self.slope

    def _flow_at(self, params0: PyTree, t: Scalar) -> PyTree:
        _, radius, direction = _radial(params0, self.center)
        moving = t < radius / self.slope
        return jax.tree.map(
            lambda p, c, u: jnp.where(moving, p - t * self.slope * u, c),
            params0,
            self.center,
            direction,
        )

    @property
    def minimum(self) -> Minimum:
        return Minimum(self.offset, self.center)


class ConcaveCone(_AbstractCone):
    """The concave cone L(θ) = b − a‖θ − c‖, with slope a > 0 (paper, Section 2).

    Off the apex ∇L = −a·u and H = −(a/‖θ − c‖)(I − uuᵀ), so H∇L = 0: a corridor
    everywhere but the apex, which is the maximum. The flow runs straight away from
    the apex for ever,

        θ(t) = θ₀ + t·a·u₀,     u₀ = (θ₀ − c)/‖θ₀ − c‖,

    with the loss falling linearly, L = L(θ₀) − a²t. Backwards in time it reaches the
    apex at t = −‖θ₀ − c‖/a and stays there. The flow from the apex itself is not
    unique (any direction is a solution); `exact_flow` returns the stationary one, and
    the gradient there is 0 (a safe norm, never NaN), so every method stays put.

    **Fields:** `center` (c), `slope` (a), `offset` (b). **Minimum:** `None`
    (unbounded below).
    """

    def loss(self, params: PyTree) -> Scalar:
        params = self.checked_params("ConcaveCone.loss", params, "params")
        return self.offset - self.slope * _radial(params, self.center)[1]

    def _flow_at(self, params0: PyTree, t: Scalar) -> PyTree:
        _, radius, direction = _radial(params0, self.center)
        away = t > -radius / self.slope
        return jax.tree.map(
            lambda p, c, u: jnp.where(away, p + t * self.slope * u, c),
            params0,
            self.center,
            direction,
        )

    @property
    def minimum(self) -> None:
        return None
