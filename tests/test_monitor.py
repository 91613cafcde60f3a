"""cr.Monitor: each measurement against the corridors function (or dense linear
algebra) it stands for, jit against eager in a user loop, failures as statuses."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import corridors as cr

from .problems import mlp_loss, mlp_problem


@pytest.fixture(scope="module")
def problem():
    params, (x, y) = mlp_problem((3, 6, 2), 16, 1)
    return params, (x, y)


# Slow: compiles every measurement and five reference functions (~1 min of CPU).
@pytest.mark.slow
def test_measurements_match_the_functions_they_stand_for(problem):
    params, batch = problem
    lr = 0.3
    monitor = cr.Monitor(
        mlp_loss, sharpness_every=1, microbatches=4, sharpness_tol=1e-6
    )
    grad = jax.grad(mlp_loss)(params, *batch)
    update = jax.tree.map(lambda g: -0.2 * g + 0.01, grad)  # not a GD step
    half = tuple(x[:8] for x in batch)  # a minibatch of the full batch
    record = monitor(params, half, update=update, lr=lr, full_batch=batch)
    assert record.failures() == {}
    values = record.to_dict()
    np.testing.assert_allclose(values["loss"], mlp_loss(params, *half), rtol=1e-12)
    np.testing.assert_allclose(
        values["corridor_score"], cr.corridor_score(mlp_loss, params, half), rtol=1e-10
    )
    np.testing.assert_allclose(
        values["predicted_drift"],
        cr.predicted_step_drift(mlp_loss, params, lr, half),
        rtol=1e-10,
    )
    drift = cr.step_drift(mlp_loss, params, update, None, half)
    np.testing.assert_allclose(values["drift"], drift.drift, rtol=1e-10)
    np.testing.assert_allclose(values["drift_time"], drift.time, rtol=1e-12)
    gd = cr.measure_drift(mlp_loss, params, lr, 1, half).distance[-1]
    np.testing.assert_allclose(values["gd_drift"], gd, rtol=1e-7)
    batches = tuple(x.reshape(4, 2, *x.shape[1:]) for x in half)
    regs = cr.sgd_regularizers(mlp_loss, params, lr, batches)
    np.testing.assert_allclose(values["sgd_full_batch"], regs.full_batch, rtol=1e-10)
    np.testing.assert_allclose(values["sgd_per_batch"], regs.per_batch, rtol=1e-10)
    minibatch_step = jax.tree.map(lambda g: -lr * g, jax.grad(mlp_loss)(params, *half))
    full = cr.step_drift(mlp_loss, params, minibatch_step, lr, batch)
    np.testing.assert_allclose(values["minibatch_drift"], full.drift, rtol=1e-10)
    flat, unravel = ravel_pytree(params)
    hessian = jax.hessian(lambda f: mlp_loss(unravel(f), *half))(flat)
    top = np.linalg.eigvalsh(np.asarray(hessian))[-1]
    np.testing.assert_allclose(values["sharpness"], top, rtol=1e-5)


def test_jit_in_a_user_loop_matches_eager_calls(problem):
    params, batch = problem
    optimizer = optax.adam(0.05)
    monitor = cr.Monitor(mlp_loss, microbatches=2)

    def step(params, state):
        grads = jax.grad(mlp_loss)(params, *batch)
        update, state = optimizer.update(grads, state, params)
        record = monitor(params, batch, update=update, lr=0.05, sharpness=False)
        return optax.apply_updates(params, update), state, record

    jitted = jax.jit(step)
    eager_params, jit_params = params, params
    eager_state = jit_state = optimizer.init(params)
    for _ in range(3):
        eager_params, eager_state, eager = step(eager_params, eager_state)
        jit_params, jit_state, jitted_record = jitted(jit_params, jit_state)
        expected, actual = eager.to_dict(), jitted_record.to_dict()
        assert expected.keys() == actual.keys()
        for name, value in expected.items():
            np.testing.assert_allclose(actual[name], value, rtol=1e-9, err_msg=name)
    # Adam's first step is not a GD step: its drift differs from the GD step's.
    assert abs(expected["drift"] - expected["gd_drift"]) > 1e-3 * expected["gd_drift"]


def test_sharpness_every_counts_calls_and_a_nan_loss_is_a_status(problem):
    params, batch = problem
    monitor = cr.Monitor(mlp_loss, sharpness_every=2)
    # Without lr nor update the counting needs no flow solve compiled (~20 s less).
    due = [monitor(params, batch).sharpness is not None for _ in range(4)]
    assert due == [True, False, True, False]

    def nan_loss(params, x, y):
        return jnp.sqrt(-mlp_loss(params, x, y))  # NaN for every params

    broken = cr.Monitor(nan_loss, sharpness_every=1, microbatches=2)
    update = jax.tree.map(jnp.zeros_like, params)
    for call in (broken, jax.jit(lambda p: broken(p, batch, update=update, lr=0.1))):
        record = (
            call(params, batch, update=update, lr=0.1)
            if call is broken
            else call(params)
        )
        failures = record.failures()
        assert set(failures) == {"loss", "drift", "gd_drift", "sharpness"}
        assert record.statuses["drift"] == cr.RESULTS.nonfinite_loss
        assert np.isnan(record.to_dict()["loss"])


def test_bad_static_input_names_monitor(problem):
    params, batch = problem
    with pytest.raises(cr.InvalidInputError, match="Monitor: `microbatches`"):
        cr.Monitor(mlp_loss, microbatches=3)(params, batch, lr=0.1)
    with pytest.raises(cr.InvalidInputError, match="Monitor: `update`"):
        cr.Monitor(mlp_loss)(params, batch, update=params[:1])
    with pytest.raises(cr.InvalidInputError, match="Monitor: `drift_time`"):
        cr.Monitor(mlp_loss, drift_time="closest")
    for flag in ("yes", None, 1):
        with pytest.raises(cr.InvalidInputError, match="Monitor: `warm_start`"):
            cr.Monitor(mlp_loss, warm_start=flag)


def test_warm_started_sharpness_along_gd_is_exact_and_needs_fewer_products(
    problem, monkeypatch
):
    # Along 6 GD steps each sharpness (tol 1e-6) equals the dense Hessian's top
    # eigenvalue, and starting each solve from the previous eigenvector takes fewer
    # Hessian-vector products in total than starting cold.
    import corridors._monitor as monitor_module

    params, batch = problem
    unravel = ravel_pytree(params)[1]
    dense_hessian = jax.jit(jax.hessian(lambda f: mlp_loss(unravel(f), *batch)))
    products = []

    def counted_sharpness(*args, **kwargs):
        out = cr.sharpness(*args, **kwargs)
        jax.debug.callback(lambda hvps: products.append(int(hvps)), out.hvps)
        return out

    monkeypatch.setattr(monitor_module, "sharpness", counted_sharpness)
    totals = {}
    # A loss of this test's own: no program compiled by another test (without the
    # counter) is reused; the cold monitor reuses the warm one's first, cold, program.
    loss = lambda p, x, y: mlp_loss(p, x, y)  # noqa: E731
    for warm_start in (True, False):
        monitor = cr.Monitor(
            loss, sharpness_every=1, sharpness_tol=1e-6, warm_start=warm_start
        )
        point, products[:] = params, []
        for _ in range(6):
            record = monitor(point, batch)
            hessian = dense_hessian(ravel_pytree(point)[0])
            top = np.linalg.eigvalsh(np.asarray(hessian))[-1]
            np.testing.assert_allclose(float(record.sharpness), top, rtol=1e-5)
            grad = jax.grad(mlp_loss)(point, *batch)
            point = jax.tree.map(lambda p, g: p - 0.5 * g, point, grad)
        assert len(products) == 6
        totals[warm_start] = sum(products)
    assert totals[True] < 0.8 * totals[False], totals  # measured: 70 vs 96
