"""The status channel: `throw=False` returns `.result` instead of raising, and with
`throw=True` the error names the function the user called."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import corridors as cr

from .problems import quadratic

A, B = jnp.diag(jnp.array([1.0, 3.0])), jnp.zeros(2)


def test_flow_hitting_max_steps_is_a_status_with_throw_false():
    flow = cr.gradient_flow(
        quadratic, jnp.ones(2), jnp.array([0.0, 10.0]), (A, B), max_steps=3, throw=False
    )
    assert flow.result == cr.RESULTS.max_steps_reached
    assert np.all(np.isinf(np.asarray(flow.params[-1])))
    good = cr.gradient_flow(quadratic, jnp.ones(2), jnp.array([0.0, 1.0]), (A, B))
    assert good.result == cr.RESULTS.successful
    np.testing.assert_allclose(good.params[-1], np.exp([-1.0, -3.0]), rtol=1e-9)


def test_flow_with_a_nan_loss_at_the_start_is_a_status_or_a_named_error():
    def log_loss(theta):
        return jnp.sum(jnp.log(theta))

    ts = jnp.array([0.0, 1.0])
    flow = cr.gradient_flow(log_loss, -jnp.ones(2), ts, max_steps=10, throw=False)
    assert flow.result == cr.RESULTS.nonfinite_loss
    with pytest.raises(eqx.EquinoxRuntimeError, match="gradient_flow: The loss"):
        cr.gradient_flow(log_loss, -jnp.ones(2), ts)


def test_status_under_jit_and_vmap():
    @jax.jit
    def statuses(max_steps_scale):
        flow = cr.gradient_flow(
            quadratic,
            jnp.ones(2),
            jnp.array([0.0, 10.0]) * max_steps_scale,
            (A, B),
            max_steps=20,
            throw=False,
        )
        return flow.result == cr.RESULTS.successful

    assert bool(statuses(0.01))
    assert not bool(statuses(1.0))


def test_measure_drift_records_a_diverged_run_and_names_itself():
    args = (jnp.eye(2) * 100.0, jnp.zeros(2))
    drift = cr.measure_drift(quadratic, jnp.ones(2), 10.0, 200, args, throw=False)
    assert drift.result == cr.RESULTS.diverged
    # The error names measure_drift, not the stepper it called.
    with pytest.raises(eqx.EquinoxRuntimeError, match="measure_drift: The iterates"):
        cr.measure_drift(quadratic, jnp.ones(2), 10.0, 200, args, method="rk4")
    fine = cr.measure_drift(quadratic, jnp.ones(2), 0.001, 3, args, throw=False)
    assert fine.result == cr.RESULTS.successful


def test_measure_drift_reports_a_nan_loss_at_finite_iterates():
    # log θ + θ² at θ < 0: the gradient 1/θ + 2θ is finite, the loss is NaN.
    def log_loss(theta):
        return jnp.sum(jnp.log(theta) + theta**2)

    drift = cr.measure_drift(log_loss, -jnp.ones(2), 0.01, 3, throw=False)
    assert drift.result == cr.RESULTS.nonfinite_loss
    with pytest.raises(eqx.EquinoxRuntimeError, match="gd: The loss or its gradient"):
        cr.gd(log_loss, -jnp.ones(2), 0.01, 3)


def test_sweep_drift_status():
    args = (jnp.eye(2) * 100.0, jnp.zeros(2))
    sweep = cr.sweep_drift(quadratic, jnp.ones(2), [1.0, 0.5], 200.0, args, throw=False)
    assert sweep.result == cr.RESULTS.diverged
    with pytest.raises(eqx.EquinoxRuntimeError, match="sweep_drift: The iterates"):
        cr.sweep_drift(quadratic, jnp.ones(2), [1.0, 0.5], 200.0, args)
    sweep = cr.sweep_drift(quadratic, jnp.ones(2), [0.1, 0.05], 1.0, args, max_steps=2,
                           throw=False)  # fmt: skip
    assert sweep.result == cr.RESULTS.max_steps_reached


@pytest.mark.parametrize("throw", [1, None, "no"])
def test_throw_must_be_a_bool(throw):
    with pytest.raises(ValueError, match="`throw`"):
        cr.gradient_flow(quadratic, jnp.ones(2), [0.0, 1.0], (A, B), throw=throw)
