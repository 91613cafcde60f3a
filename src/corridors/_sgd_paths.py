"""Independent SGD runs on a finite data set, vmapped: `sgd_paths`."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import PRNGKeyArray, PyTree

from ._checks import (
    InvalidInputError,
    check_key,
    check_loss,
    check_lr,
    check_steps,
    check_storage,
    checked_params,
    float_dtype,
)
from ._results import RESULTS, finish
from ._sde import Paths, _worst, checked_data, example, full_loss, paths_from


def sgd_paths(
    loss: Callable,
    params0: PyTree,
    lr: float | Any,
    data: Any,
    *,
    batch_size: int,
    n_steps: int,
    key: PRNGKeyArray,
    n_paths: int,
    replacement: bool = True,
    every: int = 1,
    throw: bool = True,
) -> Paths:
    """`n_paths` independent SGD runs (`optax.sgd`), vmapped, on a finite data set.

    Each step draws a batch of `batch_size` examples uniformly — with replacement, or
    B distinct examples when `replacement=False` — independently of the other steps,
    and steps θ ← θ − lr·∇loss(θ, batch). These are the sampling conventions that
    [`corridors.sgd_sde`][] models (for epoch-wise reshuffling, build the batches
    yourself and use [`corridors.sgd`][]).

    **Arguments:**

    - `loss`: `loss(params, batch) -> scalar`, the mean loss over a batch (a pytree
      like `data` with a leading example axis).
    - `params0`: the initial point, any pytree of floating arrays.
    - `lr`: the learning rate > 0.
    - `data`: a pytree of arrays sharing a leading axis of N examples.
    - `batch_size`: B, an int in [1, N].
    - `n_steps`: the number of SGD steps per path (a multiple of `every`).
    - `key`: a JAX PRNG key.
    - `n_paths`: the number of independent runs.
    - `replacement`: the sampling convention (above).
    - `every`: save every `every`-th iterate (θ_0 always).
    - `throw`: raise if a path turns non-finite; with `False`, report it in `.result`.

    **Returns:**

    A [`corridors.Paths`][] saved at flow times `ts = k·lr` for k = 0, every, …, n_steps,
    with the full-batch loss (the mean of the per-example losses) along every path.

    **Example:**

    ```python
    import jax, jax.numpy as jnp
    import corridors as cr

    xs = jnp.linspace(-1.0, 1.0, 8)[:, None]
    data = (xs, 2.0 * xs[:, 0])
    loss = lambda w, batch: 0.5 * jnp.mean((batch[0] @ w - batch[1]) ** 2)
    runs = cr.sgd_paths(loss, jnp.zeros(1), 0.1, data, batch_size=2, n_steps=10,
                        key=jax.random.key(0), n_paths=64)
    print(runs.ts.shape, runs.mean_loss.shape)  # (11,) (11,)
    ```
    """
    where = "sgd_paths"
    params0 = checked_params(where, loss, params0, ())
    data, n, batch_size = checked_data(where, data, batch_size)
    lr = jnp.asarray(check_lr(where, lr), float_dtype(params0))
    n_steps = check_steps(where, "n_steps", n_steps)
    n_paths = check_steps(where, "n_paths", n_paths, minimum=1)
    every = check_steps(where, "every", every, minimum=1)
    if n_steps % every:
        raise InvalidInputError(
            f"{where}: `n_steps` ({n_steps}) must be a multiple of `every` ({every})."
        )
    saves = n_steps // every + 1
    what = f"n_paths × (n_steps / every + 1) = {n_paths:,} × {saves:,} saved iterates"
    check_storage(where, what, n_paths * saves, params0)
    key = check_key(where, key)
    return _sgd_paths(
        loss,
        params0,
        lr,
        data,
        key,
        n=n,
        batch_size=batch_size,
        n_saves=n_steps // every,
        every=every,
        n_paths=n_paths,
        replacement=bool(replacement),
        throw=throw,
    )


@eqx.filter_jit
def _sgd_paths(
    loss,
    params0,
    lr,
    data,
    key,
    *,
    n,
    batch_size,
    n_saves,
    every,
    n_paths,
    replacement,
    throw,
):
    where = "sgd_paths"
    check_loss(where, loss, params0, (example(data, jnp.asarray(0)),))
    optimizer = optax.sgd(lr)
    grad = jax.grad(loss)

    def draw(step_key):
        if replacement:
            return jax.random.randint(step_key, (batch_size,), 0, n)
        return jax.random.choice(step_key, n, (batch_size,), replace=False)

    def step(carry, step_key):
        params, state = carry
        batch = jax.tree.map(lambda x: x[draw(step_key)], data)
        updates, state = optimizer.update(grad(params, batch), state, params)
        return (optax.apply_updates(params, updates), state), None

    def save(carry, save_key):
        carry, _ = jax.lax.scan(step, carry, jax.random.split(save_key, every))
        return carry, carry[0]

    def one_path(path_key):
        carry = (params0, optimizer.init(params0))
        _, saved = jax.lax.scan(save, carry, jax.random.split(path_key, n_saves))
        params = jax.tree.map(
            lambda p, s: jnp.concatenate([p[None], s]), params0, saved
        )
        losses = jax.vmap(lambda p: full_loss(loss, p, data))(params)
        finite = jnp.all(jnp.isfinite(losses)) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)])
        )
        result = RESULTS.where(finite, RESULTS.successful, RESULTS.diverged)
        return params, losses, result

    params, losses, result = jax.vmap(one_path)(jax.random.split(key, n_paths))
    ts = lr * every * jnp.arange(n_saves + 1, dtype=lr.dtype)
    paths = paths_from(ts, params, losses, {}, result)
    return finish(where, paths, _worst(result), throw)
