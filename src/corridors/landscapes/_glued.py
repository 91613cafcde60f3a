"""A corridor glued from a cone and planes along lines: non-differentiable seams."""

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, Scalar

from .._checks import InvalidInputError
from ._base import (
    AbstractExactLandscape,
    Minimum,
    common_dtype,
    concrete,
    constant,
    positive_constant,
    rounding_tolerance,
    safe_norm,
    unit_vector,
)


class GluedCorridor(AbstractExactLandscape):
    """A corridor glued from pieces of a cone and of planes (the paper's Figure 1b):

        L(θ) = b + max(a‖x‖, ⟨w₁, x⟩, …, ⟨w_m, x⟩),     x = θ − c,

    with slope a > 0 and facet gradients ‖w_j‖ > a. Facet j is the plane ⟨w_j, x⟩
    on the circular wedge W_j = {x : ⟨w_j, x⟩ > a‖x‖} around w_j (half-angle
    α_j = arccos(a/‖w_j‖)); everywhere else L is the cone a‖x‖. The pieces meet
    continuously along the *seams* ∂W_j, made of straight lines (rays from the apex c;
    in 2-D each seam is a pair of rays), where L is not differentiable: the gradient
    jumps from w_j to a·x/‖x‖. The wedges must be disjoint (the angle between w_i and
    w_j exceeds α_i + α_j), so planes only ever meet the cone. Each open piece is a
    corridor (H∇L = 0); seams and the apex are not.

    **The exact flow.** From the cone piece, the flow runs radially to the apex at
    speed a, as on a `Cone`, and never meets a seam. From facet j it runs straight
    along −w_j, θ(t) = θ₀ − t·w_j, until it hits the seam at τ = `seam_time(params0)`
    (transversally: the plane pushes into the cone piece). There the cone's field
    −a·x/‖x‖ is tangent to the seam (a seam is a union of rays from the apex), so the
    flow turns and runs radially *along the seam ray* from z = θ(τ) to the apex,
    reached at `apex_time(params0)` = τ + ‖z − c‖/a, and stops there: a path of two
    straight segments. This is the unique (Filippov) solution: the plane's field
    points off the seam, the cone's along it. The loss falls linearly with slope
    −‖w_j‖² before the seam and −a² after it. On a seam the gradient is the cone's
    (ties go to the cone), so seam points belong to the cone piece, though
    `in_corridor` is `False` there.

    **Seam crossings by discrete methods.** A step that stays inside one piece is
    exact (the pieces are corridors). The step that straddles the seam uses the
    facet gradient for its whole length: for GD with step h, crossing during
    [t_k, t_k + h] with τ in between, the iterate overshoots the seam into the open
    cone piece and lands off the flow by exactly

        ‖θ_{k+1} − θ(t_k + h)‖ = (t_k + h − τ)·√(‖w_j‖² − a²)   (≤ h·√(‖w_j‖² − a²));

    from then on GD follows exactly the flow restarted at θ_{k+1}: radially to the
    apex along the ray through θ_{k+1}, next to the seam ray the true flow runs on.
    Momentum and Runge–Kutta methods likewise pick up an O(h) error in the crossing
    step (their stages straddle the seam) and then follow a radial flow line. Near
    the apex, methods oscillate across it within one step, as on a `Cone`. An
    adaptive solver (`corridors.gradient_flow`) crosses a seam by shrinking its steps
    there and keeps its accuracy (tested to 1e-8); as on a cone it cannot integrate
    through the apex.

    **Fields:** `center` (c, shape (d,), d ≥ 2), `slope` (a), `facets` (the w_j as
    rows, shape (m, d), m ≥ 1), `offset` (b). **Minimum:** value b at the apex c.
    """

    is_corridor: ClassVar[bool] = True

    center: Float[Array, " d"]
    slope: Scalar
    facets: Float[Array, "m d"]
    offset: Scalar

    def __init__(
        self,
        center: Any,
        slope: float | Array,
        facets: Any,
        *,
        offset: float | Array = 0.0,
    ):
        """**Arguments:**

        - `center`: the apex c, a vector of length d ≥ 2.
        - `slope`: a > 0, the slope of the cone piece.
        - `facets`: the plane gradients w_j as the rows of an (m, d) array, each with
          ‖w_j‖ > a, their wedges pairwise disjoint.
        - `offset`: b, the loss at the apex.
        """
        owner = "GluedCorridor"
        center = constant(owner, "center", center, ndim=1)
        slope = positive_constant(owner, "slope", slope)
        facets = constant(owner, "facets", facets, ndim=2)
        offset = constant(owner, "offset", offset, ndim=0)
        d = center.shape[0]
        if d < 2:
            raise InvalidInputError(
                f"{owner}: `center` must have length ≥ 2 (the pieces are glued along "
                f"lines), got length {d}."
            )
        if facets.shape[0] < 1 or facets.shape[1] != d:
            raise InvalidInputError(
                f"{owner}: `facets` must have shape (m, {d}) with m ≥ 1 (one row per "
                f"plane piece), got {facets.shape}."
            )
        _check_facets(owner, concrete(slope), concrete(facets))
        dtype = common_dtype(center, slope, facets, offset)
        self.center = center.astype(dtype)
        self.slope = slope.astype(dtype)
        self.facets = facets.astype(dtype)
        self.offset = offset.astype(dtype)

    def _template(self):
        return self.center

    def _pieces(self, x: Array) -> tuple[Scalar, Scalar, Int[Array, ""], Scalar]:
        """(cone value a‖x‖, the largest plane value, its facet index, ‖x‖)."""
        planes = self.facets @ x
        j = jnp.argmax(planes)
        radius = safe_norm(x)
        return self.slope * radius, planes[j], j, radius

    def loss(self, params: Array) -> Scalar:
        params = self.checked_params("GluedCorridor.loss", params, "params")
        cone, plane, _, _ = self._pieces(params - self.center)
        return self.offset + jnp.where(plane > cone, plane, cone)

    @eqx.filter_jit
    def piece(self, params: Array) -> Int[Array, ""]:
        """The piece θ lies in: the facet index j, or −1 for the cone piece (which
        includes the seams and the apex)."""
        params = self.checked_params("GluedCorridor.piece", params, "params")
        cone, plane, j, _ = self._pieces(params - self.center)
        return jnp.where(plane > cone, j, -1)

    def _seam(self, x0: Array) -> tuple[Scalar, Array, Bool[Array, ""]]:
        """(τ, the facet gradient w, whether x0 is in a facet); τ = 0 in the cone."""
        cone, plane, j, radius = self._pieces(x0)
        in_facet = plane > cone
        w = self.facets[j]
        # ‖x0 − τw‖·a = ⟨w, x0 − τw⟩: the smaller root, in a cancellation-free form.
        p, q, s2 = plane, w @ w, self.slope**2
        spread = jnp.maximum(q * radius**2 - p**2, 0.0) / (q - s2)
        numerator = jnp.maximum(p**2 - s2 * radius**2, 0.0) / (q - s2)
        denominator = p + self.slope * jnp.sqrt(spread)
        tau = jnp.where(
            in_facet, numerator / jnp.where(in_facet, denominator, 1.0), 0.0
        )
        return tau, w, in_facet

    @eqx.filter_jit
    def seam_time(self, params0: Array) -> Scalar:
        """τ, when the flow from `params0` reaches a seam; `inf` from the cone piece
        (whose flow never meets one)."""
        params0 = self.checked_params("GluedCorridor.seam_time", params0, "params0")
        tau, _, in_facet = self._seam(params0 - self.center)
        return jnp.where(in_facet, tau, jnp.inf)

    @eqx.filter_jit
    def apex_time(self, params0: Array) -> Scalar:
        """When the flow from `params0` reaches the apex (and stops)."""
        params0 = self.checked_params("GluedCorridor.apex_time", params0, "params0")
        x0 = params0 - self.center
        tau, w, _ = self._seam(x0)
        return tau + safe_norm(x0 - tau * w) / self.slope

    def _flow_at(self, params0: Array, t: Scalar) -> Array:
        tau, w, in_facet = self._seam(params0 - self.center)
        seam_point = params0 - tau * w
        x_seam = seam_point - self.center
        radius = safe_norm(x_seam)
        direction = unit_vector(x_seam, radius)
        radial = jnp.where(
            t - tau < radius / self.slope,
            seam_point - (t - tau) * self.slope * direction,
            self.center,
        )
        return jnp.where(in_facet & (t < tau), params0 - t * w, radial)

    @eqx.filter_jit
    def in_corridor(
        self, params: Array, *, tol: float | None = None
    ) -> Bool[Array, ""]:
        """Whether θ is inside one piece: off the apex (‖θ − c‖ > `tol`) and off every
        seam (the gap between the cone's and the highest plane's values exceeds
        `tol`·max(1, a, ‖w_j‖)). The default `tol` is rounding noise,
        64·eps·(1 + ‖θ‖ + ‖c‖)."""
        params = self.checked_params("GluedCorridor.in_corridor", params, "params")
        if tol is None:
            tol = rounding_tolerance(params, self.center)
        cone, plane, _, radius = self._pieces(params - self.center)
        steepest = jnp.maximum(1.0, jnp.max(jnp.linalg.norm(self.facets, axis=1)))
        return (radius > tol) & (jnp.abs(cone - plane) > tol * steepest)

    @property
    def minimum(self) -> Minimum:
        return Minimum(self.offset, self.center)


def _check_facets(owner: str, slope: Any, facets: Any) -> None:
    """Refuse facets that never appear or whose wedges overlap (concrete values only)."""
    if slope is None or facets is None:
        return
    slope = float(slope)
    norms = np.linalg.norm(facets, axis=1)
    for j, norm in enumerate(norms):
        if not norm > slope:
            raise InvalidInputError(
                f"{owner}: facet {j} has ‖w_{j}‖ = {norm:.6g} ≤ slope = {slope:.6g}; "
                "a plane piece needs a steeper gradient than the cone, or it never "
                "shows."
            )
    half_angles = np.arccos(np.clip(slope / norms, -1.0, 1.0))
    units = facets / norms[:, None]
    for i in range(len(norms)):
        for j in range(i + 1, len(norms)):
            angle = float(np.arccos(np.clip(units[i] @ units[j], -1.0, 1.0)))
            if angle <= half_angles[i] + half_angles[j] + 1e-9:
                raise InvalidInputError(
                    f"{owner}: the wedges of facets {i} and {j} overlap (angle "
                    f"{angle:.4g} ≤ α_{i} + α_{j} = "
                    f"{half_angles[i] + half_angles[j]:.4g}); two planes would meet "
                    "along a crease where the flow slides instead of crossing."
                )
