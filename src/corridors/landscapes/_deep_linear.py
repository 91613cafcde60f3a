"""A two-layer linear network: a standard non-convex, non-corridor problem."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, Scalar

from .._checks import InvalidInputError
from ._base import (
    NO_EXACT_FLOW,
    AbstractLandscape,
    Minimum,
    _Absent,
    checked_like,
    constant,
)


class DeepLinear(AbstractLandscape):
    """A two-layer linear network fitting a matrix (whitened regression),

        L(W₁, W₂) = ½‖W₂W₁ − M‖_F²,     W₁: (hidden, n_in),  W₂: (n_out, hidden),

    a standard non-convex test problem (Saxe et al., 2014) with a continuum of
    minimizers (W₂R⁻¹, RW₁) and saddles; it is not a corridor (H∇L ≠ 0 off critical
    points) and its gradient flow has no closed form for general initializations, so
    `exact_flow` is absent (use `corridors.gradient_flow`). Params are the tuple
    `(W1, W2)`.

    **Fields:** `target` (M, shape (n_out, n_in)), `hidden` (static).
    **Minimum:** by Eckart–Young, value ½Σ_{i>hidden} σᵢ² (σ the singular values of M;
    0 when hidden ≥ rank M), at the balanced factorization W₁ = Σ_k^{1/2}V_kᵀ,
    W₂ = U_kΣ_k^{1/2} of the truncated SVD (zero-padded to `hidden`).
    """

    target: Float[Array, "n_out n_in"]
    hidden: int = eqx.field(static=True)

    exact_flow = _Absent(NO_EXACT_FLOW)

    def __init__(self, target: Any, hidden: int):
        """**Arguments:**

        - `target`: the matrix M to fit, shape (n_out, n_in).
        - `hidden`: the width of the hidden layer, an int ≥ 1.
        """
        target = constant("DeepLinear", "target", target, ndim=2)
        if 0 in target.shape:
            raise InvalidInputError(
                f"DeepLinear: `target` must be non-empty, got {target.shape}."
            )
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise InvalidInputError(
                f"DeepLinear: `hidden` must be an int ≥ 1, got {hidden!r}."
            )
        self.target, self.hidden = target, hidden

    def _template(self) -> tuple[Array, Array]:
        n_out, n_in = self.target.shape
        dtype = self.target.dtype
        return jnp.zeros((self.hidden, n_in), dtype), jnp.zeros(
            (n_out, self.hidden), dtype
        )

    def loss(self, params: tuple[Array, Array]) -> Scalar:
        w1, w2 = checked_like(
            "DeepLinear.loss", params, "params", self._template(), "DeepLinear"
        )
        return 0.5 * jnp.sum((w2 @ w1 - self.target) ** 2)

    def init(self, key: PRNGKeyArray, *, scale: float = 1.0) -> tuple[Array, Array]:
        """Random params (W1, W2) with entries N(0, scale²/fan_in)."""
        k1, k2 = jax.random.split(key)
        w1, w2 = self._template()
        dtype = self.target.dtype
        return (
            scale * jax.random.normal(k1, w1.shape, dtype) / jnp.sqrt(w1.shape[1]),
            scale * jax.random.normal(k2, w2.shape, dtype) / jnp.sqrt(w2.shape[1]),
        )

    @property
    def minimum(self) -> Minimum:
        u, sigma, vt = jnp.linalg.svd(self.target, full_matrices=False)
        k = min(self.hidden, sigma.shape[0])
        root = jnp.sqrt(sigma[:k])
        w1, w2 = (jnp.zeros_like(x) for x in self._template())
        w1 = w1.at[:k].set(root[:, None] * vt[:k])
        w2 = w2.at[:, :k].set(u[:, :k] * root[None, :])
        value = 0.5 * jnp.sum(sigma[k:] ** 2)
        return Minimum(value, (w1, w2))
