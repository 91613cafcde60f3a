"""How far discrete methods drift from the gradient flow, and SGD's implicit regularizers."""

import warnings
from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PyTree

from ._checks import (
    InvalidInputError,
    any_nonfinite,
    check_args,
    check_beta,
    check_loss,
    check_lr,
    check_lr_array,
    check_outputs,
    check_positive,
    check_real,
    check_steps,
    check_storage,
    checked_params,
    finite_scalar_or_raise,
    float_dtype,
    named_args,
    resolved_tolerances,
    traced_floats,
)
from ._flows import gradient_field, solve, solve_hints, start_result
from ._geometry import safe_ratio, tree_norm
from ._methods import MethodInfo, clock, method_info
from ._optimizers import (
    OPTIMIZER,
    as_stepper,
    checked_times,
    in_time_order,
    is_builtin,
    matched,
    run_stepper,
)
from ._references import REFERENCES, reference_path
from ._results import (
    RESULTS,
    check_throw,
    checked,
    failed_if,
    finish,
    first_failure,
)
from ._steppers import batch_tuple, path_result, prepared, rk_steps, run_sgd

FLOW_REFERENCES = REFERENCES  # flow, modified, modified2, modified3, principal, central
"""The reference flows `measure_drift` solves itself (diffrax; see `_references.py`)."""


class Drift(eqx.Module):
    """Distance between a discrete method's iterates and a reference flow.

    **Fields:**

    - `ts`: flow time matched to each iterate, shape `(n + 1,)`: k·lr for GD and
      Runge–Kutta; lr·Σ_{j=1..k}(1 − β^j)/(1 − β) for heavy-ball momentum (the
      distance it travels along a corridor), lr·Σ_{j=1..k}(1 − β^{j+1})/(1 − β) for
      Nesterov.
    - `distance`: ‖θ_k − φ(ts_k)‖₂ over all leaves.
    - `relative`: `distance` divided by the reference path length ∫₀^{ts_k}‖φ'‖dt
      (0 at k = 0; for a callable reference, the polygonal length through the
      φ(ts_k)).
    - `loss_method`, `loss_reference`: the loss along the iterates and the reference.
    - `iterates`, `reference`: θ_k and φ(ts_k), pytrees with leading axis n + 1.
    - `result`: a [`corridors.RESULTS`][] item: `RESULTS.successful`, or (with
      `throw=False`) what failed.
    """

    ts: Float[Array, " n_plus_1"]
    distance: Float[Array, " n_plus_1"]
    relative: Float[Array, " n_plus_1"]
    loss_method: Float[Array, " n_plus_1"]
    loss_reference: Float[Array, " n_plus_1"]
    iterates: PyTree
    reference: PyTree
    result: RESULTS = eqx.field(default_factory=lambda: RESULTS.successful)


def tree_distances(stacked_a: PyTree, stacked_b: PyTree) -> Array:
    """‖a_k − b_k‖₂ over all leaves, for every index k of the leading axis."""
    return jax.vmap(lambda a, b: tree_norm(optax.tree.sub(a, b)))(stacked_a, stacked_b)


def check_reference(where: str, reference: Any, info: MethodInfo) -> Any:
    """Refuse a `reference` that is not a known name or a callable, or one not
    defined for the method."""
    if callable(reference):
        return reference
    if not isinstance(reference, str) or reference not in FLOW_REFERENCES:
        raise InvalidInputError(
            f"{where}: `reference` must be one of {list(FLOW_REFERENCES)} or a "
            f"callable reference(params0, ts) -> stacked params, got {reference!r}."
        )
    if reference != "flow" and not info.modified_flow:
        raise InvalidInputError(
            f"{where}: reference={reference!r} is a flow of gradient descent at this lr; "
            f"it is not defined here for method={info.name!r}."
        )
    return reference


def _run_method(where, info, loss, params0, lr, beta, n_steps, args, stepper=None):
    """The method's iterates θ_0..θ_n, their matched flow times, and their status."""
    if stepper is not None:  # an optax transformation or a step function
        iterates, result, _ = run_stepper(where, loss, params0, n_steps, args, stepper)
        return iterates, clock("gd", lr, n_steps, beta), result
    if info.family == "gradient":
        iterates, result, _ = run_sgd(
            where, loss, params0, lr, n_steps, args,
            beta=beta, nesterov=info.name == "nesterov",
        )  # fmt: skip
    else:
        iterates, result, _ = rk_steps(
            where, loss, params0, lr, n_steps, args, info.solver
        )
    return iterates, clock(info.name, lr, n_steps, beta), result


def _reference_path(where, reference, loss, params0, ts, args, lr, options):
    """The reference φ at `ts`, its path length at `ts`, and its status.

    `reference` is a name in `FLOW_REFERENCES` (solved here with diffrax) or a callable
    `reference(params0, ts) -> stacked params`. `options` holds rtol, atol, max_steps.
    """
    if callable(reference):
        path = _called_reference(where, reference, params0, ts)
        chords = tree_distances(
            jax.tree.map(lambda x: x[1:], path), jax.tree.map(lambda x: x[:-1], path)
        )
        length = jnp.concatenate([jnp.zeros(1, ts.dtype), jnp.cumsum(chords)])
        return path, length, failed_if(any_nonfinite(path), RESULTS.nonfinite_reference)
    return reference_path(reference, loss, params0, ts, lr, args, **options)


def _called_reference(where, reference, params0, ts):
    """`reference(params0, ts)`, refused unless it is stacked like `params0`."""
    try:
        shapes = jax.eval_shape(reference, params0, ts)
    except Exception as error:  # re-raised with the argument named, cause kept
        raise InvalidInputError(
            f"{where}: calling `reference(params0, ts)` failed: {error}"
        ) from error
    expected = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct((ts.shape[0], *jnp.shape(x)), x.dtype), params0
    )
    same = jax.tree.structure(shapes) == jax.tree.structure(expected) and all(
        a.shape == b.shape
        for a, b in zip(jax.tree.leaves(shapes), jax.tree.leaves(expected), strict=True)
    )
    if not same:
        raise InvalidInputError(
            f"{where}: `reference(params0, ts)` must return params stacked along a "
            f"leading axis of len(ts) = {ts.shape[0]}, like {expected}; got {shapes}."
        )
    return jax.tree.map(
        lambda x, like: jnp.asarray(x, like.dtype), reference(params0, ts), params0
    )


def measure_drift(
    loss: Callable,
    params0: PyTree,
    lr: float | Array,
    n_steps: int,
    args: tuple = (),
    *,
    method: Any = "gd",
    reference: str | Callable = "flow",
    beta: float | Array = 0.9,
    times: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 100_000,
    throw: bool = True,
) -> Drift:
    """Run a discrete method and measure its distance from the gradient flow.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree.
    - `lr`: the learning rate (step size) > 0.
    - `n_steps`: number of steps, a static int ≥ 1.
    - `args`: extra arguments passed to `loss`.
    - `method`: "gd", "momentum" (heavy ball from rest), "nesterov", a Runge–Kutta
      name ("euler", "midpoint", "heun", "ralston", "rk4"), a
      `diffrax.ButcherTableau` or an explicit diffrax solver (see
      [`corridors.method_info`][]); or any optimizer: an
      `optax.GradientTransformation` (`value=loss` passed to the Polyak family) or a
      step function `step(params, state, grads) -> (params, state)` (state from
      `()`; a pair `(step, state0)` for a stateful one).
    - `reference`: "flow" for the gradient flow, "modified" for the first-order
      modified flow θ' = −∇L − (lr/2)H∇L of gradient descent at this lr (GD and Euler
      only), or a callable `reference(params0, ts) -> params stacked along ts` (e.g.
      a landscape's `exact_flow`).
    - `beta`: momentum coefficient in [0, 1) for "momentum" and "nesterov".
    - `times`: the flow time matched to each iterate. `None`: the method's clock
      ([`corridors.matched_times`][]; k·lr for an optimizer); an array of n + 1
      times from 0 (in any order), or a callable of k = 0..n giving them (tests
      that an optimizer follows the flow at a clock you claim); `"nearest"`: each
      iterate's projection on the flow path, searched forward from the previous
      iterate's time (tests only that the iterates lie on
      the flow's path, at whatever speed: its `distance` is the distance to the path).
    - `rtol`, `atol`, `max_steps`: for the adaptive reference solve (`rtol`/`atol`
      default by dtype: 1e-10/1e-12 in float64, 1e-6/1e-8 in float32).
    - `throw`: raise on a failure met along the way (a diverged run, a NaN loss, a
      reference solve hitting `max_steps`). With `throw=False` nothing raises: the
      failure is `Drift.result`.

    **Returns:**

    A [`corridors.Drift`][].

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr
    loss = lambda p: 0.5 * jnp.sum(p**2)
    drift = cr.measure_drift(loss, jnp.ones(2), 0.1, 10)
    print(float(drift.distance[-1]) > 0, drift.result == cr.RESULTS.successful)  # True True
    ```
    """
    where = "measure_drift"
    params0, lr, args = prepared(where, loss, params0, lr, args)
    n_steps = check_steps(where, "n_steps", n_steps, minimum=1)
    # The iterates and the reference path, both stacked.
    check_storage(where, f"n_steps = {n_steps:,}", n_steps + 1, params0, copies=2)
    stepper = None if is_builtin(method) else as_stepper(where, method, params0)
    info = OPTIMIZER if stepper is not None else method_info(method, where=where)
    times = checked_times(where, times, n_steps, lr.dtype)
    reference = check_reference(where, reference, info)
    beta_array = None
    if info.momentum:
        beta = check_real(where, "beta", beta, scalar=True)
        beta_array = jnp.asarray(check_beta(where, beta), lr.dtype)
    rtol, atol = resolved_tolerances(where, lr.dtype, rtol, atol)
    max_steps = check_steps(where, "max_steps", max_steps, minimum=1)
    throw = check_throw(where, throw)
    drift = _measure_drift(
        loss,
        params0,
        lr,
        beta_array,
        args,
        reference,
        stepper,
        times,
        info=info,
        n_steps=n_steps,
        options={"rtol": rtol, "atol": atol, "max_steps": max_steps},
    )
    return _checked_drift(where, drift, throw, solve_hints(max_steps))


def _checked_drift(where: str, drift: "Drift", throw: bool, hints: tuple) -> "Drift":
    """`drift` or, when `throw`, the error of its failure naming `where` and the first
    step k of the method, and the first flow time of the reference, that were NaN/Inf.

    Under an outer `jit` the error is tied on and cannot print those traced values.
    """
    if not throw:
        return drift

    def first_bad(states, losses):
        bad = jax.vmap(any_nonfinite)(states) | ~jnp.isfinite(losses)
        return int(np.argmax(np.asarray(bad))) if bad.any() else None

    def detail():
        details = []
        k = first_bad(drift.iterates, drift.loss_method)
        if k is not None:
            details.append(
                f"The method's iterate θ_{k} or its loss is the first NaN/Inf."
            )
        j = first_bad(drift.reference, drift.loss_reference)
        if j is not None:
            t = float(drift.ts[j])
            details.append(f"The reference is first NaN/Inf at flow time t = {t:.6g}.")
        return " ".join(details)

    return checked(where, drift, drift.result, detail, hints)


@eqx.filter_jit
def _measure_drift(
    loss, params0, lr, beta, args, reference, stepper, times,
    *, info, n_steps, options,
):  # fmt: skip
    where = "measure_drift"
    iterates, ts, path_status = _run_method(
        where, info, loss, params0, lr, beta, n_steps, args, stepper
    )
    ts = matched(times, ts, loss, iterates, args, options)
    path, length, reference_status = in_time_order(
        lambda ts: _reference_path(
            where, reference, loss, params0, ts, args, lr, options
        ),
        ts,
    )
    distance = tree_distances(iterates, path)
    batched_loss = jax.vmap(lambda p: loss(p, *args))
    loss_method, loss_reference = batched_loss(iterates), batched_loss(path)
    result = first_failure(
        path_status,
        failed_if(jnp.isnan(loss_method).any(), RESULTS.nonfinite_loss),
        reference_status,
        failed_if(jnp.isnan(loss_reference).any(), RESULTS.nonfinite_loss),
    )
    drift = Drift(
        ts=ts,
        distance=distance,
        relative=safe_ratio(distance, length),
        loss_method=loss_method,
        loss_reference=loss_reference,
        iterates=iterates,
        reference=path,
        result=result,
    )
    return drift


class SweepDrift(eqx.Module):
    """Fixed-horizon drift of gradient descent for several learning rates.

    Behaves as the array `distance` under `numpy.asarray`, `jax.numpy.asarray`,
    indexing, `len` and iteration.

    **Fields:**

    - `lrs`: the learning rates, shape `(r,)`.
    - `n_steps`: steps taken at each lr, floor(horizon / lr), shape `(r,)`.
    - `ts`: flow time reached, n_steps·lr.
    - `distance`: ‖θ_n − φ(n·lr)‖₂ for each lr.
    - `result`: a [`corridors.RESULTS`][] item: `RESULTS.successful`, or (with
      `throw=False`) what failed.
    """

    lrs: Float[Array, " r"]
    n_steps: Array
    ts: Float[Array, " r"]
    distance: Float[Array, " r"]
    result: RESULTS = eqx.field(default_factory=lambda: RESULTS.successful)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.distance, dtype=dtype)

    def __jax_array__(self):
        return self.distance

    def __len__(self):
        return len(self.distance)

    def __getitem__(self, index):
        return self.distance[index]

    def __iter__(self):
        return iter(self.distance)


def sweep_drift(
    loss: Callable,
    params0: PyTree,
    lrs: Any,
    horizon: float,
    args: tuple = (),
    *,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 100_000,
    batch_size: int | None = None,
    reference: str = "flow",
    throw: bool = True,
) -> SweepDrift:
    """Drift of gradient descent from the gradient flow at a fixed horizon, per lr.

    For each lr, n = floor(horizon / lr) GD steps and the distance ‖θ_n − φ(n·lr)‖.
    One adaptive gradient-flow solve serves every lr: it steps to, and saves at, every
    time n·lr (no dense interpolation), and the GD runs are vmapped over lr, each for
    its own n steps.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the initial point, any pytree.
    - `lrs`: concrete learning rates (they set the step counts), each in (0, horizon].
    - `horizon`: flow time T > 0.
    - `args`: extra arguments passed to `loss`.
    - `rtol`, `atol`, `max_steps`: for the adaptive flow solve (`rtol`/`atol`
      default by the dtype of `params0`, as in [`corridors.gradient_flow`][]).
    - `batch_size`: `None` (default) vmaps all GD runs together: a batch runs until its
      longest run ends, which suits accelerators. An int runs the learning rates, sorted
      by step count, in vmapped batches of that size one after another, which wastes
      fewer steps on a CPU (4 was fastest in `benchmarks/sweep.py`).
    - `reference`: "flow" (one shared solve), or a flow of GD at each lr: "modified",
      "modified2", "modified3", "principal", "central" (as in
      [`corridors.measure_drift`][]); those depend on lr, so their solves, one per lr
      to its own n·lr, are vmapped: still one compilation.
    - `throw`: raise on a failure met along the way (a diverged run, a NaN loss, the
      flow solve hitting `max_steps`). With `throw=False` nothing raises: the failure
      is `SweepDrift.result`.

    **Returns:**

    A [`corridors.SweepDrift`][], usable directly as the array of distances.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr

    loss = lambda p: 0.5 * jnp.sum(p**2)  # GD: θ_n = (1 − lr)^n·θ_0; the flow: e^{−t}·θ_0
    sweep = cr.sweep_drift(loss, jnp.ones(1), [0.05, 0.1, 0.2], 1.0)
    print(sweep.n_steps, sweep.distance)  # ≈ [20 10 5] [0.00939 0.01920 0.04020]
    print(cr.drift_order(sweep.lrs, sweep).order)  # ≈ 1.05: GD's global order is 1
    ```
    """
    where = "sweep_drift"
    lr_values = check_lr_array(where, "lrs", lrs)
    horizon = finite_scalar_or_raise(where, "horizon", horizon)
    check_positive(where, "horizon", horizon)
    params0, _, args = prepared(where, loss, params0, 1.0, args)
    steps = np.floor(horizon / lr_values).astype(int)
    if np.any(steps < 1):
        raise InvalidInputError(
            f"{where}: every lr must be ≤ `horizon` = {horizon} (n ≥ 1 step)."
        )
    dtype = float_dtype(params0)
    rtol, atol = resolved_tolerances(where, dtype, rtol, atol)
    max_steps = check_steps(where, "max_steps", max_steps, minimum=1)
    if batch_size is not None:
        batch_size = check_steps(where, "batch_size", batch_size, minimum=1)
    throw = check_throw(where, throw)
    if reference not in FLOW_REFERENCES:
        raise InvalidInputError(
            f"{where}: `reference` must be one of {list(FLOW_REFERENCES)}, got "
            f"{reference!r}."
        )
    # The flow is saved at every time n·lr, sorted, after 0 where it starts. Repeated
    # times stay (diffrax accepts them), so the shapes, and the compilation, depend
    # only on how many lrs there are.
    unsorted = np.append(0.0, steps * lr_values)
    order = np.argsort(unsorted, kind="stable")
    times, where_saved = unsorted[order], np.argsort(order)
    return _sweep_drift(
        loss,
        params0,
        jnp.asarray(lr_values, dtype),
        jnp.asarray(steps),
        jnp.asarray(times, dtype),
        jnp.asarray(where_saved[1:]),
        args,
        batch_size=batch_size,
        reference=reference,
        rtol=rtol,
        atol=atol,
        max_steps=max_steps,
        throw=throw,
    )


@eqx.filter_jit
def _sweep_drift(
    loss,
    params0,
    lrs,
    steps,
    times,
    where_saved,
    args,
    *,
    batch_size,
    reference,
    rtol,
    atol,
    max_steps,
    throw,
):
    where = "sweep_drift"
    check_loss(where, loss, params0, args)
    params0 = check_args(where, args, params0)
    start = start_result(loss, params0, args)
    grad = jax.grad(loss)

    def final_iterate(lr_and_steps):
        lr, n = lr_and_steps
        # GD for this lr's own n steps; vmapped, the batch runs until its longest ends.
        step = lambda k, params: optax.tree.add_scale(params, -lr, grad(params, *args))  # noqa: E731
        return jax.lax.fori_loop(0, n, step, params0)

    # Batches of similar step counts waste little; batch_size=None is one vmap over all.
    order = jnp.argsort(steps)
    finals = jax.lax.map(
        final_iterate,
        (lrs[order], steps[order]),
        batch_size=lrs.shape[0] if batch_size is None else batch_size,
    )
    finals = jax.tree.map(lambda leaf: leaf[jnp.argsort(order)], finals)
    if reference == "flow":
        solved = solve(
            gradient_field(loss, args), params0, times, None,
            rtol=rtol, atol=atol, max_steps=max_steps, solver=diffrax.Dopri8(),
            dense=False,
        )  # fmt: skip
        flow = jax.tree.map(lambda leaf: leaf[where_saved], solved.ys)
        flow_result = solved.result
    else:  # a flow of GD at each lr, from 0 to its own n·lr, vmapped over the lrs
        options = {"rtol": rtol, "atol": atol, "max_steps": max_steps}
        final = lambda lr, t: reference_path(  # noqa: E731
            reference, loss, params0, jnp.stack([jnp.zeros_like(t), t]), lr, args,
            **options,
        )  # fmt: skip
        paths, _, results = jax.vmap(final)(lrs, times[where_saved])
        flow = jax.tree.map(lambda leaf: leaf[:, -1], paths)
        # One status per lr: keep the first failure's.
        first = jnp.argmax(results != RESULTS.successful)
        flow_result = jax.tree.map(lambda value: value[first], results)
    result = first_failure(start, path_result(finals), flow_result)
    sweep = SweepDrift(
        lrs=lrs,
        n_steps=steps,
        ts=times[where_saved],
        distance=tree_distances(finals, flow),
        result=result,
    )
    return finish(where, sweep, result, throw, solve_hints(max_steps))


class SGDRegularizers(eqx.Module):
    """The two implicit regularizers of one SGD epoch (Smith et al., 2021).

    With m equal-size batches, batch losses L_k and full-batch loss L = (1/m)Σ L_k, SGD
    with step lr follows, to first order, the gradient flow of
    L + (lr/4)‖∇L‖² + (lr/4m)Σ_k‖∇L_k − ∇L‖².

    **Fields:**

    - `full_batch`: (lr/4)‖∇L‖².
    - `per_batch`: (lr/4m)Σ_k‖∇L_k − ∇L‖².
    - `full_batch_grad`: its gradient (lr/2)H∇L, a pytree — zero in a corridor.
    - `per_batch_grad`: the gradient of `per_batch`, a pytree — need not vanish there.
    """

    full_batch: Array
    per_batch: Array
    full_batch_grad: PyTree
    per_batch_grad: PyTree


def sgd_regularizers(
    loss: Callable, params: PyTree, lr: float | Array, batches: Any, args: tuple = ()
) -> SGDRegularizers:
    """Evaluate SGD's two implicit-regularizer terms and their gradients at `params`.

    The arguments come in the order of [`corridors.sgd`][]. The old order
    `(loss, params, batches, lr)` still works, with a `DeprecationWarning`.

    **Arguments:**

    - `loss`: `loss(params, *batch, *args) -> scalar`, as in [`corridors.sgd`][].
    - `params`: the point θ.
    - `lr`: the learning rate > 0.
    - `batches`: a tuple of arrays sharing a leading axis of length m (the batches of
      one epoch); the full-batch loss is the mean of the m batch losses.
    - `args`: extra arguments passed to `loss` after the batch.

    **Returns:**

    A [`corridors.SGDRegularizers`][]: in a corridor of the full-batch loss
    `full_batch_grad` vanishes while `per_batch` and `per_batch_grad` need not.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr
    loss = lambda p, x: 0.5 * jnp.sum((p - x) ** 2)
    regs = cr.sgd_regularizers(loss, jnp.zeros(2), 0.1, jnp.array([[1.0, 0.0], [-1.0, 0.0]]))
    print(float(regs.full_batch), round(float(regs.per_batch), 6))  # 0.0 0.025
    ```
    """
    where = "sgd_regularizers"
    if _is_scalar(batches) and not _is_scalar(lr):
        warnings.warn(
            f"{where}(loss, params, batches, lr) is deprecated: pass (loss, params, lr, "
            "batches), the order of corridors.sgd.",
            DeprecationWarning,
            stacklevel=2,
        )
        lr, batches = batches, lr
    batches = batch_tuple(where, batches)
    params = checked_params(where, loss, params, args, "params")
    args = traced_floats(args)
    lr = check_lr(where, lr)
    return _sgd_regularizers(
        loss, params, batches, jnp.asarray(lr, float_dtype(params)), args
    )


def _is_scalar(value: Any) -> bool:
    """A learning rate (a number or a 0-d array), as opposed to a batches pytree."""
    if isinstance(value, (tuple, list, dict)):
        return False
    return np.ndim(value) == 0  # np: no warning for a non-array (None, an object)


@eqx.filter_jit
def _sgd_regularizers(loss, params, batches, lr, args):
    first_batch = jax.tree.map(lambda x: x[0], batches)
    check_loss("sgd_regularizers", loss, params, (*first_batch, *args))

    def batch_grads(theta):
        return jax.vmap(lambda *batch: jax.grad(loss)(theta, *batch, *args))(*batches)

    def full_batch(theta):
        mean_grad = jax.tree.map(lambda g: g.mean(0), batch_grads(theta))
        return 0.25 * lr * optax.tree.norm(mean_grad, squared=True)

    def per_batch(theta):
        grads = batch_grads(theta)
        deviations = jax.tree.map(lambda g: g - g.mean(0), grads)
        return (
            0.25
            * lr
            * jax.vmap(lambda d: optax.tree.norm(d, squared=True))(deviations).mean()
        )

    full_value, full_grad = jax.value_and_grad(full_batch)(params)
    per_value, per_grad = jax.value_and_grad(per_batch)(params)
    return check_outputs(
        "sgd_regularizers",
        SGDRegularizers(full_value, per_value, full_grad, per_grad),
        [("params", params), ("batches", batches), *named_args(args)],
        "the batch gradients or their derivatives",
    )
