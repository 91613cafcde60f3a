"""cr.step_drift against closed forms, an independent float64 solve and itself."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from jax.flatten_util import ravel_pytree

import corridors as cr

from .helpers import RUNTIME_ERRORS
from .problems import mlp_loss, mlp_problem, quadratic, quadratic_flow, random_spd


def as_float32(tree):
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), tree)


@pytest.fixture(scope="module")
def mlp():
    params, batch = mlp_problem((3, 8, 2), 16, 0)
    flat, unravel = ravel_pytree(params)
    hessian = jax.hessian(lambda f: mlp_loss(unravel(f), *batch))(flat)
    sharpest = float(np.linalg.eigvalsh(np.asarray(hessian))[-1])
    return params, batch, sharpest


@pytest.fixture(scope="module")
def quad():
    rng = np.random.default_rng(3)
    a = random_spd(rng, 4, low=0.2, high=2.0)
    b = rng.normal(size=4)
    theta = rng.normal(size=4)
    return jnp.asarray(a), jnp.asarray(b), jnp.asarray(theta)


@pytest.mark.parametrize("h_lambda", [0.25, 1.0])
def test_float32_agrees_with_float64_measure_drift_within_budget(mlp, h_lambda):
    params, batch, sharpest = mlp
    lr = h_lambda / sharpest
    reference = float(cr.measure_drift(mlp_loss, params, lr, 1, batch).distance[-1])
    params32, batch32 = as_float32(params), as_float32(batch)
    grad = jax.grad(mlp_loss)(params32, *batch32)
    update = jax.tree.map(lambda g: -jnp.float32(lr) * g, grad)
    out = cr.step_drift(mlp_loss, params32, update, None, batch32)
    assert out.drift.dtype == jnp.float32
    assert abs(float(out.drift) - reference) <= 1e-4 * reference
    assert abs(float(out.time) - lr) <= 1e-6 * lr  # the GD step's own size
    assert int(out.stats["num_evaluations"]) <= 100


def test_general_update_against_the_exact_quadratic_flow(quad):
    a, b, theta = quad
    grad = a @ theta + b
    update = -0.3 * grad + jnp.array([0.1, -0.2, 0.05, 0.1])
    own_time = float(-(update @ grad) / (grad @ grad))
    assert own_time > 0
    for time, expected_time in ((None, own_time), (0.7, 0.7)):
        out = cr.step_drift(quadratic, theta, update, time, (a, b))
        exact = quadratic_flow(a, b, theta, expected_time)
        expected = np.linalg.norm(np.asarray(theta + update) - exact)
        np.testing.assert_allclose(float(out.time), expected_time, rtol=1e-12)
        np.testing.assert_allclose(float(out.drift), expected, rtol=1e-9)
        np.testing.assert_allclose(
            float(out.relative), expected / np.linalg.norm(update), rtol=1e-9
        )


def test_nearest_time_minimizes_the_distance_to_the_exact_flow(quad):
    a, b, theta = quad
    grad = a @ theta + b
    update = -0.4 * grad + 0.02 * jnp.array([1.0, -1.0, 0.5, 0.0])
    point = np.asarray(theta + update)
    distance = lambda t: np.linalg.norm(point - quadratic_flow(a, b, theta, t))  # noqa: E731
    best = scipy.optimize.minimize_scalar(
        distance, bounds=(0.0, 2.0), method="bounded", options={"xatol": 1e-12}
    )
    out = cr.step_drift(quadratic, theta, update, "nearest", (a, b))
    # Two Gauss–Newton corrections from the tangent-line time: the time to ~1e-6,
    # the distance (stationary at the optimum) to far better.
    np.testing.assert_allclose(float(out.time), best.x, rtol=1e-5)
    np.testing.assert_allclose(float(out.drift), best.fun, rtol=1e-8)
    assert float(out.drift) < float(
        cr.step_drift(quadratic, theta, update, 0.3, (a, b)).drift
    )


# Slow: compiles the tight adaptive Dopri8 reference beside the bounded path.
@pytest.mark.slow
@pytest.mark.parametrize("h_lambda", [1.0, 4.0])
def test_bounded_solve_meets_its_contract_against_adaptive_dopri8(mlp, h_lambda):
    # The contract: |drift − exact| ≤ rtol·‖update‖ + atol. Checked at float32's
    # default tolerances, in float64 so the rounding of the state does not blur it;
    # h·λ = 4 is beyond what two fixed steps reach, so the adaptive fallback runs.
    params, batch, sharpest = mlp
    lr = h_lambda / sharpest
    update = jax.tree.map(lambda g: -lr * g, jax.grad(mlp_loss)(params, *batch))
    rtol, atol = 1e-6, 1e-8
    out = cr.step_drift(mlp_loss, params, update, None, batch, rtol=rtol, atol=atol)
    exact = cr.step_drift(
        mlp_loss, params, update, None, batch,
        solver=diffrax.Dopri8(), rtol=1e-13, atol=1e-15,
    )  # fmt: skip
    step_norm = float(cr.step_drift(mlp_loss, params, update, 0.0, batch).drift)
    assert abs(float(out.drift) - float(exact.drift)) <= rtol * step_norm + atol
    evaluations = int(out.stats["num_evaluations"])
    assert (evaluations <= 28) == (h_lambda <= 1.0)  # 1 + 27 on the bounded path


def test_jit_matches_eager_and_zero_cases(quad):
    a, b, theta = quad
    update = -0.2 * (a @ theta + b)
    eager = cr.step_drift(quadratic, theta, update, None, (a, b))
    jitted = jax.jit(lambda p, u: cr.step_drift(quadratic, p, u, None, (a, b)))(
        theta, update
    )
    assert float(jitted.drift) == pytest.approx(float(eager.drift), rel=1e-14)
    # A zero update is its own flow point at time 0.
    zero = cr.step_drift(quadratic, theta, jnp.zeros(4), None, (a, b))
    assert float(zero.drift) == 0.0 and float(zero.time) == 0.0
    # At a stationary point the flow stays put: the drift is the whole step.
    out = cr.step_drift(quadratic, jnp.zeros(4), update, "nearest", (a, 0 * b))
    np.testing.assert_allclose(float(out.drift), float(jnp.linalg.norm(update)))


def test_failures_and_bad_input_name_step_drift(quad):
    a, b, theta = quad
    nan_loss = lambda p: jnp.log(-jnp.sum(p**2))  # noqa: E731
    out = cr.step_drift(nan_loss, theta, 0.1 * theta, throw=False)
    assert out.result == cr.RESULTS.nonfinite_loss
    with pytest.raises(RUNTIME_ERRORS, match="step_drift"):
        cr.step_drift(nan_loss, theta, 0.1 * theta)
    with pytest.raises(cr.InvalidInputError, match="step_drift: `update`"):
        cr.step_drift(quadratic, theta, jnp.zeros(3), None, (a, b))
    with pytest.raises(cr.InvalidInputError, match="step_drift: `time`"):
        cr.step_drift(quadratic, theta, theta, "closest", (a, b))
    with pytest.raises(cr.InvalidInputError, match="step_drift: `time`"):
        cr.step_drift(quadratic, theta, theta, -1.0, (a, b))
    with pytest.warns(UserWarning, match="step_drift: `rtol`"):
        cr.step_drift(quadratic, as_float32(theta), as_float32(theta),
                      None, as_float32((a, b)), rtol=1e-10)  # fmt: skip
