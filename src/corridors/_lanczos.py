"""Lanczos with full reorthogonalization, for the top eigenvalues of a symmetric operator.

Used by `sharpness`: the operator is a Hessian available only through Hessian-vector
products. Full reorthogonalization (classical Gram–Schmidt, applied twice) keeps the
Krylov basis orthonormal, so no ghost copies of converged eigenvalues appear. On a
breakdown (an invariant subspace found, β = 0) the iteration restarts from a fresh random
direction orthogonal to the basis, which is how exactly repeated eigenvalues are found.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

# Convergence is tested every few iterations: an eigendecomposition of the m×m
# tridiagonal matrix costs more than a Hessian-vector product on small models.
_CHECK_EVERY = 4


class LanczosResult(NamedTuple):
    eigenvalues: Float[Array, " k"]  # descending
    residuals: Float[Array, " k"]  # ‖H u − θ u‖ of each Ritz pair
    iterations: Array
    converged: Array


def _orthogonalize(basis: Array, vector: Array) -> Array:
    # Rows of `basis` not yet filled are zero and drop out of the projection.
    vector = vector - basis.T @ (basis @ vector)
    return vector - basis.T @ (basis @ vector)


def _ritz(alpha: Array, beta: Array, size: Array) -> tuple[Array, Array]:
    """Eigen-decomposition of the leading `size`×`size` block of the tridiagonal matrix.

    Padding rows get a diagonal below every eigenvalue of the block (Gershgorin), so the
    top eigenpairs of the padded matrix are those of the block.
    """
    m = alpha.shape[0]
    index = jnp.arange(m)
    active = index < size
    bound = jnp.max(jnp.where(active, jnp.abs(alpha), 0.0)) + 2 * jnp.max(jnp.abs(beta))
    diagonal = jnp.where(active, alpha, -3 * bound - 1)
    off = jnp.where(index[:-1] < size - 1, beta[:-1], 0.0)
    tridiagonal = jnp.diag(diagonal) + jnp.diag(off, 1) + jnp.diag(off, -1)
    return jnp.linalg.eigh(tridiagonal)


def lanczos_top(
    matvec: Callable[[Array], Array],
    start: Float[Array, " n"],
    *,
    k: int,
    tol: float,
    max_iter: int,
    min_iter: int,
    key: PRNGKeyArray,
) -> LanczosResult:
    """Top-`k` eigenvalues of the symmetric operator `matvec` (dimension `start.size`).

    Stops when every one of the top `k` Ritz pairs has residual ≤ `tol`·|θ| (or is at
    the round-off floor, 10·eps·‖T‖), after at least `min_iter` iterations, or when the
    Krylov space fills the whole space.
    """
    n = start.shape[0]
    dtype = start.dtype
    eps = jnp.finfo(dtype).eps
    basis = (
        jnp.zeros((max_iter + 1, n), dtype).at[0].set(start / jnp.linalg.norm(start))
    )
    alpha = jnp.zeros(max_iter, dtype)
    beta = jnp.zeros(max_iter, dtype)

    def top_pairs(alpha, beta, size):
        theta, vectors = _ritz(alpha, beta, size)
        theta_top = theta[::-1][:k]
        # Residual of a Ritz pair: |β_last| · |last component of its eigenvector|.
        last = jnp.take(vectors, size - 1, axis=0)[::-1][:k]
        residual = jnp.abs(jnp.take(beta, size - 1) * last)
        return theta_top, residual

    def is_done(alpha, beta, size):
        theta, residual = top_pairs(alpha, beta, size)
        scale = jnp.max(jnp.abs(alpha)) + jnp.max(jnp.abs(beta))
        threshold = jnp.maximum(tol * jnp.abs(theta), 10 * eps * scale)
        return jnp.all(residual <= threshold)

    def cond(carry):
        j, _, _, _, done = carry
        return (j < max_iter) & ~done

    def body(carry):
        j, basis, alpha, beta, _ = carry
        v = basis[j]
        w = matvec(v)
        a = jnp.dot(v, w)
        w = _orthogonalize(basis, w)
        b = jnp.linalg.norm(w)
        scale = jnp.max(jnp.abs(alpha.at[j].set(a))) + jnp.max(beta)
        breakdown = b <= 100 * eps * jnp.maximum(scale, jnp.finfo(dtype).tiny)
        fresh = _orthogonalize(
            basis, jax.random.normal(jax.random.fold_in(key, j), (n,), dtype)
        )
        next_v = jnp.where(
            breakdown, fresh / jnp.linalg.norm(fresh), w / jnp.where(breakdown, 1, b)
        )
        b = jnp.where(breakdown, 0.0, b)
        basis = basis.at[j + 1].set(jnp.where(j + 1 < n, next_v, 0.0))
        alpha = alpha.at[j].set(a)
        beta = beta.at[j].set(b)
        size = j + 1
        check = (size >= min_iter) & ((size % _CHECK_EVERY == 0) | (size == max_iter))
        done = (size >= n) | jax.lax.cond(
            check, is_done, lambda *_: jnp.array(False), alpha, beta, size
        )
        return j + 1, basis, alpha, beta, done

    init = (jnp.array(0), basis, alpha, beta, jnp.array(False))
    size, _, alpha, beta, _ = jax.lax.while_loop(cond, body, init)
    theta, residual = top_pairs(alpha, beta, size)
    full_space = size >= n
    converged = full_space | is_done(alpha, beta, size)
    return LanczosResult(theta, jnp.where(full_space, 0.0, residual), size, converged)
