"""corridors.train measurements against the core functions they stand for."""

import logging

import numpy as np
import pytest

pytest.importorskip("flax")

import jax
import jax.numpy as jnp

import corridors as cr
from corridors.train._measure import MeasureOptions, Measurer
from corridors.train._optim import make_optimizer


def smooth_loss(params, x, y, batch_stats):
    """A tanh MLP with squared error, in the measured-loss signature."""
    del batch_stats
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - y) ** 2)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    params = {
        "w1": jnp.asarray(rng.normal(size=(3, 6)), jnp.float64),
        "b1": jnp.asarray(rng.normal(size=6) * 0.1, jnp.float64),
        "w2": jnp.asarray(rng.normal(size=(6, 2)) / 2, jnp.float64),
    }
    x = jnp.asarray(rng.normal(size=(8, 3)), jnp.float64)
    y = jnp.asarray(rng.normal(size=(8, 2)), jnp.float64)
    return params, x, y


def tight(**options):
    return MeasureOptions(
        flow_tol=1e-9, flow_solver="tsit5", flow_max_steps=10_000, **options
    )


def test_measurements_equal_the_core_functions(problem):
    params, x, y = problem
    lr = 0.3
    optimizer = make_optimizer("sgd")
    state = optimizer.init(params, lr)
    measurer = Measurer(smooth_loss, optimizer, tight(microbatches=2))
    record = measurer.measure(
        params, {}, state, x, y, sharpness_key=jax.random.PRNGKey(0)
    )
    args = (x, y, {})
    assert record["lr"] == pytest.approx(lr)  # stored in float32 by the optimizer
    lr = record["lr"]
    drift = cr.measure_drift(smooth_loss, params, lr, 1, args)
    np.testing.assert_allclose(record["drift"], drift.distance[-1], rtol=1e-6)
    np.testing.assert_allclose(
        record["relative_drift"],
        drift.distance[-1] / (lr * record["grad_norm"]),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        record["corridor_score"],
        cr.corridor_score(smooth_loss, params, args),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        record["predicted_drift"],
        cr.predicted_step_drift(smooth_loss, params, lr, args),
        rtol=1e-10,
    )
    grad = jax.grad(smooth_loss)(params, *args)
    np.testing.assert_allclose(
        record["grad_norm"], np.sqrt(sum(np.sum(g**2) for g in jax.tree.leaves(grad)))
    )
    np.testing.assert_allclose(record["loss"], smooth_loss(params, *args))
    regs = cr.sgd_regularizers(
        smooth_loss, params, lr, (x.reshape(2, 4, 3), y.reshape(2, 4, 2)), ({},)
    )
    np.testing.assert_allclose(record["sgd_full_batch"], regs.full_batch, rtol=1e-10)
    np.testing.assert_allclose(record["sgd_per_batch"], regs.per_batch, rtol=1e-10)
    # Sharpness: the top eigenvalue of the dense Hessian.
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    hessian = jax.hessian(lambda v: smooth_loss(unravel(v), *args))(flat)
    top = np.linalg.eigvalsh(np.asarray(hessian))[-1]
    np.testing.assert_allclose(record["sharpness"], top, rtol=1e-3)
    # The drift is (lr²/2)‖H∇L‖ + O(lr³): close to the prediction for this small step.
    assert record["drift"] == pytest.approx(record["predicted_drift"], rel=0.5)


def test_float32_drift_is_accurate_at_the_default_tolerance(problem):
    params, x, y = problem
    lr = 0.3
    params32 = jax.tree.map(lambda p: p.astype(jnp.float32), params)
    x32, y32 = x.astype(jnp.float32), y.astype(jnp.float32)
    optimizer = make_optimizer("sgd")
    measurer = Measurer(smooth_loss, optimizer, MeasureOptions(microbatches=0))
    record = measurer.measure(params32, {}, optimizer.init(params32, lr), x32, y32)
    reference = cr.measure_drift(smooth_loss, params, lr, 1, (x, y, {})).distance[-1]
    assert record["drift"] == pytest.approx(float(reference), rel=1e-2)
    assert record["flow_evaluations"] < 100


@pytest.mark.parametrize("name", ["clr", "momentum", "chebyshev"])
def test_the_measured_step_is_the_optimizers_step(problem, name):
    params, x, y = problem
    options = {"cycle": 4, "spectrum": (0.5, 4.0)} if name == "chebyshev" else {}
    optimizer = make_optimizer(name, max_lr=0.7, **options)
    state = optimizer.init(params, 0.2)
    measurer = Measurer(smooth_loss, optimizer, tight(microbatches=0))
    if name == "chebyshev":  # two updates into the cycle
        grads = jax.grad(smooth_loss)(params, x, y, {})
        for _ in range(2):
            _, state = optimizer.tx.update(grads, state, params)
    record = measurer.measure(params, {}, state, x, y)
    loss = float(smooth_loss(params, x, y, {}))
    if name == "clr":
        expected = min(loss / record["grad_norm"] ** 2, 0.7)
    elif name == "momentum":
        expected = 0.2
    else:
        expected = cr.lr.chebyshev_steps(0.5, 4.0, 4)[2]
    assert record["lr"] == pytest.approx(expected, rel=1e-6)
    drift = cr.measure_drift(smooth_loss, params, record["lr"], 1, (x, y, {}))
    np.testing.assert_allclose(record["drift"], drift.distance[-1], rtol=1e-6)


def test_a_failed_solve_is_reported_not_raised(problem, caplog):
    params, x, y = problem
    optimizer = make_optimizer("sgd")
    measurer = Measurer(
        smooth_loss,
        optimizer,
        MeasureOptions(
            microbatches=0, flow_max_steps=1, flow_tol=1e-9, sharpness_iters=2
        ),
    )
    with caplog.at_level(logging.ERROR):
        record = measurer.measure(
            params,
            {},
            optimizer.init(params, 1.0),
            x,
            y,
            sharpness_key=jax.random.PRNGKey(0),
        )
    assert record["drift"] is None
    assert record["drift_error"].startswith(
        "step_drift: the ODE solver hit max_steps=1"
    )
    assert record["sharpness"] is None and "Lanczos" in record["sharpness_error"]
    assert record["corridor_score"] > 0  # the rest is still measured
    assert "pure_callback failed" not in caplog.text
