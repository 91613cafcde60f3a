import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import corridors as cr

from .helpers import RUNTIME_ERRORS, compilations, tree_allclose
from .problems import (
    cone,
    mlp_loss,
    mlp_problem,
    quadratic,
    quadratic_flow,
    random_spd,
    scipy_flow,
)

seeds = st.integers(0, 2**32 - 1)


@given(seeds, st.integers(1, 5))
def test_flow_matches_the_matrix_exponential_on_quadratics(seed, dim):
    rng = np.random.default_rng(seed)
    # Eigenvalues in [-0.3, 3]: indefinite quadratics included (the flow then grows).
    a = random_spd(rng, dim, low=-0.3, high=3.0)
    b, theta0 = rng.normal(size=(2, dim))
    ts = np.linspace(0.0, 3.0, 7)
    flow = cr.gradient_flow(
        quadratic, jnp.asarray(theta0), ts, (jnp.asarray(a), jnp.asarray(b))
    )
    exact = np.stack([quadratic_flow(a, b, theta0, t) for t in ts])
    np.testing.assert_allclose(flow.params, exact, rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(flow.ts, ts)


def test_flow_agrees_with_scipy_dop853_on_an_mlp():
    params, data = mlp_problem(sizes=(4, 8, 8, 2), n=16, seed=1)
    ts = np.linspace(0.0, 5.0, 11)
    reference = scipy_flow(mlp_loss, params, ts, data, rtol=1e-12, atol=1e-14)
    flow = cr.gradient_flow(mlp_loss, params, ts, data)
    got = jax.vmap(lambda p: ravel_pytree(p)[0])(flow.params)
    np.testing.assert_allclose(got, reference, atol=1e-8, rtol=0)


def test_dense_flow_interpolates_between_saved_times():
    rng = np.random.default_rng(1)
    a, b, theta0 = random_spd(rng, 3), rng.normal(size=3), rng.normal(size=3)
    args = (jnp.asarray(a), jnp.asarray(b))
    flow = cr.gradient_flow(
        quadratic, jnp.asarray(theta0), jnp.array([0.0, 2.0]), args, dense=True
    )
    times = np.array([0.1, 0.77, 1.234, 1.99])
    exact = np.stack([quadratic_flow(a, b, theta0, t) for t in times])
    np.testing.assert_allclose(flow.evaluate(times), exact, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(flow.evaluate(1.234), exact[2], rtol=1e-8, atol=1e-8)
    with pytest.raises(eqx.EquinoxRuntimeError, match="outside the solved interval"):
        flow.evaluate(2.5)
    sparse = cr.gradient_flow(
        quadratic, jnp.asarray(theta0), jnp.array([0.0, 2.0]), args
    )
    with pytest.raises(ValueError, match="dense=True"):
        sparse.evaluate(1.0)


@given(seeds)
def test_modified_flow_matches_its_closed_form(seed):
    rng = np.random.default_rng(seed)
    a, b, theta0 = random_spd(rng, 3), rng.normal(size=3), rng.normal(size=3)
    lr = rng.uniform(0.01, 0.3)
    ts = np.linspace(0.0, 2.0, 5)
    args = (jnp.asarray(a), jnp.asarray(b))
    flow = cr.gradient_flow(quadratic, jnp.asarray(theta0), ts, args, modified=lr)
    exact = np.stack([quadratic_flow(a, b, theta0, t, modified=lr) for t in ts])
    np.testing.assert_allclose(flow.params, exact, rtol=1e-8, atol=1e-8)


def test_flow_in_a_cone_is_the_straight_line_and_the_loss_falls_linearly():
    center, slope, offset = jnp.array([1.0, -2.0, 0.5]), 1.5, 0.2
    theta0 = jnp.array([4.0, 2.0, -3.0])
    ts = jnp.linspace(0.0, 3.0, 13)  # the apex is reached at t = ‖θ0 − c‖/slope ≈ 4.4
    flow = cr.gradient_flow(cone, theta0, ts, (center, slope, offset))
    unit = (theta0 - center) / jnp.linalg.norm(theta0 - center)
    np.testing.assert_allclose(
        flow.params, theta0 - slope * ts[:, None] * unit, atol=1e-12
    )
    losses = jax.vmap(lambda p: cone(p, center, slope, offset))(flow.params)
    np.testing.assert_allclose(losses, losses[0] - slope**2 * ts, atol=1e-12)


def test_stiff_solver_handles_a_sharp_quadratic_in_far_fewer_steps():
    # Curvatures 1 and 1e4: an explicit solver's steps are capped by stability (~1e-4).
    a = jnp.diag(jnp.array([1.0, 1e4]))
    b = jnp.zeros(2)
    theta0 = jnp.array([1.0, 1.0])
    ts = jnp.array([0.0, 5.0])
    stiff = cr.gradient_flow(quadratic, theta0, ts, (a, b), solver="stiff")
    explicit = cr.gradient_flow(quadratic, theta0, ts, (a, b))
    exact = np.array([np.exp(-5.0), 0.0])
    np.testing.assert_allclose(stiff.params[-1], exact, atol=1e-9)
    assert int(stiff.stats["num_steps"]) * 20 < int(explicit.stats["num_steps"])


def test_stats_count_every_vector_field_evaluation():
    calls = []

    def counted(theta, a, b):
        jax.debug.callback(lambda: calls.append(1))
        return quadratic(theta, a, b)

    rng = np.random.default_rng(2)
    args = (jnp.asarray(random_spd(rng, 3)), jnp.asarray(rng.normal(size=3)))
    flow = cr.gradient_flow(counted, jnp.ones(3), jnp.linspace(0.0, 4.0, 3), args)
    calls.clear()  # drop the call made while validating
    flow = cr.gradient_flow(counted, jnp.ones(3), jnp.linspace(0.0, 4.0, 3), args)
    jax.block_until_ready(flow.params)
    stats = {name: int(value) for name, value in flow.stats.items()}
    assert (
        stats["num_steps"] == stats["num_accepted_steps"] + stats["num_rejected_steps"]
    )
    # One more evaluation than the solve: the finiteness check at params0.
    assert len(calls) == stats["num_evaluations"] + 1


def test_flow_on_a_pytree_equals_the_flow_on_the_flat_vector():
    params, data = mlp_problem(sizes=(3, 5, 2), n=8, seed=3)
    flat0, unravel = ravel_pytree(params)
    ts = jnp.linspace(0.0, 2.0, 5)
    tree_flow = cr.gradient_flow(mlp_loss, params, ts, data)
    flat_flow = cr.gradient_flow(
        lambda f, x, y: mlp_loss(unravel(f), x, y), flat0, ts, data
    )
    assert jax.tree.structure(tree_flow.params) == jax.tree.structure(params)
    got = jax.vmap(lambda p: ravel_pytree(p)[0])(tree_flow.params)
    np.testing.assert_allclose(got, flat_flow.params, atol=1e-9)


def test_flow_accepts_any_diffrax_solver():
    a, b = jnp.diag(jnp.array([1.0, 2.0])), jnp.zeros(2)
    ts = jnp.array([0.0, 1.0])
    flow = cr.gradient_flow(quadratic, jnp.ones(2), ts, (a, b), solver=diffrax.Tsit5())
    np.testing.assert_allclose(flow.params[-1], np.exp([-1.0, -2.0]), rtol=1e-8)


def test_flow_in_float32():
    a, b = jnp.diag(jnp.array([1.0, 2.0], jnp.float32)), jnp.zeros(2, jnp.float32)
    ts = jnp.linspace(0.0, 1.0, 3, dtype=jnp.float32)
    flow = cr.gradient_flow(
        quadratic, jnp.ones(2, jnp.float32), ts, (a, b), rtol=1e-6, atol=1e-7
    )
    assert flow.params.dtype == jnp.float32
    np.testing.assert_allclose(flow.params[-1], np.exp([-1.0, -2.0]), rtol=1e-5)


def test_flow_is_jit_compatible():
    a, b = jnp.diag(jnp.array([1.0, 3.0])), jnp.zeros(2)

    @jax.jit
    def final_point(theta0, ts):
        return cr.gradient_flow(quadratic, theta0, ts, (a, b)).params[-1]

    got = final_point(jnp.ones(2), jnp.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(got, np.exp([-1.0, -3.0]), rtol=1e-8)
    with pytest.raises(RUNTIME_ERRORS, match="strictly increasing"):
        final_point(jnp.ones(2), jnp.array([0.0, 1.0, 0.5]))
    with pytest.raises(RUNTIME_ERRORS, match="NaN or Inf"):
        final_point(jnp.array([1.0, jnp.nan]), jnp.array([0.0, 1.0]))


def test_hitting_max_steps_is_an_error():
    a, b = jnp.diag(jnp.array([1.0, 3.0])), jnp.zeros(2)
    with pytest.raises(eqx.EquinoxRuntimeError, match="max_steps=3"):
        cr.gradient_flow(
            quadratic, jnp.ones(2), jnp.array([0.0, 10.0]), (a, b), max_steps=3
        )


def test_a_loss_that_is_not_finite_at_the_start_is_an_error():
    with pytest.raises(eqx.EquinoxRuntimeError, match="loss"):
        cr.gradient_flow(
            lambda th: jnp.sum(jnp.log(th)), -jnp.ones(2), jnp.array([0.0, 1.0])
        )


@pytest.mark.parametrize(
    ("ts", "match"),
    [
        ([0.0, 1.0, 1.0], "strictly increasing"),
        ([1.0, 0.0], "strictly increasing"),
        ([0.0, np.nan], "NaN"),
        ([[0.0, 1.0]], "1-D"),
    ],
)
def test_bad_times_are_refused(ts, match):
    with pytest.raises(ValueError, match=match):
        cr.gradient_flow(quadratic, jnp.ones(2), ts, (jnp.eye(2), jnp.zeros(2)))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"solver": "rk4"}, "`solver`"),
        ({"solver": 3}, "`solver`"),
        ({"modified": -0.1}, "`modified`"),
        ({"rtol": 0.0}, "`rtol`"),
        ({"max_steps": 0}, "`max_steps`"),
    ],
)
def test_bad_options_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        cr.gradient_flow(
            quadratic, jnp.ones(2), [0.0, 1.0], (jnp.eye(2), jnp.zeros(2)), **options
        )


def test_flow_of_a_single_time_is_the_start():
    flow = cr.gradient_flow(quadratic, jnp.ones(2), [0.5], (jnp.eye(2), jnp.zeros(2)))
    assert tree_allclose(flow.params, jnp.ones((1, 2)))


@pytest.mark.parametrize(
    "call",
    [
        lambda p: cr.gradient_flow(_quadratic, p, jnp.array([0.0, 0.5])).params,
        lambda p: cr.modified_flow(_quadratic, p, jnp.array([0.0, 0.5]), 0.1).params,
        lambda p: cr.measure_drift(_quadratic, p, 0.1, 3).distance,
    ],
)
def test_a_second_call_at_new_values_reuses_the_compiled_solve(call):
    # The jitted kernel behind each public flow is compiled once: new values of the
    # same shapes build no program (a lost `jit` would recompile the solve each call).
    call(jnp.array([1.0, -1.0]))
    assert compilations(lambda: call(jnp.array([0.3, 2.0]))) == 0


def _quadratic(theta):
    return 0.5 * jnp.sum(jnp.array([1.0, 3.0]) * theta**2)
