"""The Rosenbrock function: a standard curved valley, far from a corridor."""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Scalar

from .._checks import InvalidInputError
from ._base import (
    NO_EXACT_FLOW,
    AbstractLandscape,
    Minimum,
    _Absent,
    checked_like,
    common_dtype,
    concrete,
    constant,
    positive_constant,
)


class Rosenbrock(AbstractLandscape):
    """The (chained) Rosenbrock function in dimension d ≥ 2,

        L(θ) = Σ_{i=1}^{d−1} [ b·(θ_{i+1} − θ_i²)² + (a − θ_i)² ],

    a curved, flat-bottomed valley: a standard non-corridor test problem (H∇L ≠ 0
    almost everywhere). Its gradient flow has no closed form, so `exact_flow` is
    absent (accessing it raises `NoExactFlowError`, an `AttributeError`); solve it with
    `corridors.gradient_flow(landscape.loss, params0, ts)`, with `solver="stiff"` for
    large b.

    **Fields:** `a`, `b` (> 0), `dim` (d, static). **Minimum:** value 0 at (a, a²)
    for d = 2, and at (a, …, a) for a ∈ {0, 1} in any dimension; `None` (no closed
    form) otherwise.
    """

    a: Scalar
    b: Scalar
    dim: int = eqx.field(static=True)

    exact_flow = _Absent(NO_EXACT_FLOW)

    def __init__(
        self, dim: int = 2, *, a: float | Array = 1.0, b: float | Array = 100.0
    ):
        """**Arguments:**

        - `dim`: the dimension d ≥ 2.
        - `a`: the valley's target coordinate (default 1).
        - `b`: the valley's steepness > 0 (default 100).
        """
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
            raise InvalidInputError(
                f"Rosenbrock: `dim` must be an int ≥ 2, got {dim!r}."
            )
        a = constant("Rosenbrock", "a", a, ndim=0)
        b = positive_constant("Rosenbrock", "b", b)
        dtype = common_dtype(a, b)
        self.a, self.b, self.dim = a.astype(dtype), b.astype(dtype), dim

    def loss(self, params: Float[Array, " d"]) -> Scalar:
        params = checked_like(
            "Rosenbrock.loss", params, "params", jnp.zeros(self.dim), "Rosenbrock"
        )
        head, tail = params[:-1], params[1:]
        return jnp.sum(self.b * (tail - head**2) ** 2 + (self.a - head) ** 2)

    @property
    def minimum(self) -> Minimum | None:
        a = concrete(self.a)
        if a is None:
            raise InvalidInputError("Rosenbrock.minimum: needs concrete constants.")
        a = float(a)
        if self.dim == 2:
            location = jnp.array([a, a * a], self.a.dtype)
        elif a in (0.0, 1.0):
            location = jnp.full(self.dim, a, self.a.dtype)
        else:
            return None
        return Minimum(jnp.zeros((), self.a.dtype), location)
