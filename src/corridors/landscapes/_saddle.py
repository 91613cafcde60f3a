"""The ruled saddle a·xy: a ruled surface that is not a corridor."""

from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Scalar

from .._checks import InvalidInputError, is_concrete
from ._base import (
    AbstractExactLandscape,
    common_dtype,
    constant,
    rounding_tolerance,
    safe_norm,
)


class RuledSaddle(AbstractExactLandscape):
    """The saddle L(x, y) = a·(x − c₁)(y − c₂), a ≠ 0 (paper, Section 2: ruled, not a
    corridor).

    Its graph is a ruled surface (a hyperbolic paraboloid): through every point pass
    two straight lines lying in it (x or y constant, along which L is linear). Yet
    ∇L = a(y − c₂, x − c₁) and H∇L = a²(x − c₁, y − c₂) ≠ 0 off the saddle point c:
    straight lines in the graph are not straight *flow* lines, and the corridor is the
    single critical point c. The flow is a hyperbola in the rotated coordinates
    u = (x − c₁) + (y − c₂), v = (x − c₁) − (y − c₂):

        u(t) = u₀·e^{−at},     v(t) = v₀·e^{at}.

    **Fields:** `scale` (a), `center` (c, shape (2,)). **Minimum:** `None` (unbounded
    below).
    """

    scale: Scalar
    center: Float[Array, " 2"]

    def __init__(self, scale: float | Array = 1.0, *, center: Any = (0.0, 0.0)):
        """**Arguments:**

        - `scale`: a, any non-zero number.
        - `center`: the saddle point c, a vector of length 2.
        """
        owner = "RuledSaddle"
        scale = constant(owner, "scale", scale, ndim=0)
        center = constant(owner, "center", center, ndim=1)
        if center.shape != (2,):
            raise InvalidInputError(
                f"{owner}: `center` must have shape (2,) (the saddle lives in 2-D), got "
                f"{center.shape}."
            )
        if is_concrete(scale) and float(scale) == 0:
            raise InvalidInputError(
                f"{owner}: `scale` must be non-zero (a = 0 is flat)."
            )
        dtype = common_dtype(scale, center)
        self.scale = scale.astype(dtype)
        self.center = center.astype(dtype)

    def _template(self):
        return self.center

    def loss(self, params: Array) -> Scalar:
        params = self.checked_params("RuledSaddle.loss", params, "params")
        x, y = params - self.center
        return self.scale * x * y

    def _flow_at(self, params0: Array, t: Scalar) -> Array:
        x, y = params0 - self.center
        u = (x + y) * jnp.exp(-self.scale * t)
        v = (x - y) * jnp.exp(self.scale * t)
        return self.center + 0.5 * jnp.stack([u + v, u - v])

    @eqx.filter_jit
    def in_corridor(
        self, params: Array, *, tol: float | None = None
    ) -> Bool[Array, ""]:
        """Whether θ is the saddle point, ‖θ − c‖ ≤ `tol` (the only place H∇L = 0;
        default: rounding noise, 64·eps·(1 + ‖θ‖ + ‖c‖))."""
        params = self.checked_params("RuledSaddle.in_corridor", params, "params")
        if tol is None:
            tol = rounding_tolerance(params, self.center)
        return safe_norm(params - self.center) <= tol

    @property
    def minimum(self) -> None:
        return None
