"""Thick-restart Lanczos for extreme eigenpairs of a symmetric operator.

Used by `sharpness` and `block_sharpness`: the operator is a Hessian available only
through Hessian-vector products. The basis is kept orthonormal by full
reorthogonalization (classical Gram–Schmidt, applied twice), so no ghost copies of
converged eigenvalues appear, and the projected matrix T = VᵀAV is filled from those same
projections (dense, not tridiagonal, which is what lets a restart keep Ritz vectors).

`capacity` bounds the memory: the basis holds `capacity + 1` vectors. With
`capacity ≥ max_iter` the iteration never restarts (plain Lanczos, the fastest in
products). Otherwise, when the basis is full, it keeps the `keep` wanted Ritz vectors
plus the residual direction and goes on (Wu & Simon's thick restart): memory
(capacity + 1)·n, at the price of a few more products. On a breakdown (an invariant
subspace found) the iteration continues from a fresh random direction orthogonal to
the basis, which is how exactly repeated eigenvalues are found.
"""

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._checks import InvalidInputError, check_finite
from ._results import RESULTS

Which = Literal["largest", "smallest", "magnitude"]
WHICH = ("largest", "smallest", "magnitude")

# A restart rotates the basis in place, n / _CHUNKS columns at a time, so it needs a
# buffer of (capacity + 1)·n / _CHUNKS floats instead of a second basis.
_CHUNKS = 8
# A full-basis cold start tests convergence every few products: an eigendecomposition
# of the projected matrix costs more than a Hessian-vector product on small models.
_CHECK_EVERY = 4


class LanczosResult(NamedTuple):
    eigenvalues: Float[Array, " k"]  # the wanted ones, most extreme first
    eigenvectors: Float[Array, "k n"]  # unit Ritz vectors, one per row
    residuals: Float[Array, " k"]  # ‖A u − θ u‖ of each Ritz pair
    iterations: Array  # operator applications
    converged: Array


def _orthogonalize(basis: Array, vector: Array) -> Array:
    # Rows of `basis` not yet filled are zero and drop out of the projection.
    vector = vector - basis.T @ (basis @ vector)
    return vector - basis.T @ (basis @ vector)


def _score(theta: Array, which: Which) -> Array:
    """Larger is more wanted."""
    if which == "largest":
        return theta
    if which == "smallest":
        return -theta
    return jnp.abs(theta)


def _ritz(t: Array, size: Array, which: Which, count: int) -> tuple[Array, Array]:
    """The `count` most wanted eigenpairs of the leading `size`×`size` block of `t`.

    Padding rows get a diagonal beyond every eigenvalue of the block (Gershgorin) and
    are then excluded, so any `which` sees only the block's eigenpairs.
    """
    m = t.shape[0]
    active = jnp.arange(m) < size
    both = active[:, None] & active[None, :]
    t = jnp.where(both, t, 0.0)
    bound = jnp.max(jnp.sum(jnp.abs(t), axis=1))
    t = t + jnp.diag(jnp.where(active, 0.0, 3 * bound + 1))
    theta, vectors = jnp.linalg.eigh(t)
    score = jnp.where(theta > 2 * bound + 0.5, -jnp.inf, _score(theta, which))
    order = jnp.argsort(-score, stable=True)[:count]
    return theta[order], vectors[:, order]


def lanczos(
    matvec: Callable[[Array], Array],
    start: Float[Array, " n"],
    *,
    k: int,
    which: Which,
    tol: float | Array,
    max_iter: int,
    capacity: int,
    min_iter: int,
    check_every: int,
    key: PRNGKeyArray,
) -> LanczosResult:
    """The `k` most wanted eigenpairs of the symmetric operator `matvec`.

    Stops when every one of them has residual ≤ `tol`·|θ| (or is at the round-off
    floor, 10·eps·‖T‖) after at least `min_iter` products, when the basis spans the
    whole space, or after `max_iter` products.
    """
    n = start.shape[0]
    dtype = start.dtype
    eps = jnp.finfo(dtype).eps
    capacity = min(capacity, n)
    restarts = capacity < max_iter and capacity < n
    keep = min(capacity - 1, k + max(1, (capacity - k) // 2))

    def random_unit(j, basis):
        fresh = jax.random.normal(jax.random.fold_in(key, j), (n,), dtype)
        fresh = _orthogonalize(basis, fresh)
        return fresh / jnp.linalg.norm(fresh)

    start = start / jnp.linalg.norm(start)
    basis = jnp.zeros((capacity + 1, n), dtype).at[0].set(start)
    t = jnp.zeros((capacity, capacity), dtype)

    def wanted(t, size):
        theta, y = _ritz(t, size, which, k)
        return theta, y

    def is_done(t, beta, size):
        theta, y = wanted(t, size)
        residual = jnp.abs(beta * jnp.take(y, size - 1, axis=0))
        scale = jnp.max(jnp.sum(jnp.abs(t), axis=1))
        threshold = jnp.maximum(tol * jnp.abs(theta), 10 * eps * scale)
        return jnp.all(residual <= threshold)

    chunk, tail = n // _CHUNKS, n - _CHUNKS * (n // _CHUNKS)

    def restart(basis, t, full):
        # Run at every step, as the identity unless the basis is full: a rotation of
        # a few vectors costs far less than a product, and a `lax.cond` would copy
        # the basis.
        theta, y = _ritz(t, jnp.asarray(capacity), which, keep)
        rotation = jnp.zeros((capacity + 1, capacity + 1), dtype)
        rotation = rotation.at[:keep, :capacity].set(y.T)
        rotation = rotation.at[keep, capacity].set(1.0)  # the residual direction
        rotation = jnp.where(full, rotation, jnp.eye(capacity + 1, dtype=dtype))

        def rotate(c, basis):
            block = jax.lax.dynamic_slice_in_dim(basis, c * chunk, chunk, axis=1)
            return jax.lax.dynamic_update_slice_in_dim(
                basis, rotation @ block, c * chunk, axis=1
            )

        basis = jax.lax.fori_loop(0, _CHUNKS, rotate, basis)
        if tail:
            basis = basis.at[:, n - tail :].set(rotation @ basis[:, n - tail :])
        reset = jnp.zeros_like(t).at[jnp.arange(keep), jnp.arange(keep)].set(theta)
        return basis, jnp.where(full, reset, t)

    def cond(carry):
        products, _, _, _, _, done = carry
        return (products < max_iter) & ~done

    def body(carry):
        products, size, basis, t, beta, _ = carry
        v = basis[size]
        w = matvec(v)
        h = basis @ w
        w = w - basis.T @ h
        correction = basis @ w
        w = w - basis.T @ correction
        h = (h + correction)[:capacity]
        t = t.at[:, size].set(h).at[size, :].set(h)
        b = jnp.linalg.norm(w)
        scale = jnp.max(jnp.sum(jnp.abs(t), axis=1))
        breakdown = b <= 100 * eps * jnp.maximum(scale, jnp.finfo(dtype).tiny)
        size = size + 1
        products = products + 1
        next_v = jnp.where(
            breakdown, random_unit(products, basis), w / jnp.where(breakdown, 1, b)
        )
        beta = jnp.where(breakdown, 0.0, b)
        basis = basis.at[size].set(jnp.where(size < n, next_v, 0.0))
        check = (products >= min_iter) & (
            (products % check_every == 0) | (size == capacity)
        )
        done = (size >= n) | jax.lax.cond(
            check, is_done, lambda *_: jnp.array(False), t, beta, size
        )
        if restarts:
            full = (size == capacity) & ~done & (products < max_iter)
            basis, t = restart(basis, t, full)
            size = jnp.where(full, keep, size)
        return products, size, basis, t, beta, done

    zero = jnp.array(0)
    init = (zero, zero, basis, t, jnp.zeros((), dtype), jnp.array(False))
    products, size, basis, t, beta, _ = jax.lax.while_loop(cond, body, init)
    theta, y = wanted(t, size)
    residual = jnp.abs(beta * jnp.take(y, size - 1, axis=0))
    full_space = size >= n
    converged = full_space | is_done(t, beta, size)
    # Padding y (not slicing the basis) keeps the basis from being copied.
    vectors = jnp.pad(y, ((0, 1), (0, 0))).T @ basis
    return LanczosResult(
        theta,
        vectors,
        jnp.where(full_space, 0.0, residual),
        products,
        converged,
    )


# -- the eigensolver behind `sharpness` and `block_sharpness` -------------------------

METHODS = ("auto", "lanczos", "restarted")
# "auto" keeps the whole Krylov basis while it fits in this many floats (128 MiB in
# float32), and restarts in bounded memory beyond.
_AUTO_BASIS_FLOATS = 2**25
# Extra basis vectors of the restarted method beyond the k wanted ones: the basis then
# holds k + _RESTART_EXTRA + 1 vectors.
_RESTART_EXTRA = 4


class Plan(NamedTuple):
    """Static options of one eigensolve (hashable, so a jit cache key)."""

    k: int
    which: str
    tol: float
    max_iter: int
    capacity: int
    min_iter: int
    check_every: int


def plan(
    where: str,
    n: int,
    *,
    k: int,
    tol: float,
    which: str,
    method: str,
    max_iter: int | None,
    warm: bool,
) -> Plan:
    """Check the options of an eigensolve and fix its static plan."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise InvalidInputError(f"{where}: `k` must be an int in [1, {n}], got {k!r}.")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise InvalidInputError(
            f"{where}: `tol` must be a float in (0, 1), got {tol!r}."
        )
    if which not in WHICH:
        raise InvalidInputError(
            f"{where}: `which` must be one of {WHICH}, got {which!r}."
        )
    if method not in METHODS:
        raise InvalidInputError(
            f"{where}: `method` must be one of {METHODS}, got {method!r}."
        )
    if max_iter is None:
        max_iter = max(300, 10 * k)
        max_iter = min(n, max_iter) if method != "restarted" else max_iter
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < k:
        raise InvalidInputError(
            f"{where}: `max_iter` must be an int ≥ k = {k}, got {max_iter!r}."
        )
    if method == "auto":
        fits = (min(max_iter, n) + 1) * n <= _AUTO_BASIS_FLOATS
        method = "lanczos" if fits else "restarted"
    capacity = max_iter if method == "lanczos" else k + _RESTART_EXTRA
    # A cold start checks convergence only once the basis is big enough not to miss an
    # eigenvalue; a warm start is trusted from its second product on.
    min_iter = k + 1 if warm else max(2 * k, k + 8)
    check_every = 1 if (warm or method == "restarted") else _CHECK_EVERY
    return Plan(k, which, float(tol), max_iter, capacity, min(n, min_iter), check_every)


def solve(matvec: Callable, start: Array, key: PRNGKeyArray, p: Plan) -> LanczosResult:
    return lanczos(
        matvec,
        start,
        k=p.k,
        which=p.which,  # type: ignore[arg-type]
        tol=p.tol,
        max_iter=p.max_iter,
        capacity=p.capacity,
        min_iter=p.min_iter,
        check_every=p.check_every,
        key=key,
    )


def flat_hvp(loss: Callable, params: PyTree, args: tuple) -> tuple[Array, Callable]:
    """(θ flattened, v ↦ H v on flat vectors), linearized once."""
    flat, unravel = ravel_pytree(params)
    grad_flat = lambda x: ravel_pytree(jax.grad(loss)(unravel(x), *args))[0]  # noqa: E731
    _, hvp_flat = jax.linearize(grad_flat, flat)
    return flat, hvp_flat


def init_vectors(where: str, params: PyTree, init: Any) -> Array | None:
    """`init` (a `Sharpness`, or one or several vectors shaped like `params`) as an
    array of flat vectors, one per row; None for no warm start."""
    if init is None:
        return None
    if isinstance(init, Sharpness):
        init = init.eigenvectors
    leaves, treedef = jax.tree.flatten(params)
    try:
        init_leaves = [jnp.asarray(x) for x in treedef.flatten_up_to(init)]
    except (ValueError, TypeError) as error:
        raise InvalidInputError(
            f"{where}: `init` must be a `Sharpness` result or a pytree like `params` "
            f"(optionally with a leading axis of vectors): {error}"
        ) from error
    stacked = init_leaves[0].ndim == leaves[0].ndim + 1
    for leaf, x in zip(leaves, init_leaves, strict=True):
        shape = x.shape[1:] if stacked else x.shape
        if shape != leaf.shape or (stacked and x.shape[0] != init_leaves[0].shape[0]):
            raise InvalidInputError(
                f"{where}: `init` has a leaf of shape {x.shape} where `params` has "
                f"{leaf.shape} (a leading axis of vectors is allowed)."
            )
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise InvalidInputError(f"{where}: `init` must hold floating arrays.")
    dtype = ravel_pytree(params)[0].dtype
    count = init_leaves[0].shape[0] if stacked else 1
    rows = jnp.concatenate([x.reshape(count, -1) for x in init_leaves], axis=1)
    return check_finite(where, "init", rows.astype(dtype))


def start_vector(init: Array | None, key: PRNGKeyArray, n: int, dtype) -> Array:
    """The Krylov start: the sum of the warm-start vectors (their span is reached in
    as many steps as there are vectors), else a random direction."""
    fresh = jax.random.normal(key, (n,), dtype)
    if init is None:
        return fresh
    total = jnp.sum(init, axis=0)
    return jnp.where(jnp.linalg.norm(total) > 0, total, fresh)


class Sharpness(eqx.Module):
    """What `sharpness(..., return_result=True)` (or `throw=False`) returns.

    - `eigenvalues`: shape `(k,)`, the most extreme first (see `which`).
    - `eigenvectors`: a pytree like `params` with a leading axis of size `k`, unit
      Ritz vectors; pass the whole result as `init=` to warm-start the next solve.
    - `residuals`: ‖Hu − θu‖ of each pair, shape `(k,)`.
    - `hvps`: Hessian-vector products spent.
    - `result`: `RESULTS.successful` or `RESULTS.not_converged`.
    """

    eigenvalues: Array
    eigenvectors: PyTree
    residuals: Array
    hvps: Array
    result: RESULTS
