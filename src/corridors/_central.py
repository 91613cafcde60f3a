"""The central flow of gradient descent at the edge of stability (Cohen, Damian,
Talwalkar, Kolter & Lee, ICLR 2025), solved with diffrax; its small semidefinite
complementarity problem is solved by Clarabel."""

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PyTree

from ._checks import (
    InvalidInputError,
    check_increasing,
    check_loss,
    check_lr,
    check_positive,
    check_steps,
    checked_params,
    float_dtype,
    traced_floats,
)
from ._flows import checked_flow, default_solver, solve, solve_hints, start_result
from ._lanczos import top_eigenpairs
from ._results import RESULTS, check_throw, first_failure


def svec_pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i ≤ j) of the upper triangle, column by column: Clarabel's order
    for its PSD triangle cone."""
    pairs = [(i, j) for j in range(k) for i in range(j + 1)]
    return np.array([i for i, _ in pairs]), np.array([j for _, j in pairs])


def solve_sdcp(alpha: np.ndarray, jac: np.ndarray) -> np.ndarray:
    """The X with X ⪰ 0, α + B(X) ⪰ 0, ⟨X, α + B(X)⟩ = 0, for B(X)ᵢⱼ = ½Σ⟨Jᵢⱼ, Jₖₗ⟩Xₖₗ.

    B is a Gram operator, so this is the optimality condition of the convex quadratic
    program min ½⟨X, B(X)⟩ + ⟨α, X⟩ over X ⪰ 0, which Clarabel (an interior-point
    conic solver) solves in the isometric coordinates svec(X) (off-diagonal entries
    scaled by √2, so ⟨X, Y⟩ = svec(X)·svec(Y)). `jac` holds the rows J(Eₐ) of the
    svec basis matrices, shape (k(k+1)/2, n). Runs on the host (NumPy in and out).
    """
    import clarabel  # the central flow's only host dependency
    from scipy import sparse

    alpha = np.asarray(alpha, np.float64)
    k = alpha.shape[0]
    if np.linalg.eigvalsh(alpha).min() >= 0:
        return np.zeros((k, k))
    rows, cols = svec_pairs(k)
    weights = np.where(rows == cols, 1.0, np.sqrt(2.0))
    jac = np.asarray(jac, np.float64)
    quadratic = 0.5 * jac @ jac.T
    scale = np.abs(quadratic).max() + np.finfo(np.float64).tiny  # conditioning
    m = rows.size
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = 1e-11
    solver = clarabel.DefaultSolver(
        sparse.csc_matrix(np.triu(quadratic / scale)),
        weights * alpha[rows, cols] / scale,
        -sparse.identity(m, format="csc"),
        np.zeros(m),
        [clarabel.PSDTriangleConeT(k)],
        settings,
    )
    solution = solver.solve()
    if str(solution.status) not in ("Solved", "AlmostSolved"):
        return np.full((k, k), np.nan)
    values = np.asarray(solution.x) / weights
    x = np.zeros((k, k))
    x[rows, cols] = values
    x[cols, rows] = values
    return x


def _sdcp(alpha: Array, jac: Array) -> Array:
    """`solve_sdcp` from traced code; X = 0 without a host call when α ⪰ 0."""

    def host(alpha, jac):
        shape = jax.ShapeDtypeStruct(alpha.shape, alpha.dtype)
        call = lambda a, j: solve_sdcp(a, j).astype(alpha.dtype)  # noqa: E731
        return jax.pure_callback(call, shape, alpha, jac, vmap_method="sequential")

    stable = jnp.linalg.eigvalsh(alpha)[0] >= 0
    return jax.lax.cond(stable, lambda *_: jnp.zeros_like(alpha), host, alpha, jac)


def edge_terms(grad_flat: Callable, x: Array, lr: Array, *, k: int, tau: Array):
    """(θ', top-k eigenvalues, X) of the central flow at the flat point x.

    With (λᵢ, uᵢ) the top-k Hessian eigenpairs, Jᵢⱼ = ∇_θ(uᵢᵀH(θ)uⱼ) = D³L[uᵢ, uⱼ] and
    Σ = Σᵢⱼ Xᵢⱼuᵢuⱼᵀ, the flow θ' = −∇L − ½Σᵢⱼ XᵢⱼJᵢⱼ = −[∇L + ½∇⟨Σ, H⟩] moves the
    matrix A = (2/h)I − UᵀHU at the rate Ȧ = α₀ + B(X), α₀ᵢⱼ = ⟨Jᵢⱼ, ∇L⟩ and
    B(X)ᵢⱼ = ½Σₖₗ⟨Jᵢⱼ, Jₖₗ⟩Xₖₗ. X solves the complementarity problem X ⪰ 0,
    A/τ + Ȧ ⪰ 0, ⟨X, A/τ + Ȧ⟩ = 0: Σ switches on only where an eigenvalue would
    otherwise cross 2/h within time τ, and then holds it below 2/h.
    """
    g, hvp = jax.linearize(grad_flat, x)
    n = x.size
    if 5 * k < n:
        values, vectors = top_eigenpairs(hvp, n, k, x.dtype)
    else:
        values, vectors = jnp.linalg.eigh(jax.jacfwd(grad_flat)(x))
        values, vectors = values[-k:], vectors[:, -k:]
    order = jnp.argsort(-values)
    values, vectors = values[order], vectors[:, order]

    def third(u, v):
        along = lambda p: jax.jvp(grad_flat, (p,), (v,))[1]  # noqa: E731
        return jax.jvp(along, (x,), (u,))[1]

    rows, cols = svec_pairs(k)
    upper = jax.lax.map(lambda ij: third(*ij), (vectors.T[rows], vectors.T[cols]))
    jac = jnp.zeros((k, k, n), x.dtype).at[rows, cols].set(upper)
    jac = jac.at[cols, rows].set(upper)
    alpha = jnp.diag((2 / lr - values) / tau) + jac @ g
    weights = jnp.where(rows == cols, 1.0, jnp.sqrt(2.0)).astype(x.dtype)
    sigma = _sdcp(alpha, weights[:, None] * upper)
    velocity = -g - 0.5 * jnp.einsum("ij,ijn->n", sigma, jac)
    return velocity, values, sigma


class CentralFlow(eqx.Module):
    """A solved central flow.

    **Fields:**

    - `ts`: the requested flow times (GD step k at t = k·lr).
    - `params`: the central flow θ̄(t), a pytree like `params0` with leading axis
      `len(ts)`.
    - `sigma`: Σ(t) in the basis of the tracked eigenvectors, shape `(len(ts), k, k)`
      (Σ = U·sigma·Uᵀ; tr Σ = trace of `sigma`): the covariance of GD's oscillation
      around θ̄ along the top eigenvectors.
    - `eigenvalues`: the k tracked Hessian eigenvalues along the flow, descending,
      shape `(len(ts), k)`.
    - `sharpness`: the top eigenvalue, `eigenvalues[:, 0]`; it stays ≤ 2/lr.
    - `loss`: L(θ̄(t)).
    - `predicted_loss`: GD's predicted time-averaged loss L(θ̄) + ½⟨Σ, H⟩, which is
      L(θ̄) + tr(Σ)/lr where the eigenvalues sit at 2/lr.
    - `stats`: solver statistics, as for [`corridors.Flow`][].
    - `result`: a [`corridors.RESULTS`][] item (not successful only with
      `throw=False`).
    """

    ts: Float[Array, " times"]
    params: PyTree
    sigma: Float[Array, "times k k"]
    eigenvalues: Float[Array, "times k"]
    sharpness: Float[Array, " times"]
    loss: Float[Array, " times"]
    predicted_loss: Float[Array, " times"]
    stats: dict
    result: RESULTS


def central_flow(
    loss: Callable,
    params0: PyTree,
    ts: Float[Array, " times"],
    lr: float | Array,
    args: tuple = (),
    *,
    k: int = 2,
    relaxation: float = 0.5,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    max_steps: int = 100_000,
    solver: diffrax.AbstractSolver | str | None = None,
    throw: bool = True,
) -> CentralFlow:
    """Solve the central flow of gradient descent (Cohen, Damian, Talwalkar, Kolter & Lee,
    "Understanding Optimization in Deep Learning with Central Flows", ICLR 2025).

    At the edge of stability GD oscillates along the top Hessian eigenvectors while the
    sharpness hovers at 2/h; the central flow models the time-average of that motion,

        θ' = −[∇L(θ) + ½∇⟨Σ(t), H(θ)⟩]     (flow time t = k·h),

    with Σ ⪰ 0 supported on the eigenvectors at the edge and chosen, by a semidefinite
    complementarity problem (SDCP), just large enough that no eigenvalue passes 2/h.
    GD's loss averaged over a window of steps follows `predicted_loss` = L(θ) + ½⟨Σ, H⟩
    (= L(θ) + tr(Σ)/h at the edge). Below the edge Σ = 0 and this is the gradient flow
    exactly (no eigensolver error enters the field).

    **Formulation.** As in the authors' code, the constraint is imposed with a lead
    time τ = `relaxation`·h: with A = (2/h)I − UᵀHU over the k tracked eigenvectors,
    X solves X ⪰ 0, A/τ + Ȧ(X) ⪰ 0, ⟨X, A/τ + Ȧ(X)⟩ = 0 (see `edge_terms`). Σ then
    switches on when an eigenvalue would reach 2/h within about τ, and the eigenvalues
    at the edge relax to 2/h from below at rate 1/τ instead of crossing it; the field
    is a continuous function of θ, which an adaptive diffrax solver integrates.

    **SDCP solver.** The SDCP is the optimality condition of the convex quadratic
    program min ½⟨X, B(X)⟩ + ⟨α, X⟩ over X ⪰ 0 (B is a Gram operator, hence
    positive semidefinite), the reformulation the authors' code solves with cvxpy and
    CVXOPT. Here it goes straight to Clarabel, a maintained interior-point conic solver
    with a native PSD cone and quadratic objectives (cvxpy's per-call rebuild cost
    ~50 times more than the solve), on the host via `jax.pure_callback`, and only at
    points where α is not already ⪰ 0 (then X = 0). JAX has no maintained
    semidefinite solver; the problem is k×k, so a host call costs about a millisecond.

    **Costs and limits.** Each field evaluation takes the top-k eigenpairs of H
    (`top_eigenpairs`: Lanczos with full reorthogonalization from a fixed start, 32 to
    256 Hessian-vector products, when 5k < n; a dense Hessian otherwise), k(k+1)/2
    third-derivative products D³L[uᵢ, uⱼ] (nested jvp's, ~4 gradients each) and, at
    the edge, one SDCP. Only GD (no momentum, no RMSProp) and full-batch losses. At
    most k eigenvalues can be held at the edge: if `eigenvalues[:, -1]` approaches 2/lr,
    an untracked one may cross — raise `k`. Models of a few thousand parameters run on
    a CPU in seconds to minutes; the flow is not differentiable (host solver).

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar` (full batch).
    - `params0`: the initial point, any pytree.
    - `ts`: strictly increasing flow times.
    - `lr`: GD's learning rate h > 0 (the edge is at 2/h).
    - `args`: extra arguments passed to `loss`.
    - `k`: how many top eigenpairs to track, ≥ 1.
    - `relaxation`: the lead time τ in units of h, > 0.
    - `rtol`, `atol`, `max_steps`: of the adaptive step-size controller.
    - `solver`: a diffrax solver (default `Tsit5`: the field is only piecewise smooth
      where Σ switches on, so a high-order method gains nothing).
    - `throw`: raise on a failure met while solving (a non-finite loss, `max_steps`
      reached, an SDCP the solver could not solve: its NaN ends the solve). With
      `throw=False` nothing raises: the failure is `.result`.

    **Returns:**

    A [`corridors.CentralFlow`][].

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda w: 0.5 * (w[0] * w[1] - 2.0) ** 2 + 0.05 * w[0] ** 2
    flow = cr.central_flow(loss, jnp.array([4.0, 0.2]), jnp.linspace(0.0, 8.0, 5), 0.25)
    # starts past the edge (sharpness 16 > 2/h = 8); below it at the next saved time
    print(bool(flow.sharpness[1:].max() <= 2 / 0.25 * (1 + 1e-3)))  # True
    ```
    """
    where = "central_flow"
    params0 = checked_params(where, loss, params0, args)
    args = traced_floats(args)
    ts = check_increasing(where, "ts", ts, float_dtype(params0))
    lr = jnp.asarray(check_lr(where, lr), ts.dtype)
    n = sum(leaf.size for leaf in jax.tree.leaves(params0))
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise InvalidInputError(f"{where}: `k` must be an int in [1, {n}], got {k!r}.")
    relaxation = check_positive(where, "relaxation", relaxation)
    for name, tol in (("rtol", rtol), ("atol", atol)):
        check_positive(where, name, tol)
    max_steps = check_steps(where, "max_steps", max_steps, minimum=1)
    solver = diffrax.Tsit5() if solver is None else default_solver(solver)
    throw = check_throw(where, throw)
    flow = _central_flow(
        loss, params0, ts, lr, args, jnp.asarray(relaxation, ts.dtype),
        k=k, rtol=rtol, atol=atol, max_steps=max_steps, solver=solver,
    )  # fmt: skip
    return checked_flow(where, flow, throw, solve_hints(max_steps))


def _flat_gradient(loss, params0, args):
    flat0, unravel = ravel_pytree(params0)

    def grad_flat(x):
        return ravel_pytree(jax.grad(loss)(unravel(x), *args))[0]

    return flat0, unravel, grad_flat


def central_field(grad_flat: Callable, *, k: int, relaxation: Array) -> Callable:
    """The central flow's field (t, flat θ, lr) ↦ θ'."""
    return lambda t, x, lr: edge_terms(grad_flat, x, lr, k=k, tau=relaxation * lr)[0]


@eqx.filter_jit
def _central_flow(loss, params0, ts, lr, args, relaxation, *, k, rtol, atol,
                  max_steps, solver):  # fmt: skip
    where = "central_flow"
    check_loss(where, loss, params0, args)
    start = start_result(loss, params0, args)
    flat0, unravel, grad_flat = _flat_gradient(loss, params0, args)
    solved = solve(
        central_field(grad_flat, k=k, relaxation=relaxation), flat0, ts, lr,
        rtol=rtol, atol=atol, max_steps=max_steps, solver=solver, dense=False,
    )  # fmt: skip
    result = first_failure(start, solved.result)
    states = solved.ys

    def along(x):
        _, values, sigma = edge_terms(grad_flat, x, lr, k=k, tau=relaxation * lr)
        value = loss(unravel(x), *args)
        return values, sigma, value, value + 0.5 * jnp.sum(jnp.diag(sigma) * values)

    # Past a failure (throw=False) the states are Inf: measure nothing there.
    safe = jnp.where(jnp.isfinite(states), states, flat0)
    values, sigma, losses, predicted = jax.lax.map(along, safe)
    return CentralFlow(
        ts=ts,
        params=jax.vmap(unravel)(states),
        sigma=sigma,
        eigenvalues=values,
        sharpness=values[:, 0],
        loss=losses,
        predicted_loss=predicted,
        stats=solved.stats,
        result=result,
    )


def central_system(loss: Callable, params0: PyTree, args: tuple):
    """The central flow (k = 2, τ = lr/2) as a reference system (see
    `_references.reference_system`)."""
    flat0, unravel, grad_flat = _flat_gradient(loss, params0, args)
    field = central_field(grad_flat, k=2, relaxation=jnp.asarray(0.5, flat0.dtype))
    identity = lambda tree: tree  # noqa: E731
    return field, flat0, unravel, identity, diffrax.Tsit5()
