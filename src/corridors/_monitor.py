"""`corridors.Monitor`: the corridor measurements of one training step, from any loop.

Built once from a loss and options, called with the params, the batch and (optionally)
the update the optimizer applied. It never raises on what it meets: a NaN loss or a
solve that fails becomes a status in the record, so a training loop carries on.
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PRNGKeyArray, PyTree

from ._checks import (
    InvalidInputError,
    as_float_params,
    check_lr,
    check_same_structure,
    check_steps,
    float_dtype,
    is_concrete,
    resolved_tolerances,
)
from ._geometry import gradient_and_hvp, safe_ratio, sharpness, tree_norm
from ._results import RESULTS
from ._step_drift import solve_step

_MEASURES = (
    "loss",
    "grad_norm",
    "corridor_score",
    "lr",
    "predicted_drift",
    "drift",
    "relative_drift",
    "drift_time",
    "gd_drift",
    "sgd_full_batch",
    "sgd_per_batch",
    "sharpness",
    "minibatch_drift",
)


class MonitorRecord(eqx.Module):
    """What one [`corridors.Monitor`][] call measured (`None`: not measured).

    **Fields:**

    - `loss`, `grad_norm`: L and ‖∇L‖ on the batch.
    - `corridor_score`: ‖H∇L‖/‖∇L‖ (0 in a corridor).
    - `lr`: the step size h used below: the `lr` passed, else the update's own size
      ⟨update, −∇L⟩/‖∇L‖².
    - `predicted_drift`: (h²/2)‖H∇L‖, the leading term of a GD step's drift.
    - `drift`, `relative_drift`, `drift_time`: [`corridors.step_drift`][] of the
      update actually applied: ‖(θ + update) − φ(t)‖, that over ‖update‖, and t.
    - `gd_drift`: the same for a plain GD step −h∇L, at t = h.
    - `sgd_full_batch`, `sgd_per_batch`: (h/4)‖∇L‖² and (h/4m)Σ_k‖∇L_k − ∇L‖² over
      m micro-batches of the batch (as [`corridors.sgd_regularizers`][]).
    - `sharpness`: the top Hessian eigenvalue, on the calls where it is due.
    - `minibatch_drift`: with `full_batch=`, ‖(θ − h∇L_batch) − φ_full(h)‖: the
      minibatch GD step against the flow of the full-batch loss.
    - `statuses`: a [`corridors.RESULTS`][] item per measurement group ("loss",
      "drift", "gd_drift", "minibatch_drift", "sharpness").
    """

    loss: Array
    grad_norm: Array
    corridor_score: Array
    lr: Array | None
    predicted_drift: Array | None
    drift: Array | None
    relative_drift: Array | None
    drift_time: Array | None
    gd_drift: Array | None
    sgd_full_batch: Array | None
    sgd_per_batch: Array | None
    sharpness: Array | None
    minibatch_drift: Array | None
    statuses: dict

    def to_dict(self) -> dict[str, float]:
        """The measurements taken, as Python floats (NaN where one failed)."""
        out = {}
        for name in _MEASURES:
            value = getattr(self, name)
            if value is not None:
                out[name] = float(value)
        return out

    def failures(self) -> dict[str, str]:
        """The message of each measurement group that failed (empty if none did)."""
        return {
            name: RESULTS[result]
            for name, result in self.statuses.items()
            if bool(result != RESULTS.successful)
        }


class Monitor:
    """Corridor measurements for any training loop and any optimizer.

    **Arguments:**

    - `loss`: `loss(params, *batch) -> scalar`.
    - `sharpness_every`: measure the top Hessian eigenvalue on every k-th call (the
      first included); `None` never. The count is kept in Python: under your own
      `jax.jit`, pass `sharpness=True/False` to the call instead.
    - `microbatches`: m ≥ 2 splits the batch (its leading axis, divisible by m) for
      the SGD regularizer terms; 0 or 1 skips them.
    - `drift_time`: `None` (the update's own size) or `"nearest"`, as the `time`
      of [`corridors.step_drift`][].
    - `rtol`, `atol`: of the drift solves, relative to the step's displacement
      (default by the params' dtype).
    - `sharpness_tol`, `sharpness_max_iter`: of the Lanczos sharpness solve.
    - `warm_start`: start each sharpness solve from the top eigenvector of the
      previous successful one (eager calls only: under your own `jax.jit` each solve
      starts cold), which along training needs fewer Hessian-vector products. A
      record then depends on the calls before it; `False` makes every solve cold.

    **Returns:**

    Calling `monitor(params, batch, *, update=None, lr=None, key=None,
    full_batch=None, sharpness=None)` returns a [`corridors.MonitorRecord`][]. The
    call is jitted (and can be traced inside your own `jax.jit`); it raises only on
    bad static input (shapes, types), never on the values it meets.

    **Example:**

    ```python
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import corridors as cr

    loss = lambda w, x, y: jnp.mean((x @ w - y) ** 2)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(32, 3)), jnp.float32)
    y, w = jnp.ones(32), jnp.zeros(3)
    optimizer = optax.sgd(0.1, momentum=0.9)
    state = optimizer.init(w)
    monitor = cr.Monitor(loss, microbatches=4)  # sharpness_every=k adds Lanczos
    grads = jax.grad(loss)(w, x, y)
    update, state = optimizer.update(grads, state, w)
    record = monitor(w, (x, y), update=update, lr=0.1)
    w = optax.apply_updates(w, update)
    print(sorted(record.to_dict())[:3], record.failures())  # ['corridor_score', 'drift', 'drift_time'] {}
    ```
    """

    def __init__(
        self,
        loss: Callable,
        *,
        sharpness_every: int | None = None,
        microbatches: int = 0,
        drift_time: str | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        sharpness_tol: float = 1e-3,
        sharpness_max_iter: int = 50,
        warm_start: bool = True,
    ):
        where = "Monitor"
        if not callable(loss):
            raise InvalidInputError(
                f"{where}: `loss` must be callable, got {type(loss).__name__}."
            )
        if sharpness_every is not None:
            sharpness_every = check_steps(
                where, "sharpness_every", sharpness_every, minimum=1
            )
        microbatches = check_steps(where, "microbatches", microbatches)
        if drift_time not in (None, "nearest"):
            raise InvalidInputError(
                f"{where}: `drift_time` must be None or 'nearest', got {drift_time!r}."
            )
        if not (isinstance(sharpness_tol, float) and 0 < sharpness_tol < 1):
            raise InvalidInputError(
                f"{where}: `sharpness_tol` must be a float in (0, 1), got "
                f"{sharpness_tol!r}."
            )
        self.loss = loss
        self.sharpness_every = sharpness_every
        self.microbatches = microbatches
        self.drift_time = drift_time
        self.rtol, self.atol = rtol, atol
        self.sharpness_tol = sharpness_tol
        self.sharpness_max_iter = check_steps(
            where, "sharpness_max_iter", sharpness_max_iter, minimum=1
        )
        if not isinstance(warm_start, bool):
            raise InvalidInputError(
                f"{where}: `warm_start` must be a bool, got {warm_start!r}."
            )
        self.warm_start = warm_start
        self.calls = 0
        self._eigenvectors = None  # of the last successful eager sharpness solve

    def __call__(
        self,
        params: PyTree,
        batch: Any,
        *,
        update: PyTree | None = None,
        lr: float | Array | None = None,
        key: PRNGKeyArray | None = None,
        full_batch: Any = None,
        sharpness: bool | None = None,
    ) -> MonitorRecord:
        where = "Monitor"
        params = as_float_params(where, params, "params")
        dtype = float_dtype(params)
        batch = _as_tuple(batch)
        if update is not None:
            update = as_float_params(where, update, "update")
            check_same_structure(where, "params", params, "update", update)
        if lr is not None:
            lr = jnp.asarray(check_lr(where, lr), dtype)
        if full_batch is not None:
            full_batch = _as_tuple(full_batch)
        m = self.microbatches
        if m > 1:
            sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in batch}
            if len(sizes) != 1 or None in sizes or sizes.pop() % m:
                raise InvalidInputError(
                    f"{where}: `microbatches`={m} must divide the batch's leading axis; "
                    f"got leading sizes {[jnp.shape(x)[:1] for x in batch]}."
                )
        if sharpness is None:
            due = self.sharpness_every is not None and (
                self.calls % self.sharpness_every == 0
            )
        else:
            due = bool(sharpness)
        self.calls += 1
        rtol, atol = resolved_tolerances(where, dtype, self.rtol, self.atol)
        key = jax.random.key(0) if key is None and due else key
        eager = is_concrete(params)
        init = self._warm_vectors(params) if due and eager else None
        record, eigenvectors = _record(
            self.loss,
            params,
            batch,
            update,
            lr,
            key,
            full_batch,
            jnp.asarray(rtol, dtype),
            jnp.asarray(atol, dtype),
            init,
            options=(
                m,
                self.drift_time,
                due,
                self.sharpness_tol,
                self.sharpness_max_iter,
            ),
        )
        if due and eager and self.warm_start:
            solved = record.statuses["sharpness"] == RESULTS.successful
            self._eigenvectors = eigenvectors if bool(solved) else None
        return record

    def _warm_vectors(self, params: PyTree) -> PyTree | None:
        """The stored eigenvectors, if warm starts are on and they fit `params`."""
        vectors = self._eigenvectors
        if not self.warm_start or vectors is None:
            return None
        fits = jax.tree.structure(vectors) == jax.tree.structure(params) and all(
            v.shape[1:] == p.shape and v.dtype == p.dtype
            for v, p in zip(
                jax.tree.leaves(vectors), jax.tree.leaves(params), strict=True
            )
        )
        return vectors if fits else None


def _as_tuple(batch: Any) -> tuple:
    return tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)


def _descent_time(update, grad):
    """⟨update, −∇L⟩/‖∇L‖², clipped at 0 (0 where ∇L = 0)."""
    squared = optax.tree.norm(grad, squared=True)
    dot = -optax.tree.vdot(update, grad)
    return jnp.maximum(safe_ratio(dot, squared), 0.0)


@eqx.filter_jit
def _record(
    loss, params, batch, update, lr, key, full_batch, rtol, atol, init, *, options
):
    """The `MonitorRecord` and, when the sharpness was due, its eigenvectors."""
    microbatches, drift_time, due, sharpness_tol, sharpness_max_iter = options
    value, grad, hessian_grad = _value_grad_hvp(loss, params, batch)
    finite = jnp.isfinite(value) & jnp.isfinite(optax.tree.norm(grad))
    loss_status = RESULTS.where(finite, RESULTS.successful, RESULTS.nonfinite_loss)
    grad_norm = tree_norm(grad)
    statuses = {"loss": loss_status}
    out = {
        "loss": value,
        "grad_norm": grad_norm,
        "corridor_score": safe_ratio(tree_norm(hessian_grad), grad_norm),
    }
    h = lr if lr is not None else None
    if h is None and update is not None:
        h = _descent_time(update, grad)
    if update is not None:
        drift, _ = solve_step(
            loss, params, update, None, batch, rtol, atol,
            mode="nearest" if drift_time == "nearest" else "step",
            solver=None, max_steps=256,
        )  # fmt: skip
        out.update(drift=drift.drift, relative_drift=drift.relative)
        out["drift_time"] = drift.time
        statuses["drift"] = drift.result
    if h is not None:
        out["lr"] = h
        out["predicted_drift"] = 0.5 * h**2 * tree_norm(hessian_grad)
        gd_step = optax.tree.scale(-h, grad)
        gd, _ = solve_step(
            loss, params, gd_step, h, batch, rtol, atol,
            mode="given", solver=None, max_steps=256,
        )  # fmt: skip
        out["gd_drift"] = gd.drift
        statuses["gd_drift"] = gd.result
        if microbatches > 1:
            out["sgd_full_batch"], out["sgd_per_batch"] = _sgd_terms(
                loss, params, batch, h, microbatches
            )
        if full_batch is not None:
            flow = solve_step(
                loss, params, gd_step, h, full_batch, rtol, atol,
                mode="given", solver=None, max_steps=256,
            )[0]  # fmt: skip
            out["minibatch_drift"] = flow.drift
            statuses["minibatch_drift"] = flow.result
    eigenvectors = None
    if due:
        # Finite stand-ins keep sharpness's own input check quiet; the NaN-loss
        # status below overrides its result anyway.
        safe = jax.tree.map(lambda p: jnp.where(finite, p, 0.0), params)
        solved = _sharpness(
            loss, safe, batch, key, init, sharpness_tol, sharpness_max_iter
        )
        out["sharpness"], statuses["sharpness"] = solved.eigenvalues[0], solved.result
        eigenvectors = solved.eigenvectors
    # A NaN loss voids every measurement: each group reports it.
    statuses = {
        name: RESULTS.where(finite, status, RESULTS.nonfinite_loss)
        for name, status in statuses.items()
    }
    fields = {name: out.get(name) for name in _MEASURES}
    return MonitorRecord(**fields, statuses=statuses), eigenvectors


def _value_grad_hvp(loss, params, batch):
    value = loss(params, *batch)
    grad, hessian_grad = gradient_and_hvp(loss, params, batch)
    return value, grad, hessian_grad


def _sgd_terms(loss, params, batch, lr, m):
    """(lr/4)‖∇L‖² and (lr/4m)Σ_k‖∇L_k − ∇L‖² over m equal micro-batches."""
    split = tuple(x.reshape(m, x.shape[0] // m, *x.shape[1:]) for x in batch)
    grads = jax.vmap(lambda *micro: jax.grad(loss)(params, *micro))(*split)
    mean = jax.tree.map(lambda g: g.mean(0), grads)
    deviations = jax.tree.map(lambda g, mu: g - mu, grads, mean)
    spread = jax.vmap(lambda d: optax.tree.norm(d, squared=True))(deviations).mean()
    return 0.25 * lr * optax.tree.norm(mean, squared=True), 0.25 * lr * spread


def _sharpness(loss, params, batch, key, init, tol, max_iter):
    n = sum(leaf.size for leaf in jax.tree.leaves(params))
    max_iter = min(max_iter, n)
    return sharpness(
        loss, params, batch, key=key, init=init, tol=tol, max_iter=max_iter,
        throw=False,
    )  # fmt: skip
