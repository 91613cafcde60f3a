"""Assertions with informative failure messages: the expected, the measured, the worst.

Each raises `AssertionError` on failure (so pytest shows the message) and returns what
it measured, for further checks.
"""

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

from .._checks import InvalidInputError, default_tolerances, float_dtype
from .._drift import measure_drift, sweep_drift
from .._geometry import corridor_score
from .._methods import MethodInfo, drift_order, method_info
from .._optimizers import as_stepper, checked_times, is_builtin


def _format(tree: PyTree, limit: int = 300) -> str:
    """A short text for a pytree of arrays: `path: values` per leaf."""
    parts = []
    with np.printoptions(precision=8, threshold=12, edgeitems=3, linewidth=10_000):
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            name = jax.tree_util.keystr(path) or "(root)"
            text = np.array2string(np.asarray(leaf), separator=", ")
            parts.append(f"{name}: {' '.join(text.split())}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _list(values: np.ndarray, head: int = 8) -> str:
    """First `head` entries (and the last) of a 1-D array, in %.2e."""
    shown = [f"{v:.2e}" for v in values[:head]]
    if len(values) > head + 1:
        shown += ["…", f"{values[-1]:.2e}"]
    elif len(values) == head + 1:
        shown.append(f"{values[-1]:.2e}")
    return "[" + ", ".join(shown) + "]"


def _prefix(err_msg: str) -> str:
    return f"{err_msg}\n" if err_msg else ""


def assert_tree_allclose(
    actual: PyTree,
    expected: PyTree,
    *,
    rtol: float = 1e-7,
    atol: float = 0.0,
    equal_nan: bool = True,
    err_msg: str = "",
) -> None:
    """Assert two pytrees have the same structure, shapes, and close entries.

    Entry-wise |actual − expected| ≤ atol + rtol·|expected|, as in
    `numpy.testing.assert_allclose`. On failure the message names the worst leaf (by
    its path) and index — for stacked iterates the first index is the step — with both
    values, the difference and the allowance, and how many entries differ.

    **Arguments:**

    - `actual`, `expected`: pytrees of arrays (or numbers).
    - `rtol`, `atol`: relative and absolute tolerances.
    - `equal_nan`: count NaN as equal to NaN.
    - `err_msg`: text prepended to the failure message.

    **Example:**

    ```python
    import jax.numpy as jnp
    import pytest
    from corridors.testing import assert_tree_allclose

    params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(0.5)}
    assert_tree_allclose(params, {"w": jnp.array([1.0, 2.000001]), "b": 0.5}, rtol=1e-6)
    with pytest.raises(AssertionError, match="1 of 3 entries differ"):
        assert_tree_allclose(params, {"w": jnp.array([1.0, 2.1]), "b": 0.5}, rtol=1e-6)
    ```
    """
    _check_tolerances("assert_tree_allclose", rtol=rtol, atol=atol)
    head = _prefix(err_msg)
    struct_a, struct_e = jax.tree.structure(actual), jax.tree.structure(expected)
    if struct_a != struct_e:
        raise AssertionError(
            f"{head}Pytree structures differ:\n  actual:   {struct_a}\n  expected: "
            f"{struct_e}"
        )
    paths = jax.tree_util.tree_flatten_with_path(expected)[0]
    worst = None  # (violation, path, index, actual, expected, allowed)
    differing_entries = total = differing_leaves = 0
    for (path, e), a in zip(paths, jax.tree.leaves(actual), strict=True):
        name = jax.tree_util.keystr(path) or "(root)"
        a_arr, e_arr = np.asarray(a), np.asarray(e)
        if a_arr.shape != e_arr.shape:
            raise AssertionError(
                f"{head}Leaf {name}: shape {a_arr.shape} (actual) ≠ {e_arr.shape} "
                "(expected)."
            )
        # Complex entries are compared as complex numbers (a float cast would drop
        # the imaginary part).
        complex_ = np.iscomplexobj(a_arr) or np.iscomplexobj(e_arr)
        wide = np.complex128 if complex_ else np.float64
        a_arr, e_arr = a_arr.astype(wide), e_arr.astype(wide)
        total += a_arr.size
        close = np.isclose(a_arr, e_arr, rtol=rtol, atol=atol, equal_nan=equal_nan)
        if close.all():
            continue
        differing_leaves += 1
        differing_entries += int((~close).sum())
        with np.errstate(invalid="ignore", over="ignore"):
            difference = np.abs(a_arr - e_arr)
            allowed = atol + rtol * np.abs(e_arr)
            violation = np.where(close, -np.inf, difference - allowed)
        violation = np.where(np.isnan(violation) & ~close, np.inf, violation)
        index = np.unravel_index(int(np.argmax(violation)), a_arr.shape)
        score = float(violation[index])
        if worst is None or score > worst[0]:
            worst = (score, name, index, a_arr[index], e_arr[index], allowed[index])
    if worst is None:
        return
    _, name, index, a_value, e_value, allowed = worst
    with np.errstate(invalid="ignore", over="ignore"):
        gap = abs(complex(a_value) - complex(e_value))
    where = f"leaf {name}" + (
        f" at index {tuple(int(i) for i in index)}" if index else ""
    )
    raise AssertionError(
        f"{head}Pytrees not close (rtol={rtol:g}, atol={atol:g}): {differing_entries} of "
        f"{total} entries differ, in {differing_leaves} of {len(paths)} leaves.\n"
        f"Worst: {where}: actual {a_value:.10g}, expected {e_value:.10g}, |difference| "
        f"{gap:.3e} > allowed {allowed:.3e}."
    )


def _label(
    info: MethodInfo | None, method: Any, lr: float, n_steps: int, beta: float
) -> str:
    if info is None:
        name = f"the optimizer {type(method).__name__}"
    elif info.name == "tableau":
        name = (
            f"runge_kutta with a {info.solver.tableau.num_stages}-stage ButcherTableau"
        )
    elif info.momentum:
        name = f"{info.name} (β={beta:g})"
    elif info.family == "gradient":
        name = info.name
    else:
        name = f"runge_kutta({info.name!r})"
    return f"{name} at lr={lr:g} for {n_steps} steps"


def _check_tolerances(where: str, **tolerances: Any) -> None:
    """Refuse a negative or non-finite tolerance (it would fail, or pass, everything)."""
    for name, value in tolerances.items():
        if value is None:
            continue
        try:
            ok = math.isfinite(float(value)) and float(value) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidInputError(
                f"{where}: `{name}` must be a finite number ≥ 0, got {value!r}."
            )


def _row_norms(stacked: PyTree) -> np.ndarray:
    leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(stacked)]
    return np.sqrt(sum(np.sum(x.reshape(x.shape[0], -1) ** 2, axis=1) for x in leaves))


def assert_follows_flow(
    loss: Callable,
    params0: PyTree,
    lr: float,
    n_steps: int,
    args: tuple = (),
    *,
    method: Any = "gd",
    beta: float = 0.9,
    times: Any = None,
    flow: Callable[[PyTree, Any], PyTree] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
) -> np.ndarray:
    """Assert a discrete method's iterates lie on the gradient flow.

    Runs `method` from `params0` and checks ‖θ_k − φ(t_k)‖ ≤ atol + rtol·‖φ(t_k)‖ at
    every step k, where t_k is the flow time matched to step k: k·lr for GD and
    Runge–Kutta methods, lr·Σ_{j≤k}(1 − β^j)/(1 − β) for heavy-ball momentum from rest
    (Lemma A.1; lr·Σ_{j≤k}(1 − β^{j+1})/(1 − β) for Nesterov). In a corridor all of
    them hold to rounding.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the starting point, any pytree.
    - `lr`: the learning rate > 0.
    - `n_steps`: the number of steps, ≥ 1.
    - `args`: extra arguments passed to `loss`.
    - `method`: "gd", "momentum" (heavy ball from rest), "nesterov", a Runge–Kutta name
      ("midpoint", "heun", "ralston", "rk4", …), a `diffrax.ButcherTableau`, or any
      optimizer: an `optax.GradientTransformation` or a step function
      `step(params, state, grads) -> (params, state)`, as in
      `corridors.measure_drift`.
    - `beta`: the momentum coefficient for "momentum" and "nesterov".
    - `times`: the flow times t_k, as `times=` of `corridors.measure_drift`: `None`
      (the method's clock; k·lr for an optimizer), an array or a callable of k (the
      clock you claim), or `"nearest"` (only that the iterates lie on the flow path).
    - `flow`: the reference φ as a function `(params0, ts) -> params at ts` (leading
      axis `len(ts)`), e.g. a landscape's `exact_flow`; by default
      `corridors.gradient_flow` (Dopri8 at its dtype-resolved tolerances: rtol 1e-10 in
      float64, 1e-6 in float32).
    - `atol`, `rtol`: absolute tolerance, and tolerance relative to ‖φ(t_k)‖. Default
      by the dtype of `params0`: 1e-9 each in float64; in float32 1e-6 and 1e-5 (the
      rounding of a few float32 steps and of the float32 reference solve).

    **Returns:**

    The distances ‖θ_k − φ(t_k)‖ for k = 0..n_steps, a NumPy array.

    **Example:**

    ```python
    import jax.numpy as jnp
    import pytest
    from corridors.landscapes import Cone
    from corridors.testing import assert_follows_flow

    cone, theta0 = Cone(jnp.zeros(2), 1.0), jnp.array([3.0, 4.0])  # a corridor
    distances = assert_follows_flow(cone.loss, theta0, 0.1, 5, flow=cone.exact_flow)
    print(distances.shape, distances.max() < 1e-5)  # (6,) True
    near = jnp.array([0.15, 0.2])  # the flow stops at the apex at t = 0.25; GD overshoots
    with pytest.raises(AssertionError, match="gd at lr=0.1 for 5 steps does not follow"):
        assert_follows_flow(cone.loss, near, 0.1, 5, flow=cone.exact_flow)
    ```
    """
    where = "assert_follows_flow"
    _check_tolerances(where, atol=atol, rtol=rtol)
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise InvalidInputError(
            f"{where}: `n_steps` must be an int ≥ 1, got {n_steps!r}."
        )
    dtype = float_dtype(params0)
    if rtol is None or atol is None:
        tight = default_tolerances(dtype)[0] < 1e-8
        rtol = (1e-9 if tight else 1e-5) if rtol is None else rtol
        atol = (1e-9 if tight else 1e-6) if atol is None else atol
    if is_builtin(method):
        info = method_info(method, where=where)
    else:
        # Checked here first so that errors name this function.
        as_stepper(where, method, params0)
        info = None
    checked_times(where, times, n_steps, dtype)
    drift = measure_drift(
        loss,
        params0,
        lr,
        n_steps,
        args,
        method=method,
        beta=beta,
        times=times,
        reference="flow" if flow is None else flow,
    )
    iterates, reference = drift.iterates, drift.reference
    ts_np = np.asarray(drift.ts, np.float64)
    difference = jax.tree.map(
        lambda a, b: np.asarray(a, np.float64) - np.asarray(b, np.float64),
        iterates,
        reference,
    )
    distances = _row_norms(difference)
    allowed = atol + rtol * _row_norms(reference)
    bad = ~(distances <= allowed)
    if not bad.any():
        return distances
    with np.errstate(invalid="ignore"):
        excess = np.where(np.isnan(distances), np.inf, distances / allowed)
    k = int(np.argmax(excess))
    at_k = lambda tree: jax.tree.map(lambda x: np.asarray(x)[k], tree)  # noqa: E731
    raise AssertionError(
        f"{_label(info, method, float(lr), n_steps, float(beta))} does not follow the gradient "
        f"flow (expected ‖θ_k − φ(t_k)‖ ≤ atol + rtol·‖φ(t_k)‖ at every step, as in a "
        f"corridor).\nWorst step: k = {k} (flow time t_k = {ts_np[k]:.6g}): distance "
        f"{distances[k]:.3e} > allowed {allowed[k]:.3e} (atol={atol:g}, rtol={rtol:g}).\n"
        f"{int(bad.sum())} of {n_steps + 1} steps exceed it, the first at k = "
        f"{int(np.argmax(bad))}. Distances by step: {_list(distances)}.\n"
        f"θ_k = {_format(at_k(iterates))}\nφ(t_k) = {_format(at_k(reference))}"
    )


def assert_drift_order(
    loss: Callable,
    params0: PyTree,
    lrs: Any,
    expected_order: float,
    args: tuple = (),
    *,
    tol: float = 0.1,
    method: Any = "gd",
    reference: str | Callable = "flow",
    horizon: float | None = None,
    beta: float = 0.9,
    floor: float | None = None,
) -> float:
    """Assert the drift of a method from a flow scales as lr^expected_order.

    Measures the drift d(lr) for each lr with `corridors.measure_drift` and fits the
    slope of log d against log lr by least squares (as diffrax's order tests do).

    - Local drift (`horizon=None`): one step, d = ‖θ₁ − φ(lr)‖. GD has order 2 against
      the gradient flow ((lr²/2)‖H∇L‖) and 3 against the modified flow; an order-p
      Runge–Kutta method has order p + 1.
    - Global drift (`horizon=T`): n = floor(T/lr) steps, d = ‖θ_n − φ(t_n)‖ (for GD
      against the gradient flow through `corridors.sweep_drift`: one shared flow
      solve). GD has order 1.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `params0`: the starting point, off the corridor (in a corridor there is no drift
      to measure).
    - `lrs`: at least two distinct learning rates, small enough for the leading term
      to dominate (e.g. a geometric sequence).
    - `expected_order`: the slope expected.
    - `args`: extra arguments passed to `loss`.
    - `tol`: allowed |measured − expected|.
    - `method`, `reference`, `beta`: as in `corridors.measure_drift`.
    - `horizon`: `None` for local drift, or the flow time T for global drift.
    - `floor`: drifts below it are reference-solve noise and make the assertion fail
      (default 1e-11 + 1e-9·‖params0‖).

    **Returns:**

    The measured order (the fitted slope).

    **Example:**

    ```python
    import jax.numpy as jnp
    from corridors.testing import assert_drift_order

    loss = lambda p: 0.5 * jnp.sum(p**2)  # one GD step drifts by |1 − h − e^{−h}|·‖θ_0‖
    order = assert_drift_order(loss, jnp.ones(2), [0.05, 0.1, 0.2], 2)
    print(round(order, 2))  # 1.96: h²/2 − h³/6 + …, slope 2 as h → 0
    ```
    """
    where = "assert_drift_order"
    _check_tolerances(where, tol=tol, floor=floor)
    lr_values = np.asarray(lrs, dtype=np.float64).ravel()
    if lr_values.size < 2 or np.unique(lr_values).size < 2:
        raise InvalidInputError(
            f"{where}: `lrs` needs at least two distinct values, got {lrs!r}."
        )
    if not np.all(np.isfinite(lr_values) & (lr_values > 0)):
        raise InvalidInputError(
            f"{where}: every lr must be finite and > 0, got {lrs!r}."
        )
    if horizon is not None and not (
        np.isfinite(horizon) and horizon >= lr_values.max()
    ):
        raise InvalidInputError(
            f"{where}: `horizon` must be finite and ≥ max(lrs), got {horizon}."
        )
    scale = float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(params0))))
    floor = 1e-11 + 1e-9 * scale if floor is None else floor
    if horizon is not None and method == "gd" and reference == "flow":
        # One shared flow solve, GD vmapped over the lrs.
        drifts = np.asarray(sweep_drift(loss, params0, lr_values, horizon, args))
    else:
        drifts = []
        for lr in lr_values:
            n = 1 if horizon is None else int(np.floor(horizon / lr))
            drift = measure_drift(
                loss,
                params0,
                lr,
                n,
                args,
                method=method,
                reference=reference,
                beta=beta,
            )
            drifts.append(float(drift.distance[-1]))
        drifts = np.array(drifts, dtype=np.float64)
    kind = "one step (local drift)" if horizon is None else f"to flow time {horizon:g}"
    name = method_info(method, where=where).name
    flow_name = "gradient flow" if reference == "flow" else f"{reference} reference"
    what = f"{name} vs the {flow_name}, {kind}"
    table = "\n".join(
        f"  lr={h:.4e}  drift={d:.4e}" for h, d in zip(lr_values, drifts, strict=True)
    )
    if not np.all(np.isfinite(drifts)) or drifts.min() <= floor:
        raise AssertionError(
            f"{where}: drift of {what} reaches the floor {floor:.2e} (reference-solve "
            f"noise, or no drift: a corridor?), so no order can be measured; expected "
            f"order {expected_order}. Use larger lrs.\n{table}"
        )
    logs_h, logs_d = np.log(lr_values), np.log(drifts)
    order = drift_order(lr_values, drifts).order
    if abs(order - expected_order) <= tol:
        return order
    sort = np.argsort(lr_values)
    local = np.diff(logs_d[sort]) / np.diff(logs_h[sort])
    worst = int(np.argmax(np.abs(local - expected_order)))
    raise AssertionError(
        f"{where}: measured drift order {order:.3f} (log-log slope of drift against lr), "
        f"expected {expected_order} ± {tol}, for {what}.\n{table}\nWorst pairwise slope "
        f"{local[worst]:.3f}, between lr={lr_values[sort][worst]:.4e} and "
        f"lr={lr_values[sort][worst + 1]:.4e}."
    )


def assert_in_corridor(
    loss: Callable, points: PyTree, args: tuple = (), *, tol: float | None = None
) -> np.ndarray:
    """Assert H∇L = 0 at every point: corridor score ‖H∇L‖/‖∇L‖ ≤ `tol`.

    **Arguments:**

    - `loss`: `loss(params, *args) -> scalar`.
    - `points`: the points, stacked: a params pytree whose leaves share a leading axis
      (e.g. the iterates returned by `corridors.gd`). Stack a list of points with
      `jax.tree.map(lambda *p: jnp.stack(p), *points)`.
    - `args`: extra arguments passed to `loss`.
    - `tol`: the largest score (a curvature) counted as zero. Points with ∇L = 0
      score 0. Default by the dtype of `points`: 1e-8 in float64, 1e-5 in float32
      (the score's round-off there is ~1e-7 times the curvature's scale).

    **Returns:**

    The corridor score of every point, a NumPy array.

    **Example:**

    ```python
    import jax.numpy as jnp
    import pytest
    import corridors as cr
    from corridors.landscapes import Cone
    from corridors.testing import assert_in_corridor

    cone = Cone(jnp.zeros(2), 1.0)
    path = cr.gd(cone.loss, jnp.array([3.0, 4.0]), 0.1, 5)  # 6 stacked iterates
    print(assert_in_corridor(cone.loss, path).shape)  # (6,)
    with pytest.raises(AssertionError, match="6 of 6 points are off the corridor"):
        assert_in_corridor(lambda p: 0.5 * jnp.sum(p**2), path)
    ```
    """
    _check_tolerances("assert_in_corridor", tol=tol)
    leaves = jax.tree.leaves(points)
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
    if not leaves or None in sizes or len(sizes) != 1 or 0 in sizes:
        raise InvalidInputError(
            "assert_in_corridor: `points` must be stacked: a pytree whose leaves share "
            "a non-empty leading (point) axis (no points would check nothing); got "
            f"leading sizes {sorted(map(str, sizes))}."
        )
    if tol is None:
        tol = 1e-8 if default_tolerances(float_dtype(points))[0] < 1e-8 else 1e-5
    scores = np.asarray(jax.vmap(lambda p: corridor_score(loss, p, args))(points))
    bad = ~(scores <= tol)
    if not bad.any():
        return scores
    with np.errstate(invalid="ignore"):
        worst = int(np.argmax(np.where(np.isnan(scores), np.inf, scores)))
    point = jax.tree.map(lambda x: np.asarray(x)[worst], points)
    raise AssertionError(
        f"assert_in_corridor: {int(bad.sum())} of {scores.size} points are off the "
        f"corridor (expected corridor score ‖H∇L‖/‖∇L‖ ≤ tol = {tol:g} everywhere).\n"
        f"Worst: point {worst}, score {scores[worst]:.3e}: {_format(point)}\n"
        f"Scores: {_list(scores)}"
    )
