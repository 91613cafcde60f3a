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
    any_nonfinite,
    check_beta,
    check_leading_axis,
    check_loss,
    check_positive,
    check_steps,
    checked_params,
    float_dtype,
    traced_floats,
)
from ._flows import gradient_field
from ._tableaux import explicit_solver

DIVERGED = (
    "{where}: the iterates became NaN or Inf; the learning rate is probably too large "
    "for this loss (or the loss is not finite along the path)."
)


def prepared(where: str, loss: Callable, params0: Any, lr: Any, args: tuple):
    """Validate the common inputs.

    Returns (params0, lr as an array of the params' dtype, args with floats traced).
    """
    params0 = checked_params(where, loss, params0, args)
    lr = check_positive(where, "lr", lr)
    return params0, jnp.asarray(lr, float_dtype(params0)), traced_floats(args)


def stacked(where: str, params0: PyTree, steps: PyTree) -> PyTree:
    """Prepend θ_0 to the scanned iterates, refusing NaN/Inf (a diverged run)."""
    iterates = jax.tree.map(lambda p, s: jnp.concatenate([p[None], s]), params0, steps)
    return eqx.error_if(iterates, any_nonfinite(iterates), DIVERGED.format(where=where))


@eqx.filter_jit
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
) -> PyTree:
    """`optax.sgd` on ∇loss; step k calls `loss(θ, *batches[k], *args)`.

    Without `batches` it runs `n_steps` full-batch steps. The optimizer is built inside
    the jitted function so that `lr` and `beta` stay traced: new values do not recompile.
    """
    first_batch = () if batches is None else jax.tree.map(lambda x: x[0], batches)
    check_loss(where, loss, params0, (*first_batch, *args))
    optimizer = optax.sgd(lr, momentum=beta, nesterov=nesterov)
    grad = jax.grad(loss)

    def step(carry, batch):
        params, state = carry
        batch = () if batch is None else batch
        updates, state = optimizer.update(grad(params, *batch, *args), state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), params

    length = n_steps if batches is None else None
    _, steps = jax.lax.scan(step, (params0, optimizer.init(params0)), batches, length)
    return stacked(where, params0, steps)


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
    """
    params0, lr, args = prepared("gd", loss, params0, lr, args)
    n_steps = check_steps("gd", "n_steps", n_steps)
    return run_sgd("gd", loss, params0, lr, n_steps, args)


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
    """
    params0, lr, args = prepared("momentum", loss, params0, lr, args)
    beta = jnp.asarray(check_beta("momentum", beta), lr.dtype)
    n_steps = check_steps("momentum", "n_steps", n_steps)
    return run_sgd(
        "momentum", loss, params0, lr, n_steps, args, beta=beta, nesterov=bool(nesterov)
    )


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
    """
    batches = batch_tuple("sgd", batches)
    params0, lr, args = prepared("sgd", loss, params0, lr, args)
    return run_sgd("sgd", loss, params0, lr, 0, args, batches=batches)


def batch_tuple(where: str, batches: Any) -> tuple:
    """`batches` as a tuple of arrays with one common, non-empty leading axis."""
    batches = tuple(batches) if isinstance(batches, (tuple, list)) else (batches,)
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
    """
    solver = explicit_solver(tableau)
    params0, lr, args = prepared("runge_kutta", loss, params0, lr, args)
    n_steps = check_steps("runge_kutta", "n_steps", n_steps)
    return rk_steps(loss, params0, lr, n_steps, args, solver)


@eqx.filter_jit
def rk_steps(loss, params0, lr, n_steps, args, solver):
    """The jitted Runge–Kutta loop behind `runge_kutta` (inputs already checked)."""
    check_loss("runge_kutta", loss, params0, args)
    term = diffrax.ODETerm(gradient_field(loss, args))
    zero = jnp.zeros((), lr.dtype)

    def step(carry, k):
        params, state = carry
        t0 = k * lr
        params, _, _, state, _ = solver.step(
            term, t0, t0 + lr, params, None, state, made_jump=False
        )
        return (params, state), params

    state = solver.init(term, zero, lr, params0, None)
    _, steps = jax.lax.scan(step, (params0, state), jnp.arange(n_steps, dtype=lr.dtype))
    return stacked("runge_kutta", params0, steps)
