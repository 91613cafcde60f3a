"""Any optimizer as a method: optax transformations and step functions in
measure_drift and assert_follows_flow, their clocks, and times="nearest"."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import corridors as cr
from corridors.testing import assert_follows_flow

from .helpers import compilations
from .problems import linear, mlp_loss, mlp_problem

LR, BETA, N = 0.1, 0.9, 6
P0 = jnp.array([0.2, 0.1, -0.4, 0.3])
CORRIDOR = (jnp.array([1.0, -2.0, 0.5, 0.0]), jnp.asarray(0.3))  # L = w·θ + b: H = 0


def leaves_equal(a, b):
    return all(
        np.array_equal(x, y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def test_optax_sgd_and_a_step_function_are_gd_bit_for_bit():
    built_in = cr.gd(linear, P0, LR, N, CORRIDOR)
    via_optax = cr.measure_drift(linear, P0, LR, N, CORRIDOR, method=optax.sgd(LR))
    assert leaves_equal(via_optax.iterates, built_in)

    def step(params, state, grads):
        return params - LR * grads, state

    via_step = cr.measure_drift(linear, P0, LR, N, CORRIDOR, method=step)
    assert leaves_equal(via_step.iterates, built_in)
    # On the corridor it is on the flow (assert_follows_flow with an optax method is
    # tested in float32 below; a third compile here would add ~10 s).
    assert float(via_optax.distance.max()) < 1e-12


def test_momentum_follows_the_flow_at_its_own_clock_not_at_gd_s():
    heavy_ball = optax.sgd(LR, momentum=BETA)
    clock = cr.matched_times("momentum", LR, N, beta=BETA)
    assert_follows_flow(linear, P0, LR, N, CORRIDOR, method=heavy_ball, times=clock)
    # The same with a callable clock and with a hand-written stateful step function.
    assert_follows_flow(
        linear, P0, LR, N, CORRIDOR, method=heavy_ball, times=lambda k: clock[k]
    )

    def heavy_ball_step(params, velocity, grads):
        velocity = grads + BETA * velocity
        return params - LR * velocity, velocity

    stateful = (heavy_ball_step, jnp.zeros_like(P0))
    assert_follows_flow(linear, P0, LR, N, CORRIDOR, method=stateful, times=clock)
    with pytest.raises(AssertionError, match="does not follow the gradient flow"):
        assert_follows_flow(linear, P0, LR, N, CORRIDOR, method=heavy_ball)


def lookahead_clock(lr, n_steps, period, alpha):
    """Flow time of lookahead's fast weights along a corridor: SGD moves them lr per
    step; every `period` steps the slow weights move α of the way to them and the
    fast weights restart from there (Zhang et al., 2019)."""
    fast = slow = 0.0
    times = [0.0]
    for k in range(1, n_steps + 1):
        fast += lr
        if k % period == 0:
            slow += alpha * (fast - slow)
            fast = slow
        times.append(fast)
    return np.array(times)


def test_lookahead_of_sgd_follows_the_flow_at_its_own_clock():
    period, alpha = 3, 0.5
    method = optax.lookahead(optax.sgd(LR), sync_period=period, slow_step_size=alpha)
    clock = lookahead_clock(LR, 7, period, alpha)
    assert_follows_flow(linear, P0, LR, 7, CORRIDOR, method=method, times=clock)
    # "nearest" searches forward from the previous iterate's time: where the fast
    # weights step back at a sync it finds the running maximum of the clock.
    drift = cr.measure_drift(
        linear, P0, LR, 7, CORRIDOR, method=method, times="nearest"
    )
    np.testing.assert_allclose(drift.ts, np.maximum.accumulate(clock), atol=1e-12)


def test_adam_leaves_the_flow_line_unless_gradient_magnitudes_are_equal():
    adam = optax.adam(LR)
    # Adam's step is −lr·sign(∇L) here: not along ∇L, so it leaves the line, by more
    # than 0.1 (one call, not a measure_drift and an assert_follows_flow: each optax
    # call compiles anew, ~10 s; failing at atol 0.1 implies failing at the default).
    with pytest.raises(AssertionError, match="does not follow the gradient flow"):
        assert_follows_flow(
            linear, P0, LR, N, CORRIDOR, method=adam, times="nearest", atol=0.1, rtol=0
        )
    # With |∂L/∂θᵢ| = c on every non-zero entry, sign(∇L) = ∇L/c: the line again, at
    # flow time k·lr/(c + eps) (Adam's m̂/(√v̂ + eps) = c/(c + eps)·sign).
    c, eps = 2.0, 1e-8
    equal = (jnp.array([c, -c, 0.0, c]), jnp.asarray(0.3))
    assert_follows_flow(linear, P0, LR, N, equal, method=adam, times="nearest")
    drift = cr.measure_drift(linear, P0, LR, N, equal, method=adam, times="nearest")
    np.testing.assert_allclose(drift.ts, np.arange(N + 1) * LR / (c + eps), rtol=1e-12)


def test_polyak_family_gets_the_loss_value():
    # optax.polyak_sgd needs `value=`: h_k = min(L(θ_k)/‖∇L‖², max_lr) here.
    method = optax.polyak_sgd(max_learning_rate=0.05)
    drift = cr.measure_drift(linear, P0, LR, 3, CORRIDOR, method=method)
    w, b = CORRIDOR
    theta, expected = P0, [P0]
    for _ in range(3):
        value = linear(theta, w, b)
        theta = theta - jnp.minimum(value / (w @ w), 0.05) * w
        expected.append(theta)
    np.testing.assert_allclose(drift.iterates, jnp.stack(expected), rtol=1e-14)


# Slow: six measure_drift programs on an MLP.
@pytest.mark.slow
def test_off_a_corridor_the_generic_path_reproduces_built_in_drifts():
    params, batch = mlp_problem((3, 6, 2), 16, 1)
    for name, transformation in (
        ("gd", optax.sgd(LR)),
        ("momentum", optax.sgd(LR, momentum=BETA)),
        ("nesterov", optax.sgd(LR, momentum=BETA, nesterov=True)),
    ):
        built_in = cr.measure_drift(mlp_loss, params, LR, 4, batch, method=name)
        generic = cr.measure_drift(
            mlp_loss, params, LR, 4, batch, method=transformation, times=built_in.ts
        )
        np.testing.assert_allclose(
            generic.distance, built_in.distance, rtol=0, atol=1e-12, err_msg=name
        )
        assert float(built_in.distance[-1]) > 1e-4  # a drift worth reproducing


@pytest.mark.parametrize("method", ["gd", "momentum"])
def test_nearest_recovers_the_clock_in_a_corridor(method):
    drift = cr.measure_drift(
        linear, P0, LR, N, CORRIDOR, method=method, times="nearest"
    )
    clock = cr.matched_times(method, LR, N, beta=BETA)
    np.testing.assert_allclose(drift.ts, clock, rtol=0, atol=1e-9)
    assert float(drift.distance.max()) < 1e-12


def test_float32_kit_defaults_and_errors_name_the_function_called():
    p0 = P0.astype(jnp.float32)
    corridor = tuple(x.astype(jnp.float32) for x in CORRIDOR)
    # float64's 1e-9 would refuse float32 rounding; the defaults follow the dtype.
    assert_follows_flow(linear, p0, LR, 10, corridor, method=optax.sgd(LR))
    assert_follows_flow(linear, p0, LR, 10, corridor)
    with pytest.raises(cr.InvalidInputError, match="measure_drift: `method`"):
        cr.measure_drift(linear, P0, LR, N, CORRIDOR, method=3)
    with pytest.raises(cr.InvalidInputError, match="assert_follows_flow: `method`"):
        assert_follows_flow(linear, P0, LR, N, CORRIDOR, method=object())
    with pytest.raises(cr.InvalidInputError, match="measure_drift: `times`"):
        cr.measure_drift(linear, P0, LR, N, CORRIDOR, times=jnp.zeros(3))
    with pytest.raises(
        cr.InvalidInputError, match="assert_follows_flow: a step of `method`"
    ):
        assert_follows_flow(
            linear, P0, LR, N, CORRIDOR, method=lambda p, s, g: (p[:2], s)
        )


def _plain_step(params, state, grads):
    return jax.tree.map(lambda p, g: p - 0.05 * g, params, grads), state


@pytest.mark.parametrize(
    "method", [optax.sgd(0.05, momentum=0.9), _plain_step], ids=["optax", "step"]
)
def test_the_same_optimizer_object_compiles_once(method):
    # An optax transformation or a step function measured again (new params, same
    # object) reuses the compiled code; a fresh closure per call used to recompile.
    loss = lambda p: 0.5 * jnp.sum(jnp.array([1.0, 3.0]) * p**2)  # noqa: E731

    def drift(params0):
        return cr.measure_drift(loss, params0, 0.05, 4, method=method).distance

    assert compilations(lambda: drift(jnp.array([1.0, -1.0]))) > 0
    assert compilations(lambda: drift(jnp.array([2.0, 0.5]))) == 0


def _numpy_adam(grad, theta, lr, n_steps, b1=0.9, b2=0.999, eps=1e-8):
    """Kingma & Ba's recursion, written out: an implementation independent of optax."""
    theta = np.array(theta, np.float64)
    m, v, path = np.zeros_like(theta), np.zeros_like(theta), [theta.copy()]
    for k in range(1, n_steps + 1):
        g = grad(theta)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**k), v / (1 - b2**k)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        path.append(theta.copy())
    return np.stack(path)


def test_optimizer_path_runs_any_optimizer_as_gd_s_sibling():
    scales = np.array([1.0, 3.0, 0.5, 2.0])
    loss = lambda p: jnp.sum(jnp.asarray(scales) * (p**2 + 0.1 * p**4))  # noqa: E731
    grad = lambda p: scales * (2 * p + 0.4 * p**3)  # noqa: E731
    path = cr.optimizer_path(loss, P0, optax.adam(0.05), 8)
    np.testing.assert_allclose(path, _numpy_adam(grad, P0, 0.05, 8), rtol=1e-12)
    # optax's SGD with momentum is the built-in momentum bit for bit.
    heavy = cr.optimizer_path(loss, P0, optax.sgd(LR, momentum=BETA, nesterov=True), N)
    assert leaves_equal(heavy, cr.momentum(loss, P0, LR, BETA, N, nesterov=True))
    # float32 in, float32 out.
    p32 = cr.optimizer_path(loss, P0.astype(jnp.float32), optax.adam(0.05), 8)
    assert p32.dtype == jnp.float32
    np.testing.assert_allclose(p32, path, rtol=1e-5)


def test_optimizer_path_names_itself_and_the_first_failing_step():
    # log θ from θ_0 = (0.5, 0.2) at lr 0.3: θ_1 = θ_0 − 0.3/θ_0 = (−0.1, −1.3), where
    # log is NaN, so the first failing step is k = 1.
    with pytest.raises(Exception, match=r"optimizer_path: .*step k = 1 \(from θ_1"):
        cr.optimizer_path(
            lambda p: jnp.sum(jnp.log(p)), jnp.array([0.5, 0.2]), optax.sgd(0.3), 5
        )
    with pytest.raises(
        cr.InvalidInputError, match="optimizer_path: `method` must be an"
    ):
        cr.optimizer_path(linear, P0, "gd", N, CORRIDOR)
    with pytest.raises(cr.InvalidInputError, match="optimizer_path: `n_steps`"):
        cr.optimizer_path(linear, P0, optax.sgd(LR), -1, CORRIDOR)
