"""Quadratics ½θᵀAθ + bᵀθ + c, with the exact flow through the eigendecomposition."""

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Scalar

from .._checks import InvalidInputError, is_concrete
from ._base import (
    AbstractExactLandscape,
    Minimum,
    common_dtype,
    concrete,
    constant,
    matrix_tolerance,
    phi1,
    safe_norm,
)


class Quadratic(AbstractExactLandscape):
    """The quadratic L(θ) = ½θᵀAθ + bᵀθ + c, A symmetric (paper, Appendix C).

    ∇L = Aθ + b and H = A, so H∇L = A(Aθ + b): a quadratic has a corridor region only
    if A = 0 (A² = 0 ⇒ A = 0 for symmetric A). Its corridor *set* {θ : A(Aθ + b) = 0}
    is an affine subspace: the minimizers when b ∈ range A, and otherwise a family of
    straight flow lines on which ∇L is the component of b in ker A (e.g. x = 0 for
    ½x² + y). The 1-D quadratic is the paper's counterexample: GD leaves its flow.

    **The exact flow.** With A = QΛQᵀ (`eigenvalues` λᵢ, `eigenvectors` Q), z = Qᵀθ
    and β = Qᵀb, every coordinate solves zᵢ' = −λᵢzᵢ − βᵢ:

        zᵢ(t) = e^{−λᵢt}·zᵢ(0) − t·φ₁(−λᵢt)·βᵢ,      φ₁(x) = (eˣ − 1)/x,

    which is valid for singular A (φ₁(0) = 1: on ker A the flow drifts by −t·βᵢ) and
    indefinite A (growth along negative eigenvalues), forwards and backwards in time.

    **Fields:** `A` (d, d), `b` (d,), `c` (scalar), and the `eigenvalues` (ascending)
    and `eigenvectors` (columns) of A. **Minimum:** when A is positive semi-definite
    and b ∈ range A: value c − ½bᵀA⁺b at the minimum-norm minimizer −A⁺b (unique when A
    is definite); otherwise `None` (unbounded below).
    """

    A: Float[Array, "d d"]
    b: Float[Array, " d"]
    c: Scalar
    eigenvalues: Float[Array, " d"]
    eigenvectors: Float[Array, "d d"]

    def __init__(self, A: Any, b: Any = None, c: float | Array = 0.0):
        """**Arguments:**

        - `A`: a symmetric (d, d) matrix, possibly singular or indefinite.
        - `b`: a vector of length d (default 0).
        - `c`: the constant term.
        """
        owner = "Quadratic"
        A = constant(owner, "A", A, ndim=2)
        d = A.shape[0]
        if A.shape != (d, d) or d < 1:
            raise InvalidInputError(
                f"{owner}: `A` must be a square matrix, got {A.shape}."
            )
        b = jnp.zeros(d, A.dtype) if b is None else constant(owner, "b", b, ndim=1)
        if b.shape != (d,):
            raise InvalidInputError(
                f"{owner}: `b` must have shape ({d},) to match `A`, got {b.shape}."
            )
        c = constant(owner, "c", c, ndim=0)
        dtype = common_dtype(A, b, c)
        A = A.astype(dtype)
        if is_concrete(A):
            asymmetry = float(jnp.max(jnp.abs(A - A.T)))
            scale = max(1.0, float(jnp.max(jnp.abs(A))))
            tol = matrix_tolerance(dtype, d) * scale
            if asymmetry > tol:
                raise InvalidInputError(
                    f"{owner}: `A` must be symmetric; max |A − Aᵀ| = {asymmetry:.3g} "
                    f"> {tol:.3g}. Only (A + Aᵀ)/2 affects the loss: pass that."
                )
        A = 0.5 * (A + A.T)
        self.A = A
        self.b = b.astype(dtype)
        self.c = c.astype(dtype)
        self.eigenvalues, self.eigenvectors = jnp.linalg.eigh(A)

    def _template(self):
        return self.b

    def loss(self, params: Array) -> Scalar:
        params = self.checked_params("Quadratic.loss", params, "params")
        return 0.5 * params @ (self.A @ params) + self.b @ params + self.c

    def _flow_at(self, params0: Array, t: Scalar) -> Array:
        q, lam = self.eigenvectors, self.eigenvalues
        z0, beta = q.T @ params0, q.T @ self.b
        z = jnp.exp(-lam * t) * z0 - t * phi1(-lam * t) * beta
        return q @ z

    @eqx.filter_jit
    def in_corridor(
        self, params: Array, *, tol: float | None = None
    ) -> Bool[Array, ""]:
        """Whether ‖A∇L‖ ≤ `tol`·‖A‖₂·‖∇L‖, i.e. H∇L = 0 to relative precision
        `tol` (default √eps of the dtype). Always true when A = 0."""
        params = self.checked_params("Quadratic.in_corridor", params, "params")
        if tol is None:
            tol = float(np.sqrt(jnp.finfo(params.dtype).eps))
        grad = self.A @ params + self.b
        norm_a = jnp.max(jnp.abs(self.eigenvalues))
        return safe_norm(self.A @ grad) <= tol * norm_a * safe_norm(grad)

    @property
    def minimum(self) -> Minimum | None:
        lam, q, b = (concrete(x) for x in (self.eigenvalues, self.eigenvectors, self.b))
        if lam is None or q is None or b is None:
            raise InvalidInputError(
                "Quadratic.minimum: needs concrete constants (not traced)."
            )
        d = lam.shape[0]
        eps = float(np.finfo(lam.dtype).eps)
        zero = 100.0 * d * eps * max(float(np.max(np.abs(lam))), 1e-300)
        if np.any(lam < -zero):
            return None
        beta = q.T @ b
        null = np.abs(lam) <= zero
        if np.linalg.norm(beta[null]) > np.sqrt(eps) * max(1.0, np.linalg.norm(b)):
            return None
        kept = ~null
        z = np.zeros_like(beta)
        z[kept] = -beta[kept] / lam[kept]
        value = float(self.c) - 0.5 * float(np.sum(beta[kept] ** 2 / lam[kept]))
        dtype = self.A.dtype
        return Minimum(jnp.asarray(value, dtype), jnp.asarray(q @ z, dtype))
