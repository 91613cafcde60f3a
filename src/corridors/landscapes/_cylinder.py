"""Cylinder cones a‖P(θ − c)‖ + b, P an orthogonal projection."""

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Scalar

from .._checks import InvalidInputError, is_concrete
from ._base import (
    AbstractExactLandscape,
    Minimum,
    common_dtype,
    constant,
    matrix_tolerance,
    positive_constant,
    rounding_tolerance,
    safe_norm,
)


class CylinderCone(AbstractExactLandscape):
    """The cylinder cone L(θ) = a‖P(θ − c)‖ + b, with P an orthogonal projection
    (Pᵀ = P = P²) of rank ≥ 1 and slope a > 0 (paper, Section 2: cylinder cones).

    With v = P(θ − c), ∇L = a·v/‖v‖ and H = (a/‖v‖)(P − vvᵀ/‖v‖²), so H∇L = 0 off the
    *axis* {θ : P(θ − c) = 0} = c + ker P: a corridor everywhere else. The flow moves
    straight towards the axis at speed a, leaving the component (I − P)(θ − c) alone,

        θ(t) = θ₀ − t·a·v₀/‖v₀‖   for t < t* = ‖v₀‖/a,      θ(t) = θ₀ − v₀   after,

    and stops on the axis at t* = `apex_time(params0)`. On the axis the gradient is 0
    (a safe norm, never NaN); methods with step h oscillate across the axis within h·a
    of it after crossing, as on a `Cone`. With P = I this is a `Cone`.

    The projection must be orthogonal: for an oblique one (P² = P ≠ Pᵀ) the surface is
    not a corridor, so it is refused, as are non-idempotent matrices.

    **Fields:** `center` (c, shape (d,)), `slope` (a), `projection` (P, shape (d, d)),
    `offset` (b). **Minimum:** value b; the minimizers form the axis c + ker P, and the
    location given is c.
    """

    is_corridor: ClassVar[bool] = True

    center: Float[Array, " d"]
    slope: Scalar
    projection: Float[Array, "d d"]
    offset: Scalar

    def __init__(
        self,
        center: Any,
        slope: float | Array,
        projection: Any,
        *,
        offset: float | Array = 0.0,
    ):
        """**Arguments:**

        - `center`: c, a vector of length d.
        - `slope`: a > 0.
        - `projection`: P, a symmetric idempotent (d, d) matrix of rank ≥ 1, e.g.
          `Q @ Q.T` for a (d, k) matrix Q with orthonormal columns.
        - `offset`: b, the loss on the axis.
        """
        owner = "CylinderCone"
        center = constant(owner, "center", center, ndim=1)
        slope = positive_constant(owner, "slope", slope)
        projection = constant(owner, "projection", projection, ndim=2)
        offset = constant(owner, "offset", offset, ndim=0)
        d = center.shape[0]
        if d < 1:
            raise InvalidInputError(f"{owner}: `center` must not be empty.")
        if projection.shape != (d, d):
            raise InvalidInputError(
                f"{owner}: `projection` must have shape ({d}, {d}) to match `center`, "
                f"got {projection.shape}."
            )
        dtype = common_dtype(center, slope, projection, offset)
        projection = projection.astype(dtype)
        projection = _checked_projection(owner, projection)
        projection = 0.5 * (projection + projection.T)  # exactly symmetric
        self.center = center.astype(dtype)
        self.slope = slope.astype(dtype)
        self.projection = projection
        self.offset = offset.astype(dtype)

    def _template(self):
        return self.center

    def _axis_offset(self, params: Array) -> Array:
        return self.projection @ (params - self.center)

    def loss(self, params: Array) -> Scalar:
        params = self.checked_params("CylinderCone.loss", params, "params")
        return self.slope * safe_norm(self._axis_offset(params)) + self.offset

    @eqx.filter_jit
    def distance_to_axis(self, params: Array) -> Scalar:
        """‖P(θ − c)‖, the distance from the axis c + ker P."""
        params = self.checked_params("CylinderCone.distance_to_axis", params, "params")
        return safe_norm(self._axis_offset(params))

    def apex_time(self, params0: Array) -> Scalar:
        """t* = ‖P(θ₀ − c)‖/a, the time the flow from `params0` reaches the axis."""
        return self.distance_to_axis(params0) / self.slope

    def _flow_at(self, params0: Array, t: Scalar) -> Array:
        v0 = self._axis_offset(params0)
        radius = safe_norm(v0)
        positive = radius > 0
        direction = jnp.where(positive, v0 / jnp.where(positive, radius, 1.0), 0.0)
        moving = t < radius / self.slope
        return jnp.where(moving, params0 - t * self.slope * direction, params0 - v0)

    @eqx.filter_jit
    def in_corridor(
        self, params: Array, *, tol: float | None = None
    ) -> Bool[Array, ""]:
        """Whether θ is off the axis, ‖P(θ − c)‖ > `tol` (default: rounding noise,
        64·eps·(1 + ‖θ‖ + ‖c‖))."""
        params = self.checked_params("CylinderCone.in_corridor", params, "params")
        if tol is None:
            tol = rounding_tolerance(params, self.center)
        return safe_norm(self._axis_offset(params)) > tol

    @property
    def minimum(self) -> Minimum:
        return Minimum(self.offset, self.center)


def _checked_projection(owner: str, projection: Array) -> Array:
    """Refuse a matrix that is not a non-zero orthogonal projection."""
    d = projection.shape[0]
    tol = matrix_tolerance(projection.dtype, d)
    asymmetry = jnp.max(jnp.abs(projection - projection.T))
    idempotence = jnp.max(jnp.abs(projection @ projection - projection))
    if is_concrete(projection):
        if float(asymmetry) > tol:
            raise InvalidInputError(
                f"{owner}: `projection` must be symmetric (an orthogonal projection); "
                f"max |P − Pᵀ| = {float(asymmetry):.3g} > {tol:.3g}."
            )
        if float(idempotence) > tol:
            raise InvalidInputError(
                f"{owner}: `projection` must be a projection, P @ P = P; "
                f"max |P² − P| = {float(idempotence):.3g} > {tol:.3g}."
            )
        if float(np.trace(np.asarray(projection))) < 0.5:
            raise InvalidInputError(
                f"{owner}: `projection` must have rank ≥ 1 (got the zero matrix, whose "
                "landscape is flat)."
            )
        return projection
    bad = (asymmetry > tol) | (idempotence > tol) | (jnp.trace(projection) < 0.5)
    return eqx.error_if(
        projection,
        bad,
        f"{owner}: `projection` must be a non-zero symmetric idempotent matrix.",
    )
