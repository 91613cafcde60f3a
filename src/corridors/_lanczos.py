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

A step costs one product plus O(s·n) for the projections and, when convergence is
tested, an s×s eigendecomposition, where s is the CURRENT Krylov size rounded up to a
static block size (16, 24, 40, 64, 96, …, about ×1.5 apart, then capacity): rows of the basis and of T past the
current size are zero, so a `lax.switch` over leading blocks of static size gives the
answer the whole would, at a cost that grows with the iteration instead of being
that of a full basis from the first product.
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
# At Krylov size s a test (an s×s eigendecomposition, O(s³)) comes at most every
# s/_CHECK_SHARE products: its cost stays below the products', and the iteration runs
# past convergence by at most 1/_CHECK_SHARE of its length.
_CHECK_SHARE = 16
# The smallest leading block the iteration works on (see `_on_leading`), and the
# ratio of consecutive block sizes (each size is one more branch to compile).
_SMALLEST_BLOCK = 16
_GROWTH = 1.5


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


def _ritz(
    t: Array, size: Array, bound: Array, which: Which, count: int
) -> tuple[Array, Array]:
    """The `count` most wanted eigenpairs of the leading `size`×`size` block of `t`,
    whose entries past that block are zero; `bound` ≥ ‖t‖ (Gershgorin's row sums).

    The padding rows get a diagonal beyond every eigenvalue of the block, on the side
    away from the wanted ones, so the wanted ones sit at fixed ends of `eigh`'s
    ascending order ("magnitude" puts the padding above and excludes it).
    """
    active = jnp.arange(t.shape[0]) < size
    far = 3 * bound + 1
    pad = -far if which == "largest" else far
    # T is exactly symmetric (filled by rows and columns from the same projections).
    vectors, theta = jax.lax.linalg.eigh(
        t + jnp.diag(jnp.where(active, 0.0, pad)), symmetrize_input=False
    )
    if which == "largest":
        order = jnp.arange(t.shape[0] - 1, t.shape[0] - 1 - count, -1)
    elif which == "smallest":
        order = jnp.arange(count)
    else:
        score = jnp.where(theta > 2 * bound + 0.5, -jnp.inf, jnp.abs(theta))
        order = jnp.argsort(-score, stable=True)[:count]
    return theta[order], vectors[:, order]


def _leading_sizes(capacity: int, growth: float) -> tuple[int, ...]:
    """Static sizes of leading blocks: from `_SMALLEST_BLOCK`, each about `growth`
    times the last (in multiples of 8), below `capacity`; then `capacity`."""
    sizes, size = [], _SMALLEST_BLOCK
    while size < capacity:
        sizes.append(size)
        size = 8 * int(-(-size * growth // 8))
    return (*sizes, capacity)


def _on_leading(sizes: tuple[int, ...], needed: Array, fn: Callable, *operands):
    """`fn(s, *operands)` for the smallest static size s in `sizes` with s ≥ `needed`.

    Rows of the basis (and of T) past the current size are zero, so a leading block
    of any size s ≥ `needed` gives the answer the whole would: the cost of a step is
    then proportional to the current Krylov size (at most ~1.5 times it), not to the
    capacity.
    """
    index = jnp.sum(jnp.asarray(sizes) < needed)
    branches = [lambda *ops, s=s: fn(s, *ops) for s in sizes]
    return jax.lax.switch(index, branches, *operands)


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
    whole space, or after `max_iter` products. Convergence is tested every
    `check_every` products, and at Krylov size s at least s/`_CHECK_SHARE` products
    apart (a test is an s×s eigendecomposition).
    """
    n = start.shape[0]
    dtype = start.dtype
    eps = jnp.finfo(dtype).eps
    capacity = min(capacity, n)
    restarts = capacity < max_iter and capacity < n
    keep = min(capacity - 1, k + max(1, (capacity - k) // 2))
    # The block sizes of the projections and of the Ritz solves.
    sizes = _leading_sizes(capacity, _GROWTH)

    def project(s, basis, w):
        # Two passes of classical Gram–Schmidt against the first s rows.
        rows = basis[:s]
        h = rows @ w
        w = w - rows.T @ h
        correction = rows @ w
        return jnp.pad(h + correction, (0, capacity - s)), w - rows.T @ correction

    def random_unit(basis, j):
        # Only on a breakdown (rare): against the whole basis.
        fresh = jax.random.normal(jax.random.fold_in(key, j), (n,), dtype)
        fresh = _orthogonalize(basis, fresh)
        return fresh / jnp.linalg.norm(fresh)

    def wanted(s, t, scale, beta, size):
        """(θ, y, residuals, converged) of the wanted Ritz pairs, y padded to
        `capacity` rows."""
        theta, y = _ritz(t[:s, :s], size, scale, which, k)
        residual = jnp.abs(beta * jnp.take(y, size - 1, axis=0))
        threshold = jnp.maximum(tol * jnp.abs(theta), 10 * eps * scale)
        y = jnp.pad(y, ((0, capacity - s), (0, 0)))
        return theta, y, residual, jnp.all(residual <= threshold)

    chunk, tail = n // _CHUNKS, n - _CHUNKS * (n // _CHUNKS)

    def restart(basis, t, scale, full):
        # Run at every step, as the identity unless the basis is full: a rotation of
        # a few vectors costs far less than a product, and a `lax.cond` would copy
        # the basis.
        theta, y = _ritz(t, jnp.asarray(capacity), scale, which, keep)
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
        products, *_, found = carry
        return (products < max_iter) & ~found[3]

    def body(carry):
        products, size, basis, t, row_sums, beta, found = carry
        w = matvec(basis[size])
        h, w = _on_leading(sizes, size + 1, project, basis, w)
        t = t.at[:, size].set(h).at[size, :].set(h)
        # Row sums of |T| (its Gershgorin bound), kept up to date in O(capacity).
        row_sums = (row_sums + jnp.abs(h)).at[size].set(jnp.sum(jnp.abs(h)))
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(jnp.max(row_sums), jnp.finfo(dtype).tiny)
        breakdown = b <= 100 * eps * scale
        size = size + 1
        products = products + 1
        next_v = jax.lax.cond(
            breakdown, lambda: random_unit(basis, products), lambda: w / b
        )
        beta = jnp.where(breakdown, 0.0, b)
        basis = basis.at[size].set(jnp.where(size < n, next_v, 0.0))
        interval = jnp.maximum(check_every, size // _CHECK_SHARE)
        last = (products == max_iter) | (size >= n)
        check = last | (
            (products >= min_iter) & ((products % interval == 0) | (size == capacity))
        )
        # The last test is always at the final state, so its Ritz pairs are the
        # result: no eigendecomposition after the loop.
        found = jax.lax.cond(
            check,
            lambda: _on_leading(sizes, size, wanted, t, scale, beta, size),
            lambda: found,
        )
        found = (*found[:3], found[3] | (size >= n))
        if restarts:
            full = (size == capacity) & ~found[3] & (products < max_iter)
            basis, t = restart(basis, t, scale, full)
            row_sums = jnp.where(full, jnp.sum(jnp.abs(t), axis=1), row_sums)
            size = jnp.where(full, keep, size)
        return products, size, basis, t, row_sums, beta, found

    start = start / jnp.linalg.norm(start)
    basis = jnp.zeros((capacity + 1, n), dtype).at[0].set(start)
    t = jnp.zeros((capacity, capacity), dtype)
    zero = jnp.array(0)
    found = (jnp.zeros(k, dtype), jnp.zeros((capacity, k), dtype),
             jnp.zeros(k, dtype), jnp.array(False))  # fmt: skip
    init = (zero, zero, basis, t, jnp.zeros(capacity, dtype), jnp.zeros((), dtype),
            found)  # fmt: skip
    products, size, basis, _, _, _, found = jax.lax.while_loop(cond, body, init)
    theta, y, residual, converged = found
    full_space = size >= n
    # Padding y (not slicing the basis) keeps the basis from being copied.
    vectors = jnp.pad(y, ((0, 1), (0, 0))).T @ basis
    return LanczosResult(
        theta,
        vectors,
        jnp.where(full_space, 0.0, residual),
        products,
        full_space | converged,
    )


# -- the top eigenpairs inside a flow's field (`central_flow`, `principal_flow`) ------

# First convergence test, test interval and cap of `top_eigenpairs`.
_FIRST_TEST, _TEST_EVERY, _MAX_PRODUCTS = 32, 16, 256


def top_eigenpairs(matvec: Callable, n: int, k: int, dtype) -> tuple[Array, Array]:
    """The top-k eigenpairs (descending; vectors as columns) of a symmetric operator
    on R^n, by `lanczos` with the whole basis from a fixed start, so that the result
    is a deterministic function of the operator, as an ODE right-hand side must be.

    Residuals to 0.1·√eps relative (far below a flow's own tolerance), first tested
    after 32 products (a start nearly orthogonal to a top eigenvector would otherwise
    be missed), then every 16; at most 256 products (the pairs reached then are
    returned).
    """
    start = jax.random.normal(jax.random.key(0), (n,), dtype)
    size = min(n, max(_MAX_PRODUCTS, 2 * k))
    found = lanczos(
        matvec,
        start,
        k=k,
        which="largest",
        tol=0.1 * float(jnp.finfo(dtype).eps) ** 0.5,
        max_iter=size,
        capacity=size,
        min_iter=min(n, max(_FIRST_TEST, 2 * k)),
        check_every=_TEST_EVERY,
        key=jax.random.key(1),
    )
    return found.eigenvalues, found.eigenvectors.T


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
