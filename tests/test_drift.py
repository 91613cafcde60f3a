import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import corridors as cr
from corridors.landscapes import Cone

from .helpers import log_log_slope
from .problems import cone, mlp_loss, mlp_problem, quadratic, quadratic_flow, random_spd

seeds = st.integers(0, 2**32 - 1)


def quadratic_problem(seed=0, dim=4):
    rng = np.random.default_rng(seed)
    a, b, theta0 = random_spd(rng, dim), rng.normal(size=dim), rng.normal(size=dim)
    return jnp.asarray(theta0), (jnp.asarray(a), jnp.asarray(b))


# Off-corridor problems for the convergence orders: a random quadratic and a tanh MLP.
MLP_PARAMS, MLP_DATA = mlp_problem(sizes=(3, 6, 2), n=10, seed=7)
OFF_CORRIDOR = {
    "quadratic": (quadratic, *quadratic_problem(11)),
    "mlp": (mlp_loss, MLP_PARAMS, MLP_DATA),
}


# ---- in a corridor: everything lands on the flow -----------------------------------


@given(seeds)
def test_every_method_lands_on_the_flow_in_a_cone(seed):
    rng = np.random.default_rng(seed)
    center, direction = rng.normal(size=(2, 3))
    slope = rng.uniform(0.2, 2.0)
    theta0 = center + rng.uniform(6.0, 10.0) * direction / np.linalg.norm(direction)
    landscape = Cone(center=jnp.asarray(center), slope=slope, offset=rng.normal())
    lr, n = 0.1, 8  # momentum's flow time ≤ 0.8/(1 − β) = 4 < apex distance / slope ≥ 5
    # Every tableau is checked against the exact line in test_steppers; here the
    # measurement itself, once per kind of method, against the closed-form flow (the
    # solved flow reference on a cone is tested below; in each of these five programs
    # it would triple the compile time).
    for method in ["gd", "momentum", "nesterov", "rk4", diffrax.Bosh3.tableau]:
        drift = cr.measure_drift(
            landscape.loss, jnp.asarray(theta0), lr, n, method=method, beta=0.8,
            reference=landscape.exact_flow,
        )  # fmt: skip
        assert float(drift.distance.max()) <= 1e-9, method
        assert float(drift.relative.max()) <= 1e-9, method


def test_matched_times_follow_the_closed_form_speed_up():
    theta0, args = jnp.array([9.0, 0.0]), (jnp.zeros(2), 1.0, 0.0)
    lr, beta, n = 0.1, 0.6, 6
    k = np.arange(n + 1)
    heavy = cr.measure_drift(cone, theta0, lr, n, args, method="momentum", beta=beta)
    # lr·Σ_{j=1..k}(1 − β^j)/(1 − β) = lr·(k − β(1 − β^k)/(1 − β))/(1 − β)
    closed = lr * (k - beta * (1 - beta**k) / (1 - beta)) / (1 - beta)
    np.testing.assert_allclose(heavy.ts, closed, rtol=1e-13, atol=1e-15)
    gd = cr.measure_drift(cone, theta0, lr, n, args)
    np.testing.assert_allclose(gd.ts, lr * k, rtol=1e-14)
    # In a cone the loss falls linearly in flow time at rate slope² = 1.
    np.testing.assert_allclose(heavy.loss_method, 9.0 - heavy.ts, atol=1e-12)
    np.testing.assert_allclose(heavy.loss_reference, 9.0 - heavy.ts, atol=1e-12)


# ---- off corridors: the drift orders -------------------------------------------------


@pytest.mark.parametrize("problem", list(OFF_CORRIDOR))
def test_one_step_drift_has_order_two(problem):
    loss, params0, args = OFF_CORRIDOR[problem]
    lrs = np.geomspace(0.004, 0.04, 6)
    drifts = [cr.measure_drift(loss, params0, h, 1, args).distance[-1] for h in lrs]
    assert abs(log_log_slope(lrs, drifts) - 2.0) < 0.15


@pytest.mark.parametrize("problem", list(OFF_CORRIDOR))
def test_fixed_horizon_drift_has_order_one(problem):
    loss, params0, args = OFF_CORRIDOR[problem]
    steps = np.array([10, 14, 20, 28, 40, 56])
    lrs = 1.0 / steps
    # sweep_drift computes ‖θ_n − φ(n·lr)‖ for all lrs in one program; its equality with
    # per-lr measure_drift is tested below, and it compiles once instead of six times.
    drifts = cr.sweep_drift(loss, params0, lrs, 1.0, args)
    np.testing.assert_array_equal(drifts.n_steps, steps)
    assert abs(log_log_slope(lrs, drifts) - 1.0) < 0.15


@pytest.mark.parametrize("problem", list(OFF_CORRIDOR))
def test_one_step_drift_from_the_modified_flow_has_order_three(problem):
    loss, params0, args = OFF_CORRIDOR[problem]
    lrs = np.geomspace(0.01, 0.1, 6)
    drifts = [
        cr.measure_drift(loss, params0, h, 1, args, reference="modified").distance[-1]
        for h in lrs
    ]
    assert abs(log_log_slope(lrs, drifts) - 3.0) < 0.15


@pytest.mark.parametrize("problem", list(OFF_CORRIDOR))
def test_rk4_global_error_has_order_four(problem):
    loss, params0, args = OFF_CORRIDOR[problem]
    steps = np.array([8, 11, 16, 23, 32])
    lrs = 1.0 / steps
    # Every lr runs the same static number of steps (one compiled program, lr traced:
    # five n_steps would be five programs); the error at T = 1 is read at step n = 1/lr,
    # where the reference is φ(n·lr) = φ(1) as in an n-step run.
    errors = [
        cr.measure_drift(
            loss, params0, h, int(steps.max()), args, method="rk4", rtol=1e-12,
            atol=1e-14,
        ).distance[n]
        for h, n in zip(lrs, steps, strict=True)
    ]  # fmt: skip
    assert abs(log_log_slope(lrs, errors) - 4.0) < 0.15


def test_drift_on_a_quadratic_against_closed_forms():
    theta0, args = quadratic_problem(2, dim=3)
    a, b = (np.asarray(x) for x in args)
    lr, n = 0.05, 20
    drift = cr.measure_drift(quadratic, theta0, lr, n, args)
    fixed = np.linalg.solve(a, -b)
    step = np.eye(3) - lr * a
    gd = np.stack(
        [
            fixed + np.linalg.matrix_power(step, k) @ (theta0 - fixed)
            for k in range(n + 1)
        ]
    )
    flow = np.stack([quadratic_flow(a, b, theta0, lr * k) for k in range(n + 1)])
    # The reference solve (rtol 1e-10) is accurate to ~1e-9 after 20 steps of 0.05 flow
    # time; the drift itself is ~5e-3, so this still checks it to 6 digits.
    np.testing.assert_allclose(
        drift.distance, np.linalg.norm(gd - flow, axis=1), atol=5e-9
    )
    np.testing.assert_allclose(drift.iterates, gd, atol=1e-12)
    np.testing.assert_allclose(drift.reference, flow, atol=1e-9)
    losses = [0.5 * x @ a @ x + b @ x for x in flow]
    np.testing.assert_allclose(drift.loss_reference, losses, atol=1e-9)


def test_relative_drift_divides_by_the_flow_path_length():
    # In 1-D the flow moves monotonically, so its path length is |φ(t) − θ0|.
    a, b, theta0 = jnp.array([[2.0]]), jnp.array([0.5]), jnp.array([3.0])
    drift = cr.measure_drift(quadratic, theta0, 0.1, 10, (a, b))
    path = np.abs(np.asarray(drift.reference)[:, 0] - 3.0)
    assert drift.relative[0] == 0.0
    np.testing.assert_allclose(
        drift.relative[1:], drift.distance[1:] / path[1:], rtol=1e-8
    )


# ---- sweep ---------------------------------------------------------------------------


@pytest.mark.parametrize("problem", list(OFF_CORRIDOR))
def test_sweep_drift_equals_per_lr_measure_drift(problem):
    loss, params0, args = OFF_CORRIDOR[problem]
    lrs = np.array([0.3, 0.13, 0.1, 0.07])
    horizon = 1.3
    sweep = cr.sweep_drift(loss, params0, lrs, horizon, args)
    steps = np.floor(horizon / lrs).astype(int)
    # ‖θ_n − φ(n·lr)‖ read at step n of equally long runs: one compiled measure_drift
    # (n_steps is static) instead of one per lr.
    expected = [
        cr.measure_drift(loss, params0, h, int(steps.max()), args).distance[n]
        for h, n in zip(lrs, steps, strict=True)
    ]
    np.testing.assert_array_equal(sweep.n_steps, steps)
    np.testing.assert_allclose(sweep.ts, lrs * steps, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(sweep), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(jnp.asarray(sweep), sweep.distance)
    assert len(sweep) == len(lrs) and float(sweep[2]) == float(sweep.distance[2])


def test_sweep_drift_in_a_cone_is_zero():
    theta0, args = jnp.array([9.0, 1.0]), (jnp.zeros(2), 1.0, 0.0)
    sweep = cr.sweep_drift(cone, theta0, np.geomspace(0.01, 0.5, 7), 4.0, args)
    assert float(np.max(sweep)) <= 1e-9


# ---- SGD's implicit regularizers --------------------------------------------------------


def batch_quadratic(theta, a, b):
    return 0.5 * theta @ a @ theta + b @ theta


@given(seeds)
def test_sgd_regularizers_match_closed_forms(seed):
    rng = np.random.default_rng(seed)
    m, dim, lr = 3, 4, rng.uniform(0.01, 0.5)
    mats = np.stack([random_spd(rng, dim) for _ in range(m)])
    vecs = rng.normal(size=(m, dim))
    theta = rng.normal(size=dim)
    grads = np.einsum("kij,j->ki", mats, theta) + vecs
    mean_grad, mean_hessian = grads.mean(0), mats.mean(0)
    deviations = grads - mean_grad
    hessian_deviations = mats - mean_hessian
    regs = cr.sgd_regularizers(
        batch_quadratic, jnp.asarray(theta), lr, (jnp.asarray(mats), jnp.asarray(vecs))
    )
    np.testing.assert_allclose(
        regs.full_batch, lr / 4 * mean_grad @ mean_grad, rtol=1e-12
    )
    np.testing.assert_allclose(
        regs.per_batch, lr / (4 * m) * np.sum(deviations**2), rtol=1e-12
    )
    np.testing.assert_allclose(
        regs.full_batch_grad, lr / 2 * mean_hessian @ mean_grad, rtol=1e-12
    )
    per_batch_grad = (
        lr / (2 * m) * np.einsum("kij,kj->i", hessian_deviations, deviations)
    )
    np.testing.assert_allclose(
        regs.per_batch_grad, per_batch_grad, rtol=1e-10, atol=1e-14
    )


def cone_plus_batch_curvature(theta, sign, curvature):
    """A cone plus ±½θᵀBθ: the mean over the two batches is the cone itself."""
    return 2.0 * jnp.linalg.norm(theta - 1.0) + sign * 0.5 * theta @ curvature @ theta


def test_in_a_corridor_only_the_full_batch_regularizer_vanishes():
    curvature = jnp.diag(jnp.array([1.0, 2.0, 3.0]))
    batches = (jnp.array([1.0, -1.0]), jnp.stack([curvature, curvature]))
    theta = jnp.array([4.0, -2.0, 5.0])
    regs = cr.sgd_regularizers(cone_plus_batch_curvature, theta, 0.1, batches)
    assert float(jnp.linalg.norm(regs.full_batch_grad)) <= 1e-12
    np.testing.assert_allclose(
        regs.full_batch, 0.1 / 4 * 2.0**2, rtol=1e-12
    )  # ‖∇L‖ = slope
    # ∇L_k − ∇L = ±Bθ, so the per-batch term is (lr/4)‖Bθ‖² with gradient (lr/2)B²θ.
    np.testing.assert_allclose(
        regs.per_batch, 0.1 / 4 * jnp.sum((curvature @ theta) ** 2), rtol=1e-12
    )
    np.testing.assert_allclose(
        regs.per_batch_grad, 0.1 / 2 * curvature @ curvature @ theta, rtol=1e-12
    )


# ---- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda p, a: cr.measure_drift(quadratic, p, 0.1, 3, a, method="adam"),
            "`method`",
        ),
        (
            lambda p, a: cr.measure_drift(quadratic, p, 0.1, 3, a, reference="exact"),
            "`reference`",
        ),
        (
            lambda p, a: cr.measure_drift(
                quadratic, p, 0.1, 3, a, method="momentum", reference="modified"
            ),
            "modified",
        ),
        (lambda p, a: cr.measure_drift(quadratic, p, 0.1, 0, a), "`n_steps`"),
        (lambda p, a: cr.measure_drift(quadratic, p, -0.1, 3, a), "`lr`"),
        (
            lambda p, a: cr.measure_drift(
                quadratic, p, 0.1, 3, a, method="momentum", beta=1.2
            ),
            "`beta`",
        ),
        (lambda p, a: cr.sweep_drift(quadratic, p, [0.1, 2.0], 1.0, a), "horizon"),
        (lambda p, a: cr.sweep_drift(quadratic, p, [0.1, -0.1], 1.0, a), "`lrs`"),
        (lambda p, a: cr.sweep_drift(quadratic, p, [], 1.0, a), "`lrs`"),
        (lambda p, a: cr.sweep_drift(quadratic, p, [0.1], np.inf, a), "`horizon`"),
        (
            lambda p, a: cr.sgd_regularizers(quadratic, p, 0.0, (jnp.ones((2, 4, 4)),)),
            "`lr`",
        ),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, match):
    theta0, args = quadratic_problem(0)
    with pytest.raises(ValueError, match=match):
        call(theta0, args)


def test_drift_works_in_float32():
    params32 = jax.tree.map(lambda x: x.astype(jnp.float32), MLP_PARAMS)
    data32 = tuple(x.astype(jnp.float32) for x in MLP_DATA)
    drift32 = cr.measure_drift(
        mlp_loss, params32, 0.05, 10, data32, rtol=1e-6, atol=1e-7
    )
    drift64 = cr.measure_drift(mlp_loss, MLP_PARAMS, 0.05, 10, MLP_DATA)
    assert drift32.distance.dtype == jnp.float32
    np.testing.assert_allclose(drift32.distance, drift64.distance, rtol=1e-3, atol=1e-6)


def test_sweep_drift_compiles_once_per_number_of_lrs():
    traces = []

    def loss(theta, a, b):
        traces.append(1)  # runs only while JAX traces
        return quadratic(theta, a, b)

    theta0, args = quadratic_problem(4)
    lrs = np.array([0.25, 0.1, 0.05])
    cr.sweep_drift(loss, theta0, lrs, 1.0, args)
    count = len(traces)
    # Other horizons change which times n·lr coincide, not the program.
    for horizon in (0.5, 0.3):
        sweep = cr.sweep_drift(loss, theta0, lrs, horizon, args)
        # Read at step n = ⌊horizon/h⌋ of 10-step runs: one compiled measure_drift.
        expected = [
            cr.measure_drift(quadratic, theta0, h, 10, args).distance[
                int(np.floor(horizon / h))
            ]
            for h in lrs
        ]
        np.testing.assert_allclose(np.asarray(sweep), expected, rtol=0, atol=1e-9)
    assert len(traces) == count


def test_sgd_regularizers_old_argument_order_still_works_with_a_warning():
    theta = jnp.array([0.3, -0.2])
    batches = (jnp.array([[1.0, 0.0], [-1.0, 2.0]]),)

    def loss(p, x):
        return 0.5 * jnp.sum((p - x) ** 2) + jnp.sum(p**4)

    new = cr.sgd_regularizers(loss, theta, 0.1, batches)
    with pytest.warns(DeprecationWarning, match="lr, batches"):
        old = cr.sgd_regularizers(loss, theta, batches, 0.1)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old), strict=True):
        np.testing.assert_array_equal(a, b)
    # The per-batch term of a quadratic-plus-quartic: (lr/4m)Σ‖x_k − x̄‖² (the quartic
    # part is the same in every batch loss).
    x = np.asarray(batches[0])
    expected = 0.1 / 4 * np.mean(np.sum((x - x.mean(0)) ** 2, axis=1))
    np.testing.assert_allclose(new.per_batch, expected, rtol=1e-12)
