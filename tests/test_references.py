"""Modified flows of order 1-3 and the principal flow: orders, closed forms, dispatch."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corridors as cr
from corridors._principal import principal_coefficients

from .problems import mlp_loss, mlp_problem

LOCAL_LRS = 0.2 * 2.0 ** (-np.arange(5) / 2)  # 0.2 .. 0.05
HORIZON_LRS = 0.1 * 2.0 ** (-np.arange(5) / 2)  # 0.1 .. 0.025


def one_step_distances(loss, params0, lrs, order, args=()):
    """‖θ₁ − ψ_h(h)‖ for GD against the modified flow of `order` at each h."""
    out = []
    for h in lrs:
        step = jax.tree.map(lambda x: x[1], cr.gd(loss, params0, h, 1, args))
        flow = cr.modified_flow(
            loss, params0, jnp.array([0.0, h]), h, args, order=order
        ).params
        difference = jax.tree.map(lambda a, b: a - b[1], step, flow)
        out.append(
            float(jnp.sqrt(sum(jnp.sum(d**2) for d in jax.tree.leaves(difference))))
        )
    return np.array(out)


def bumpy(theta, a, b):
    """A non-quadratic loss with non-zero third and fourth derivatives."""
    return (
        jnp.sum(a * jnp.cosh(theta))
        + b * theta[0] ** 2 * theta[1]
        + 0.1 * jnp.sum(theta**4)
    )


# Order 2 runs by default; 1 and 3 (about 15 s each on one core) with the slow tests.
@pytest.mark.parametrize(
    "order",
    [
        pytest.param(1, marks=pytest.mark.slow),
        2,
        pytest.param(3, marks=pytest.mark.slow),
    ],
)
def test_modified_flow_orders_on_a_tanh_mlp(order):
    params, data = mlp_problem((3, 4, 2), n=8, seed=1)
    local = cr.drift_order(
        LOCAL_LRS, one_step_distances(mlp_loss, params, LOCAL_LRS, order, data)
    )
    assert abs(local.order - (order + 2)) <= 0.15, local
    reference = ("modified", "modified2", "modified3")[order - 1]
    sweep = cr.sweep_drift(
        mlp_loss, params, HORIZON_LRS, 1.0, data, reference=reference
    )
    fixed = cr.drift_order(HORIZON_LRS, np.asarray(sweep))
    assert abs(fixed.order - (order + 1)) <= 0.15, fixed


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    a=st.floats(0.5, 1.5),
    b=st.floats(0.3, 0.8),
)
def test_modified_flow_orders_on_random_losses(seed, a, b):
    x0 = jnp.asarray(np.random.default_rng(seed).uniform(-0.8, 0.8, size=3))
    args = (jnp.asarray(a), jnp.asarray(b))
    for order in (1, 2, 3):
        # Smaller steps than on the MLP: these losses have larger derivatives, and
        # at h = 0.1 the next term of the series still shows (slope 3.8 for 4).
        lrs = LOCAL_LRS / 4
        local = cr.drift_order(lrs, one_step_distances(bumpy, x0, lrs, order, args))
        assert abs(local.order - (order + 2)) <= 0.15, (order, local)


def test_f3_without_its_third_derivative_term_has_the_wrong_order():
    """Falsification: without −(1/12)D³L[∇L, ∇L], f₃ fails the order-4 test: the
    one-step distance has slope → 3 (its h³ term is −(h³/12)D³L[∇L, ∇L])."""
    args = (jnp.asarray(1.0), jnp.asarray(0.7))
    x0 = jnp.array([0.6, -0.4, 0.3])
    grad = jax.grad(bumpy)

    def field(t, x, h):  # f₁ + h f₂ + h²·(−⅓H²∇L): f₃ without its D³L term
        g, hvp = jax.linearize(lambda p: grad(p, *args), x)
        hg = hvp(g)
        return -g - 0.5 * h * hg - h**2 / 3 * hvp(hg)

    distances = []
    for h in LOCAL_LRS / 4:
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(field), diffrax.Dopri8(), 0.0, h, h / 20, x0, args=h,
            stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-14),
        )  # fmt: skip
        step = x0 - h * grad(x0, *args)
        distances.append(float(jnp.linalg.norm(step - solution.ys[-1])))
    order = cr.drift_order(LOCAL_LRS / 4, distances).order
    # Measured 3.26 here (the h⁴ remainder still shows at h = 0.05); the full f₃ gives
    # 3.97 at the same point and steps.
    assert abs(order - 4.0) > 0.5 and abs(order - 3.0) < 0.35, order


def test_modified_flow_order_1_is_gradient_flow_modified():
    params, data = mlp_problem((3, 4, 2), n=8, seed=2)
    ts = jnp.linspace(0.0, 1.0, 5)
    ours = cr.modified_flow(mlp_loss, params, ts, 0.1, data).params
    theirs = cr.gradient_flow(mlp_loss, params, ts, data, modified=0.1).params
    cr.testing.assert_tree_allclose(ours, theirs, atol=1e-10, rtol=1e-9)


def test_modified_flow_bad_input():
    loss = lambda x: jnp.sum(x**2)  # noqa: E731
    with pytest.raises(cr.InvalidInputError, match="modified_flow: `order`"):
        cr.modified_flow(loss, jnp.ones(2), jnp.array([0.0, 1.0]), 0.1, order=4)
    with pytest.raises(cr.InvalidInputError, match="modified_flow: `lr`"):
        cr.modified_flow(loss, jnp.ones(2), jnp.array([0.0, 1.0]), -0.1)
    with pytest.raises(cr.InvalidInputError, match="modified_flow: `params0`"):
        cr.modified_flow(loss, jnp.array([jnp.nan, 1.0]), jnp.array([0.0, 1.0]), 0.1)


# --- principal flow ------------------------------------------------------------------


def random_quadratic(seed, n, h_lambda_max, *, indefinite):
    """(A, b, x0, h) with eigenvalues of h·A up to `h_lambda_max` (some < 0 if asked)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    spectrum = rng.uniform(0.05, 1.0, size=n)
    spectrum[0] = 1.0
    if indefinite:
        spectrum[-1] = -rng.uniform(0.1, 0.5)
    h = 0.1
    a = (q * (spectrum * h_lambda_max / h)) @ q.T
    return (
        jnp.asarray(a),
        jnp.asarray(rng.normal(size=n)),
        jnp.asarray(rng.normal(size=n)),
        h,
    )


def quadratic(x, a, b):
    return 0.5 * x @ a @ x + b @ x


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    regime=st.sampled_from([(0.05, 0.9), (1.1, 1.9), (2.05, 2.6)]),
    where=st.floats(0.0, 1.0),
    indefinite=st.booleans(),
)
def test_principal_flow_equals_gd_on_quadratics(seed, regime, where, indefinite):
    low, high = regime
    h_lambda = low + where * (high - low)
    a, b, x0, h = random_quadratic(seed, 4, h_lambda, indefinite=indefinite)
    n_steps = 6
    flow = cr.principal_flow(quadratic, x0, h * jnp.arange(n_steps + 1.0), h, (a, b))
    iterates = cr.gd(quadratic, x0, h, n_steps, (a, b))
    scale = 1.0 + float(jnp.abs(iterates).max())
    np.testing.assert_allclose(flow.params, iterates, atol=1e-10 * scale, rtol=0)
    np.testing.assert_allclose(flow.imag, 0.0, atol=1e-10 * scale)


def test_principal_flow_rank_k_equals_gd_on_a_quadratic():
    """Top-k eigenpairs (Lanczos) + series: exact where the complement has hλ tiny."""
    rng = np.random.default_rng(3)
    n, h = 30, 0.1
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    spectrum = np.concatenate([[15.0, 12.0], np.zeros(n - 2)])  # hλ = 1.5, 1.2, 0
    a = jnp.asarray((q * spectrum) @ q.T)
    b, x0 = jnp.asarray(rng.normal(size=n)), jnp.asarray(rng.normal(size=n))
    flow = cr.principal_flow(quadratic, x0, h * jnp.arange(5.0), h, (a, b), rank=2)
    iterates = cr.gd(quadratic, x0, h, 4, (a, b))
    np.testing.assert_allclose(flow.params, iterates, atol=1e-8)


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(1, marks=pytest.mark.slow),
        2,
        pytest.param(3, marks=pytest.mark.slow),
    ],
)
def test_principal_series_is_the_modified_flow_on_quadratics(order):
    a, b, x0, h = random_quadratic(7, 4, 0.5, indefinite=True)
    ts = jnp.linspace(0.0, 1.0, 4)
    series = cr.principal_flow(
        quadratic, x0, ts, h, (a, b), rank=0, series_order=order
    ).params
    modified = cr.modified_flow(quadratic, x0, ts, h, (a, b), order=order).params
    np.testing.assert_allclose(series, modified, atol=1e-10)


def test_principal_coefficients():
    z = jnp.array([-0.5, 0.0, 1e-9, 0.5, 1.5, 3.0])
    real, imag = principal_coefficients(z)
    expected = np.log(np.abs(1 - np.asarray(z, complex)) + 0j) + 1j * np.angle(
        1 - np.asarray(z, complex)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(np.asarray(z) == 0, -1.0, expected / np.asarray(z))
    expected[2] = -1 - 0.5e-9
    np.testing.assert_allclose(real, expected.real, rtol=1e-12)
    np.testing.assert_allclose(imag, expected.imag, rtol=1e-12)


def test_principal_flow_bad_input():
    loss = lambda x: jnp.sum(x**2)  # noqa: E731
    with pytest.raises(cr.InvalidInputError, match="principal_flow: `rank` = 1 needs"):
        cr.principal_flow(loss, jnp.ones(3), jnp.array([0.0, 1.0]), 0.1, rank=1)
    with pytest.raises(cr.InvalidInputError, match="principal_flow: `series_order`"):
        cr.principal_flow(
            loss, jnp.ones(3), jnp.array([0.0, 1.0]), 0.1, rank=0, series_order=0
        )


# --- dispatch --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param("modified2", marks=pytest.mark.slow),
        pytest.param("modified3", marks=pytest.mark.slow),
        "principal",
    ],
)
def test_measure_drift_named_references(reference):
    params, data = mlp_problem((3, 4, 2), n=8, seed=4)
    lr, n = 0.05, 4
    drift = cr.measure_drift(mlp_loss, params, lr, n, data, reference=reference)
    ts = lr * jnp.arange(n + 1.0)
    if reference == "principal":
        expected = cr.principal_flow(mlp_loss, params, ts, lr, data).params
    else:
        expected = cr.modified_flow(
            mlp_loss, params, ts, lr, data, order=int(reference[-1])
        ).params
    cr.testing.assert_tree_allclose(drift.reference, expected, atol=1e-9, rtol=1e-8)
    assert float(drift.relative[-1]) > 0


def test_references_only_for_gd():
    loss = lambda x: jnp.sum(x**2)  # noqa: E731
    with pytest.raises(
        cr.InvalidInputError, match="measure_drift: reference='modified3'"
    ):
        cr.measure_drift(
            loss, jnp.ones(2), 0.1, 2, method="momentum", reference="modified3"
        )
    with pytest.raises(cr.InvalidInputError, match="sweep_drift: `reference`"):
        cr.sweep_drift(loss, jnp.ones(2), [0.1], 1.0, reference="modified4")
