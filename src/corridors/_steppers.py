"""Discrete methods: gradient descent, heavy-ball/Nesterov momentum, Runge–Kutta, SGD.

Every stepper returns the stacked iterates θ_0, …, θ_n (leading axis n + 1) computed
with `lax.scan`. Gradient methods are optax optimizers; Runge–Kutta methods are diffrax
solvers stepping the gradient flow with the constant step lr.
"""

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PyTree

from ._checks import (
    any_nan,
    any_nonfinite,
    check_args,
    check_beta,
    check_finite,
    check_leading_axis,
    check_loss,
    check_lr,
    check_real,
    check_steps,
    check_storage,
    checked_params,
    float_dtype,
    floating_leaves,
    real_arrays,
    traced_floats,
)
from ._flows import gradient_field
from ._results import RESULTS, checked, failed_if, first_failure
from ._tableaux import explicit_solver


def prepared(where: str, loss: Callable, params0: Any, lr: Any, args: tuple):
    """Validate the common inputs.

    Returns (params0, lr as an array of the params' dtype, args with floats traced).
    """
    params0 = checked_params(where, loss, params0, args)
    lr = check_lr(where, lr)
    return params0, jnp.asarray(lr, float_dtype(params0)), traced_floats(args)


def stacked(params0: PyTree, steps: PyTree) -> PyTree:
    """Prepend θ_0 to the scanned iterates."""
    return jax.tree.map(lambda p, s: jnp.concatenate([p[None], s]), params0, steps)


def path_result(iterates: PyTree, nan_loss: Any = False) -> RESULTS:
    """The status of a discrete path: `nonfinite_loss` if the loss or its gradient was
    NaN at a finite iterate (`nan_loss`), else `diverged` if an iterate is NaN/Inf."""
    return first_failure(
        failed_if(nan_loss, RESULTS.nonfinite_loss),
        failed_if(any_nonfinite(iterates), RESULTS.diverged),
    )


def run_sgd(
    where: str,
    loss: Callable,
    params0: PyTree,
    lr: Array,
    n_steps: int,
    args: tuple,
    *,
    beta: Array | None = None,
    nesterov: bool = False,
    batches: tuple | None = None,
) -> tuple[PyTree, RESULTS]:
    """`optax.sgd` on ∇loss; step k calls `loss(θ, *batches[k], *args)`.

    Without `batches` it runs `n_steps` full-batch steps. Call it inside a jitted
    function (so that `lr` and `beta` stay traced: new values do not recompile).
    Returns the iterates, their `path_result` and the first failing step (−1 if
    none); it raises nothing.
    """
    first_batch = () if batches is None else jax.tree.map(lambda x: x[0], batches)
    check_loss(where, loss, params0, (*first_batch, *args))
    params0 = check_args(where, args, params0)
    if batches is not None:
        params0 = check_finite(where, "batches", floating_leaves(batches), tie=params0)
    optimizer = optax.sgd(lr, momentum=beta, nesterov=nesterov)
    value_and_grad = jax.value_and_grad(loss)

    def step(carry, batch):
        params, state, nan_loss, failed_at, k = carry
        batch = () if batch is None else batch
        value, grad = value_and_grad(params, *batch, *args)
        nan_here = nan_at_finite_point(value, grad, params)
        updates, state = optimizer.update(grad, state, params)
        new = optax.apply_updates(params, updates)
        failed_at = first_step(failed_at, k, nan_here | any_nonfinite(new))
        return (new, state, nan_loss | nan_here, failed_at, k + 1), new

    length = n_steps if batches is None else None
    init = (params0, optimizer.init(params0), jnp.zeros((), bool), *no_step())
    (_, _, nan_loss, failed_at, _), steps = jax.lax.scan(step, init, batches, length)
    iterates = stacked(params0, steps)
    return iterates, path_result(iterates, nan_loss), failed_at


def nan_at_finite_point(value: Array, grad: PyTree, params: PyTree) -> Array:
    """A NaN loss or gradient at a finite point (outside the loss's domain), told
    apart from iterates that overflow (an Inf loss, whose backward pass then makes NaNs
    of Inf − Inf, is the overflow of a diverging run)."""
    nan = jnp.isnan(value) | (any_nan(grad) & ~jnp.isinf(value))
    return nan & ~any_nonfinite(params)


def no_step() -> tuple[Array, Array]:
    """(first failing step, step counter) at the start of a scan: none failed yet.
    A function, not a constant: an array made at import would start JAX's backend."""
    return jnp.asarray(-1, jnp.int32), jnp.asarray(0, jnp.int32)


def first_step(failed_at: Array, k: Array, failed_now: Array) -> Array:
    """The first step that failed: `k` if none had and this one did."""
    return jnp.where((failed_at < 0) & failed_now, k, failed_at)


@eqx.filter_jit
def _sgd_path(where, loss, params0, lr, n_steps, args, **options):
    return run_sgd(where, loss, params0, lr, n_steps, args, **options)


def checked_path(
    where: str, iterates: PyTree, result: RESULTS, failed_at: Array
) -> PyTree:
    """`iterates`, or the error of a failed path naming `where` and the step.

    Under an outer `jit` the error is tied on (`equinox.error_if`: it fires when the
    compiled code runs, and cannot print the step, a traced value); eagerly it is
    raised here, with the first step k whose loss or gradient at θ_k, or whose θ_{k+1},
    was NaN or Inf.
    """

    def detail():
        k = int(failed_at)
        return f"First at step k = {k} (from θ_{k} to θ_{k + 1})."

    return checked(where, iterates, result, detail)


def gd(
    loss: Callable, params0: PyTree, lr: float | Array, n_steps: int, args: tuple = ()
) -> PyTree:
    """Gradient descent θ_{k+1} = θ_k − lr·∇L(θ_k) (`optax.sgd`).

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree.
    - `lr`: the learning rate > 0.
    - `n_steps`: number of steps (a static int ≥ 0).
    - `args`: extra arguments passed to `loss`.

    **Returns:**

    The iterates θ_0, …, θ_n: a pytree like `params0` with leading axis `n_steps + 1`.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p: 0.5 * jnp.sum(p**2)  # ∇L = θ: each step multiplies θ by 1 − lr
    path = cr.gd(loss, jnp.array([1.0, -2.0]), 0.1, 3)
    print(path.shape)  # (4, 2): θ_0, …, θ_3
    print(path[-1])  # ≈ [ 0.729 -1.458] = 0.9³·θ_0
    ```
    """
    params0, lr, args = prepared("gd", loss, params0, lr, args)
    n_steps = check_steps("gd", "n_steps", n_steps)
    check_storage("gd", f"n_steps = {n_steps:,}", n_steps + 1, params0)
    return checked_path("gd", *_sgd_path("gd", loss, params0, lr, n_steps, args))


def momentum(
    loss: Callable,
    params0: PyTree,
    lr: float | Array,
    beta: float | Array,
    n_steps: int,
    args: tuple = (),
    *,
    nesterov: bool = False,
) -> PyTree:
    """Heavy-ball (or Nesterov) momentum in the optax convention (`optax.sgd`).

    Heavy ball: m_{k+1} = ∇L(θ_k) + β·m_k, θ_{k+1} = θ_k − lr·m_{k+1}, with m_0 = 0.
    Nesterov: θ_{k+1} = θ_k − lr·(∇L(θ_k) + β·m_{k+1}). In a corridor the heavy-ball
    iterates stay on the gradient-flow line, reaching flow time
    lr·Σ_{j=1..k}(1 − β^j)/(1 − β) after k steps (Lemma A.1).

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree.
    - `lr`: the learning rate > 0.
    - `beta`: the momentum coefficient in [0, 1).
    - `n_steps`: number of steps (a static int ≥ 0).
    - `args`: extra arguments passed to `loss`.
    - `nesterov`: use Nesterov's look-ahead form.

    **Returns:**

    The iterates θ_0, …, θ_n (leading axis `n_steps + 1`).

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p: jnp.sum(p)  # linear, a corridor: the flow is θ(t) = θ_0 − t
    path = cr.momentum(loss, jnp.zeros(1), 0.1, 0.5, 2)  # lr = 0.1, β = 0.5
    print(path[:, 0])  # ≈ [ 0.   -0.1  -0.25]: θ_0 − t at t = lr·Σ_{j≤k}(1 − β^j)/(1 − β)
    ```
    """
    params0, lr, args = prepared("momentum", loss, params0, lr, args)
    beta = check_real("momentum", "beta", beta, scalar=True)
    beta = jnp.asarray(check_beta("momentum", beta), lr.dtype)
    n_steps = check_steps("momentum", "n_steps", n_steps)
    check_storage("momentum", f"n_steps = {n_steps:,}", n_steps + 1, params0)
    path = _sgd_path(
        "momentum", loss, params0, lr, n_steps, args, beta=beta, nesterov=bool(nesterov)
    )
    return checked_path("momentum", *path)


def sgd(
    loss: Callable, params0: PyTree, lr: float | Array, batches: Any, args: tuple = ()
) -> PyTree:
    """Stochastic gradient descent, one step per batch.

    Step k uses the gradient of `loss(θ, *batch_k, *args)`, where `batch_k` is slice k
    along the leading axis of every array in `batches`.

    **Arguments:**

    - `loss`: `loss(params, *batch, *args) -> scalar`.
    - `params0`: the initial point, any pytree.
    - `lr`: the learning rate > 0.
    - `batches`: a tuple of arrays sharing a leading axis of length m (the number of
      steps), e.g. `(xs, ys)` with `xs.shape == (m, batch_size, d)`; a single array is
      read as a 1-tuple.
    - `args`: extra arguments passed to `loss` after the batch.

    **Returns:**

    The iterates θ_0, …, θ_m (leading axis m + 1).

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p, target: 0.5 * jnp.sum((p - target) ** 2)
    targets = jnp.array([[1.0], [3.0]])  # two batches: step k pulls θ towards targets[k]
    path = cr.sgd(loss, jnp.zeros(1), 0.5, targets)
    print(path[:, 0])  # [0.   0.5  1.75]: θ_{k+1} = θ_k − 0.5·(θ_k − targets[k])
    ```
    """
    batches = batch_tuple("sgd", batches)
    params0, lr, args = prepared("sgd", loss, params0, lr, args)
    path = _sgd_path("sgd", loss, params0, lr, 0, args, batches=batches)
    return checked_path("sgd", *path)


def batch_tuple(where: str, batches: Any) -> tuple:
    """`batches` as a tuple of arrays with one common, non-empty leading axis."""
    batches = tuple(batches) if isinstance(batches, (tuple, list)) else (batches,)
    batches = real_arrays(where, "batches", batches)
    check_leading_axis(where, "batches", batches)
    return batches


def runge_kutta(
    loss: Callable,
    params0: PyTree,
    lr: float | Array,
    n_steps: int,
    args: tuple = (),
    *,
    tableau: str | diffrax.ButcherTableau | diffrax.AbstractSolver = "rk4",
) -> PyTree:
    """An explicit Runge–Kutta method on the gradient flow, with constant step lr.

    Runs a diffrax solver's `step` under `lax.scan`. In a corridor every consistent
    explicit tableau (Σ bᵢ = 1) lands exactly on the gradient flow.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree.
    - `lr`: the step size > 0 (flow time per step).
    - `n_steps`: number of steps (a static int ≥ 0).
    - `args`: extra arguments passed to `loss`.
    - `tableau`: "euler" (= gradient descent), "midpoint", "heun", "ralston", "rk4",
      any explicit `diffrax.ButcherTableau` (diffrax needs ≥ 2 stages: for the one-stage
      method use "euler"), or a diffrax solver instance.

    **Returns:**

    The iterates θ_0, …, θ_n (leading axis `n_steps + 1`).

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p: 0.5 * jnp.sum(p**2)  # the flow is θ(t) = e^{−t}·θ_0
    path = cr.runge_kutta(loss, jnp.ones(1), 0.5, 2, tableau="rk4")
    print(path[:, 0])  # ≈ [1.      0.60677 0.36817]: powers of 1 − h + h²/2 − h³/6 + h⁴/24
    print(jnp.exp(-1.0))  # ≈ 0.36788: the flow at t = 2·0.5
    ```
    """
    where = "runge_kutta"
    solver = explicit_solver(where, tableau)
    params0, lr, args = prepared(where, loss, params0, lr, args)
    n_steps = check_steps(where, "n_steps", n_steps)
    check_storage(where, f"n_steps = {n_steps:,}", n_steps + 1, params0)
    return checked_path(
        where, *_rk_path(where, loss, params0, lr, n_steps, args, solver)
    )


def rk_steps(where, loss, params0, lr, n_steps, args, solver):
    """The Runge–Kutta loop behind `runge_kutta` (inputs already checked; call it
    inside a jitted function). Returns the iterates, their `path_result` and the first
    step whose result is not finite (−1 if none)."""
    check_loss(where, loss, params0, args)
    params0 = check_args(where, args, params0)
    term = diffrax.ODETerm(gradient_field(loss, args))
    zero = jnp.zeros((), lr.dtype)

    def step(carry, k):
        params, state, failed_at = carry
        t0 = k * lr
        params, _, _, state, _ = solver.step(
            term, t0, t0 + lr, params, None, state, made_jump=False
        )
        failed_at = first_step(failed_at, k.astype(jnp.int32), any_nonfinite(params))
        return (params, state, failed_at), params

    state = solver.init(term, zero, lr, params0, None)
    init = (params0, state, no_step()[0])
    (_, _, failed_at), steps = jax.lax.scan(
        step, init, jnp.arange(n_steps, dtype=lr.dtype)
    )
    iterates = stacked(params0, steps)
    return iterates, path_result(iterates), failed_at


@eqx.filter_jit
def _rk_path(where, loss, params0, lr, n_steps, args, solver):
    return rk_steps(where, loss, params0, lr, n_steps, args, solver)
