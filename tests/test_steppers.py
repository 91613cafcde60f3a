import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import corridors as cr

from .helpers import RUNTIME_ERRORS, log_log_slope, tree_allclose
from .problems import cone, mlp_loss, mlp_problem, quadratic, quadratic_flow, random_spd

seeds = st.integers(0, 2**32 - 1)

# Kutta's 3/8 rule (order 4) and Bogacki–Shampine (order 3): tableaux given by the user.
THREE_EIGHTHS = diffrax.ButcherTableau(
    c=np.array([1 / 3, 2 / 3, 1.0]),
    b_sol=np.array([1 / 8, 3 / 8, 3 / 8, 1 / 8]),
    b_error=np.zeros(4),
    a_lower=(np.array([1 / 3]), np.array([-1 / 3, 1.0]), np.array([1.0, -1.0, 1.0])),
)
# (tableau, order); ButcherTableau holds arrays and is unhashable, hence no dict.
METHODS = [
    ("euler", 1),
    ("midpoint", 2),
    ("heun", 2),
    ("ralston", 2),
    ("rk4", 4),
    (THREE_EIGHTHS, 4),
    (diffrax.Bosh3.tableau, 3),
]


def random_quadratic(seed, dim=3):
    rng = np.random.default_rng(seed)
    a, b, theta0 = random_spd(rng, dim), rng.normal(size=dim), rng.normal(size=dim)
    return a, b, theta0, (jnp.asarray(a), jnp.asarray(b))


def random_cone(seed, dim=3):
    """A cone and a start far enough from the apex that short runs never reach it."""
    rng = np.random.default_rng(seed)
    center = rng.normal(size=dim)
    direction = rng.normal(size=dim)
    slope = rng.uniform(0.2, 2.0)
    theta0 = center + rng.uniform(5.0, 10.0) * direction / np.linalg.norm(direction)
    return jnp.asarray(theta0), (jnp.asarray(center), slope, rng.normal())


def cone_line(theta0, args, ts):
    """The exact flow of a cone: the straight ray to the apex at speed `slope`."""
    center, slope, _ = args
    unit = (theta0 - center) / jnp.linalg.norm(theta0 - center)
    return theta0 - slope * jnp.asarray(ts)[:, None] * unit


@given(seeds)
def test_gd_matches_the_closed_form_on_quadratics(seed):
    a, b, theta0, args = random_quadratic(seed)
    lr, n = 0.2, 12
    fixed = np.linalg.solve(a, -b)
    step = np.eye(3) - lr * a
    exact = np.stack(
        [
            fixed + np.linalg.matrix_power(step, k) @ (theta0 - fixed)
            for k in range(n + 1)
        ]
    )
    np.testing.assert_allclose(
        cr.gd(quadratic, theta0, lr, n, args), exact, rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_matches_the_optax_convention_recurrence(nesterov):
    a, b, theta0, args = random_quadratic(1)
    lr, beta, n = 0.1, 0.8, 15
    theta, velocity, expected = theta0.copy(), np.zeros(3), [theta0.copy()]
    for _ in range(n):
        grad = a @ theta + b
        velocity = grad + beta * velocity
        theta = theta - lr * (grad + beta * velocity if nesterov else velocity)
        expected.append(theta.copy())
    got = cr.momentum(quadratic, theta0, lr, beta, n, args, nesterov=nesterov)
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-12, atol=1e-12)


def test_momentum_with_beta_zero_is_gd():
    _, _, theta0, args = random_quadratic(2)
    assert tree_allclose(
        cr.momentum(quadratic, theta0, 0.1, 0.0, 7, args),
        cr.gd(quadratic, theta0, 0.1, 7, args),
    )


def test_euler_is_gd():
    params, data = mlp_problem(seed=2)
    assert tree_allclose(
        cr.runge_kutta(mlp_loss, params, 0.05, 6, data, tableau="euler"),
        cr.gd(mlp_loss, params, 0.05, 6, data),
        rtol=1e-13,
    )


@pytest.mark.parametrize(
    ("tableau", "order"),
    METHODS,
    ids=["euler", "midpoint", "heun", "ralston", "rk4", "3/8", "bosh3"],
)
def test_runge_kutta_global_error_order(tableau, order):
    a, b, theta0, args = random_quadratic(3)
    horizon = 2.0
    steps = np.array([16, 23, 32, 45, 64])
    lrs = horizon / steps
    exact = quadratic_flow(a, b, theta0, horizon)
    errors = [
        np.linalg.norm(
            cr.runge_kutta(quadratic, theta0, h, int(n), args, tableau=tableau)[-1]
            - exact
        )
        for h, n in zip(lrs, steps, strict=True)
    ]
    assert abs(log_log_slope(lrs, errors) - order) < 0.15


@given(seeds)
def test_every_method_follows_the_straight_flow_line_in_a_cone(seed):
    theta0, args = random_cone(seed)
    lr, n = (
        0.1,
        10,
    )  # flow time 1 (momentum: < 4.2), less than the distance to the apex / slope
    ts = lr * np.arange(n + 1)
    for tableau, _ in METHODS:
        iterates = cr.runge_kutta(cone, theta0, lr, n, args, tableau=tableau)
        np.testing.assert_allclose(iterates, cone_line(theta0, args, ts), atol=1e-9)
    np.testing.assert_allclose(
        cr.gd(cone, theta0, lr, n, args), cone_line(theta0, args, ts), atol=1e-9
    )
    beta = 0.7
    speed_up = np.concatenate(
        [[0.0], np.cumsum((1 - beta ** np.arange(1, n + 1)) / (1 - beta))]
    )
    np.testing.assert_allclose(
        cr.momentum(cone, theta0, lr, beta, n, args),
        cone_line(theta0, args, lr * speed_up),
        atol=1e-9,
    )


def test_sgd_takes_one_step_per_batch():
    params, (x, y) = mlp_problem(sizes=(3, 4, 1), n=12, seed=4)
    batches = (x.reshape(4, 3, 3), y.reshape(4, 3, 1))
    expected = [params]
    for k in range(4):
        grad = jax.grad(mlp_loss)(expected[-1], batches[0][k], batches[1][k])
        expected.append(jax.tree.map(lambda p, g: p - 0.1 * g, expected[-1], grad))
    expected = jax.tree.map(lambda *leaves: jnp.stack(leaves), *expected)
    assert tree_allclose(cr.sgd(mlp_loss, params, 0.1, batches), expected, rtol=1e-12)


def test_sgd_with_a_single_array_of_batches_and_extra_args():
    def loss(theta, batch, scale):
        return scale * jnp.mean((batch @ theta) ** 2)

    batches = jax.random.normal(jax.random.key(0), (5, 4, 2))
    theta = jnp.ones(2)
    expected = [theta]
    for batch in batches:
        expected.append(expected[-1] - 0.05 * jax.grad(loss)(expected[-1], batch, 2.0))
    np.testing.assert_allclose(
        cr.sgd(loss, theta, 0.05, batches, (2.0,)), jnp.stack(expected), rtol=1e-12
    )


def test_steppers_are_jit_compatible_and_do_not_recompile_for_a_new_lr():
    traces = []

    def loss(theta, a, b):
        traces.append(1)  # runs only while JAX traces
        return quadratic(theta, a, b)

    _, _, theta0, args = random_quadratic(5)
    cr.gd(loss, theta0, 0.1, 5, args)
    count = len(traces)
    second = cr.gd(loss, theta0, 0.2, 5, args)
    assert len(traces) == count
    jitted = jax.jit(lambda lr: cr.gd(loss, theta0, lr, 5, args))
    assert tree_allclose(jitted(0.2), second, rtol=1e-14)


def test_steppers_run_in_float32_close_to_float64():
    params, data = mlp_problem(seed=6)
    params32 = jax.tree.map(lambda x: x.astype(jnp.float32), params)
    data32 = tuple(x.astype(jnp.float32) for x in data)
    runs = {
        "gd": lambda p, d: cr.gd(mlp_loss, p, 0.1, 3, d),
        "momentum": lambda p, d: cr.momentum(mlp_loss, p, 0.1, 0.9, 3, d),
        "rk4": lambda p, d: cr.runge_kutta(mlp_loss, p, 0.1, 3, d),
    }
    for run in runs.values():
        single = run(params32, data32)
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(single))
        assert tree_allclose(single, run(params, data), rtol=1e-5, atol=1e-6)


def test_divergence_is_an_error_not_a_silent_nan():
    with pytest.raises(RUNTIME_ERRORS, match="became NaN or Inf"):
        cr.gd(quadratic, jnp.ones(2), 10.0, 2000, (jnp.eye(2) * 100.0, jnp.zeros(2)))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: cr.gd(quadratic, jnp.ones(2), 0.0, 3, (jnp.eye(2), jnp.zeros(2))),
            "`lr`",
        ),
        (
            lambda: cr.gd(quadratic, jnp.ones(2), -1.0, 3, (jnp.eye(2), jnp.zeros(2))),
            "`lr`",
        ),
        (
            lambda: cr.gd(quadratic, jnp.ones(2), 0.1, -1, (jnp.eye(2), jnp.zeros(2))),
            "`n_steps`",
        ),
        (
            lambda: cr.gd(quadratic, jnp.ones(2), 0.1, 2.5, (jnp.eye(2), jnp.zeros(2))),
            "`n_steps`",
        ),
        (
            lambda: cr.gd(
                quadratic, jnp.array([1.0, jnp.inf]), 0.1, 3, (jnp.eye(2), jnp.zeros(2))
            ),
            "`params0`",
        ),
        (
            lambda: cr.gd(quadratic, jnp.ones(2), 0.1, 3, (jnp.eye(3), jnp.zeros(3))),
            "`loss",
        ),
        (lambda: cr.gd(quadratic, jnp.ones(2), 0.1, 3, jnp.eye(2)), "`args`"),
        (lambda: cr.gd(lambda th: th, jnp.ones(2), 0.1, 3), "scalar"),
        (
            lambda: cr.gd(quadratic, jnp.arange(2), 0.1, 3, (jnp.eye(2), jnp.zeros(2))),
            "floating",
        ),
        (
            lambda: cr.momentum(
                quadratic, jnp.ones(2), 0.1, 1.0, 3, (jnp.eye(2), jnp.zeros(2))
            ),
            "`beta`",
        ),
        (
            lambda: cr.momentum(
                quadratic, jnp.ones(2), 0.1, -0.1, 3, (jnp.eye(2), jnp.zeros(2))
            ),
            "`beta`",
        ),
        (
            lambda: cr.runge_kutta(
                quadratic,
                jnp.ones(2),
                0.1,
                3,
                (jnp.eye(2), jnp.zeros(2)),
                tableau="rk5",
            ),
            "`tableau`",
        ),
        (
            lambda: cr.runge_kutta(
                quadratic,
                jnp.ones(2),
                0.1,
                3,
                (jnp.eye(2), jnp.zeros(2)),
                tableau=diffrax.Kvaerno5.tableau,
            ),
            "explicit",
        ),
        (
            lambda: cr.sgd(
                mlp_loss,
                mlp_problem()[0],
                0.1,
                (jnp.ones((3, 2, 4)), jnp.ones((2, 2, 2))),
            ),
            "`batches`",
        ),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_equal_tableaux_built_apart_share_one_compilation():
    traces = []

    def loss(theta, a, b):
        traces.append(1)  # runs only while JAX traces
        return quadratic(theta, a, b)

    def heun():
        return diffrax.ButcherTableau(
            c=np.array([1.0]),
            b_sol=np.array([0.5, 0.5]),
            b_error=np.array([0.5, -0.5]),
            a_lower=(np.array([1.0]),),
        )

    _, _, theta0, args = random_quadratic(6)
    first = cr.runge_kutta(loss, theta0, 0.1, 4, args, tableau=heun())
    count = len(traces)
    second = cr.runge_kutta(loss, theta0, 0.1, 4, args, tableau=heun())
    assert len(traces) == count
    assert tree_allclose(first, second, rtol=0)
    assert tree_allclose(
        first, cr.runge_kutta(loss, theta0, 0.1, 4, args, tableau="heun")
    )


def test_new_float_args_do_not_recompile():
    traces = []

    def loss(theta, center, slope, offset):
        traces.append(1)  # runs only while JAX traces
        return cone(theta, center, slope, offset)

    theta0, center = jnp.array([5.0, 1.0]), jnp.zeros(2)
    first = cr.gd(loss, theta0, 0.1, 3, (center, 1.5, 0.25))
    count = len(traces)
    second = cr.gd(loss, theta0, 0.1, 3, (center, 2.5, -1.0))
    assert len(traces) == count
    # The slope is used, not frozen at its first value: a steeper cone moves faster.
    assert float(jnp.linalg.norm(second[-1] - theta0)) > float(
        jnp.linalg.norm(first[-1] - theta0)
    )
