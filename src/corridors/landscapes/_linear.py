"""The linear landscape: a corridor everywhere."""

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, PyTree, Scalar

from .._checks import InvalidInputError
from ._base import (
    AbstractExactLandscape,
    Minimum,
    common_dtype,
    concrete,
    constant,
    constant_tree,
    tree_vdot,
)


class Linear(AbstractExactLandscape):
    """The linear loss L(θ) = ⟨w, θ⟩ + b.

    Its Hessian is 0, so H∇L = 0 everywhere: the whole space is a corridor (paper,
    Section 2, the first example of a corridor). The gradient flow is the straight line
    θ(t) = θ₀ − t·w and the loss falls linearly, L(θ(t)) = L(θ₀) − t‖w‖²
    (Prop. 2.10), for all t; gradient descent, momentum and every consistent
    Runge–Kutta method land exactly on it.

    `w` may be any pytree (params then have its structure), e.g.
    `Linear({"a": jnp.ones(3), "b": jnp.ones((2, 2))})`.

    **Fields:**

    - `w`: the gradient, a pytree of arrays.
    - `b`: the constant term, a scalar.
    """

    is_corridor: ClassVar[bool] = True

    w: PyTree
    b: Scalar

    def __init__(self, w: Any, b: float | Array = 0.0):
        """**Arguments:**

        - `w`: the (constant) gradient, an array or a pytree of arrays.
        - `b`: the value at θ = 0.
        """
        w = constant_tree("Linear", "w", w)
        b = constant("Linear", "b", b, ndim=0)
        dtype = common_dtype(b, *jax.tree.leaves(w))
        self.w = jax.tree.map(lambda x: x.astype(dtype), w)
        self.b = b.astype(dtype)

    def loss(self, params: PyTree) -> Scalar:
        params = self.checked_params("Linear.loss", params, "params")
        return tree_vdot(self.w, params) + self.b

    def _template(self) -> PyTree:
        return self.w

    def _flow_at(self, params0: PyTree, t: Scalar) -> PyTree:
        return jax.tree.map(lambda p, w: p - t * w, params0, self.w)

    def in_corridor(self, params: PyTree, *, tol: float = 0.0) -> Bool[Array, ""]:
        """Always `True`: H = 0 everywhere. (`tol` is accepted and unused.)"""
        self.checked_params("Linear.in_corridor", params, "params")
        return jnp.array(True)

    @property
    def minimum(self) -> Minimum | None:
        """`None` (unbounded below) unless w = 0; then every point is a minimizer and
        the location given is 0."""
        leaves = [concrete(leaf) for leaf in jax.tree.leaves(self.w)]
        if any(leaf is None for leaf in leaves):
            raise InvalidInputError(
                "Linear.minimum: needs concrete constants (not traced)."
            )
        if any(leaf.any() for leaf in leaves):
            return None
        return Minimum(self.b, jax.tree.map(jnp.zeros_like, self.w))
