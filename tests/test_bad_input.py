"""Non-finite values are errors that say which value, and arguments are validated
before JAX sees them (issue: no silent NaN, no deep traceback)."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import corridors as cr
from corridors import testing as T
from corridors.landscapes import Cone, LinearRegression, Quadratic

from .helpers import RUNTIME_ERRORS


def q(theta):
    return 0.5 * jnp.sum(theta**2)


def sq(theta):  # NaN loss and gradient at negative entries
    return jnp.sum(jnp.sqrt(theta)) + jnp.sum(theta**2)


def lg(theta):  # NaN loss at negative entries, yet a finite gradient 1/θ + 2θ
    return jnp.sum(jnp.log(theta)) + jnp.sum(theta**2)


def weighted(theta, a):
    return jnp.sum(a * theta**2)


N, P = jnp.array([-1.0, -2.0]), jnp.array([1.0, 2.0])
NAN_ARG = (jnp.array([1.0, jnp.nan]),)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cr.corridor_score(sq, N), "corridor_score: the loss"),
        (lambda: cr.corridor_score(lg, N), "corridor_score: the loss"),
        (lambda: cr.predicted_step_drift(sq, N, 0.1), "predicted_step_drift: the loss"),
        (lambda: cr.hvp(q, P, P * jnp.nan), "hvp: `tangent` contains NaN"),
        (lambda: cr.hvp(sq, N, P), "hvp: the gradient or H·tangent"),
        (lambda: cr.hvp(q, P * jnp.nan, P), "hvp: `params` contains NaN"),
        (lambda: cr.corridor_score(weighted, P, NAN_ARG), r"`args\[0\]` contains"),
    ],
)
def test_geometry_names_what_is_not_finite(call, match):
    # A concrete bad value is bad input: InvalidInputError, a ValueError.
    with pytest.raises(cr.InvalidInputError, match=match):
        call()


def test_geometry_under_jit_raises_on_a_nan_loss():
    with pytest.raises(RUNTIME_ERRORS, match="corridor_score: the loss"):
        jax.block_until_ready(jax.jit(lambda x: cr.corridor_score(sq, x))(N))


def test_a_corridor_score_of_zero_still_means_zero_gradient():
    # A true zero maps to 0, never NaN: a critical point of a quadratic.
    assert float(cr.corridor_score(q, jnp.zeros(2))) == 0.0
    assert float(cr.predicted_step_drift(q, jnp.zeros(2), 0.1)) == 0.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cr.gd(lg, N, 0.01, 3), "gd: The loss or its gradient became NaN"),
        (lambda: cr.gd(weighted, P, 0.1, 3, NAN_ARG), r"gd: `args\[0\]` contains"),
        (
            lambda: cr.measure_drift(weighted, P, 0.1, 3, NAN_ARG, throw=False),
            r"measure_drift: `args\[0\]` contains",
        ),
        (
            lambda: cr.gradient_flow(weighted, P, [0.0, 1.0], NAN_ARG),
            r"gradient_flow: `args\[0\]` contains",
        ),
        (
            lambda: cr.runge_kutta(sq, jnp.array([1.0, 1.0]), 0.5, 20),
            "runge_kutta: The iterates became NaN",
        ),
    ],
)
def test_paths_say_what_became_non_finite(call, match):
    with pytest.raises(eqx.EquinoxRuntimeError, match=match):
        call()


def _first_step_outside(theta, lr, n_steps):
    """GD on lg = Σ log θ + Σ θ² replayed in NumPy: the first k with θ_k ≤ 0 (where
    log θ is NaN), or None."""
    theta = np.array(theta, float)
    for k in range(n_steps + 1):
        if np.any(theta <= 0):
            return k
        theta = theta - lr * (1 / theta + 2 * theta)
    return None


@pytest.mark.parametrize(
    ("theta0", "lr"), [([1.0, 2.0], 0.6), ([3.0, 1.0], 0.4), ([5.0, 4.0], 0.45)]
)
@pytest.mark.parametrize("method", ["gd", "momentum", "sgd"])
def test_a_nan_loss_along_the_path_names_its_step(theta0, lr, method):
    # The step a NumPy replay finds (momentum with β = 0 is GD; SGD on equal
    # batches is GD) is the step the error names, eagerly.
    n_steps = 8
    k = _first_step_outside(theta0, lr, n_steps)
    assert k is not None and k > 0  # the cases leave the domain inside the run
    theta0 = jnp.asarray(theta0)
    call = {
        "gd": lambda: cr.gd(lg, theta0, lr, n_steps),
        "momentum": lambda: cr.momentum(lg, theta0, lr, 0.0, n_steps),
        "sgd": lambda: cr.sgd(
            lambda p, x: lg(p + x), theta0, lr, jnp.zeros((n_steps, 2))
        ),
    }[method]
    with pytest.raises(
        eqx.EquinoxRuntimeError,
        match=rf"{method}: The loss or its gradient became NaN.* step k = {k} ",
    ):
        call()


def test_an_overflowing_path_names_its_step():
    # θ ← θ − h·2θ·exp(θ²) on exp(θ²): the NumPy replay overflows at the same step.
    loss = lambda p: jnp.sum(jnp.exp(p**2))  # noqa: E731
    theta, k = np.array([1.5]), 0
    with np.errstate(over="ignore", invalid="ignore"):
        while np.all(np.isfinite(theta - 0.3 * 2 * theta * np.exp(theta**2))):
            theta, k = theta - 0.3 * 2 * theta * np.exp(theta**2), k + 1
    with pytest.raises(
        eqx.EquinoxRuntimeError, match=rf"gd: The iterates became NaN.* step k = {k} "
    ):
        cr.gd(loss, jnp.asarray([1.5]), 0.3, 20)


def test_an_overflowing_loss_is_divergence_not_a_domain_error():
    # (w₂·tanh(w₁))² at w = 1e200: the loss overflows to Inf and its backward pass makes
    # ∂/∂w₁ = Inf·(1 − tanh²) = Inf·0 = NaN, at finite parameters. That is a run that
    # overflowed, not a loss undefined there.
    def overflowing(w):
        return (w[1] * jnp.tanh(w[0])) ** 2

    w = jnp.array([1e200, 1e200])
    value, grad = jax.value_and_grad(overflowing)(w)
    assert np.isinf(value) and np.isnan(grad[0])  # the case is what it claims
    with pytest.raises(
        eqx.EquinoxRuntimeError,
        match=r"gd: The iterates became NaN or Inf .*overflowed.* step k = 0 ",
    ):
        cr.gd(overflowing, w, 0.1, 2)


# The flow θ' = −1/(2√θ) reaches θ = 0, where ∇L is NaN, in finite time.
def root(theta):
    return jnp.sum(jnp.sqrt(theta))


@pytest.mark.parametrize(
    "flow",
    [
        lambda ts: cr.gradient_flow(root, P, ts),
        lambda ts: cr.central_flow(root, P, ts, 0.01),
        lambda ts: cr.principal_flow(root, P, ts, 0.01),
    ],
)
def test_a_nan_loss_along_the_flow_names_its_flow_time(flow):
    # d(θ^{3/2})/dt = −3/4: θ_1 = 1 reaches 0 at T = 4/3, the first entry to end. The
    # error brackets T between two times of `ts` instead of blaming `max_steps`.
    ts = jnp.linspace(0.0, 2.0, 21)
    with pytest.raises(
        eqx.EquinoxRuntimeError,
        match=r"_flow: Nonfinite.* along the flow itself.* reached flow time "
        r"t = 1\.3 and failed before t = 1\.4\.",
    ) as error:
        flow(ts)
    assert "max_steps" not in str(error.value)


def test_a_flow_stopped_by_a_nan_loss_spends_few_steps():
    # Without the stop the retries would spin to max_steps = 100,000.
    flow = cr.gradient_flow(root, P, jnp.linspace(0.0, 2.0, 21), throw=False)
    assert flow.result == cr.RESULTS.nonfinite
    assert int(flow.stats["num_steps"]) < 2_000
    reached = np.flatnonzero(np.all(np.isfinite(np.asarray(flow.params)), axis=1))
    assert reached[-1] == 13  # t = 1.3 < T = 4/3 < 1.4


def test_a_loss_undefined_off_the_flow_is_still_solved():
    # L = (θ − 1)²/2, NaN past θ = 1.001: the flow from −5 approaches 1 from below,
    # θ(t) = 1 − 6e^{−t}, but long trial steps at loose tolerances land past the edge;
    # those are rejected and retried, not taken for the flow's own NaN.
    outside = []

    def edged(p):
        jax.debug.callback(lambda x: outside.append(float(x) >= 1.001), jnp.max(p))
        return jnp.sum(jnp.where(p < 1.001, 0.5 * (p - 1) ** 2, jnp.nan))

    ts = jnp.array([0.0, 60.0])
    flow = cr.gradient_flow(edged, jnp.array([-5.0]), ts, rtol=1e-4, atol=1e-6)
    assert any(outside)  # the case does step past the edge
    assert abs(float(flow.params[-1, 0]) - (1 - 6 * np.exp(-60.0))) < 1e-4


def test_measure_drift_names_the_first_nan_iterate_and_flow_time():
    # GD θ ← θ − 0.1/(2√θ) replayed in NumPy: the first k with θ_k < 0 (NaN loss).
    theta, k = np.array([1.0, 2.0]), 0
    while np.all(theta >= 0):
        theta, k = theta - 0.1 / (2 * np.sqrt(theta)), k + 1
    # the flow's NaN starts after T = 4/3: the first matched time k·lr past it
    first_time = np.ceil(4 / 3 / 0.1) * 0.1
    with pytest.raises(
        eqx.EquinoxRuntimeError,
        match=rf"measure_drift: .* iterate θ_{k} or its loss is the first NaN/Inf\. "
        rf"The reference is first NaN/Inf at flow time t = {first_time:.6g}\.",
    ):
        cr.measure_drift(root, P, 0.1, 40)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cr.gd(q, P, None, 3), "gd: `lr` must be real"),
        (lambda: cr.gd(q, P, "0.1", 3), "gd: `lr` must be real"),
        (lambda: cr.gd(q, P, 0.1 + 0j, 3), "gd: `lr` must be real"),
        (lambda: cr.gd(q, P, jnp.array([0.1, 0.2]), 3), "gd: `lr` must be a scalar"),
        (lambda: cr.momentum(q, P, 0.1, "0.9", 3), "momentum: `beta` must be real"),
        (
            lambda: cr.measure_drift(q, P, 0.1, 3, method="momentum", beta=None),
            "measure_drift: `beta` must be real",
        ),
        (lambda: cr.measure_drift(q, P, 0.1, 3, method=3), "measure_drift: `method`"),
        (
            lambda: cr.gd(q, jnp.ones(2), 0.1, 2**40),
            r"gd: n_steps = 1,099,511,627,776 needs [\d,.]+ GiB",
        ),
        (
            lambda: cr.gradient_flow(q, jnp.ones(2), jnp.linspace(0, 1, 10**6)),
            "needs at least 999,999 steps, more than max_steps = 100,000",
        ),
        (
            lambda: cr.gradient_flow(q, P, [0.0, 1.0], solver=diffrax.Euler()),
            "gradient_flow: `solver` must be an adaptive",
        ),
        (
            lambda: cr.runge_kutta(q, P, 0.1, 3, tableau=diffrax.Kvaerno5()),
            "runge_kutta: `tableau` must be an explicit",
        ),
        (
            lambda: cr.measure_drift(q, P, 0.1, 3, method=diffrax.Kvaerno5()),
            "measure_drift: `method` must be an explicit",
        ),
        (
            lambda: cr.gradient_flow(q, P, jnp.array([0.0, 1j])),
            "gradient_flow: `ts` must be real",
        ),
        (
            lambda: cr.measure_drift(q, P, 0.1, 3, reference="exact"),
            "measure_drift: `reference`",
        ),
        (
            lambda: cr.matched_times("momentum", 0.1, 2**40),
            r"matched_times: n_steps = 1,099,511,627,776 needs [\d,.]+ GiB",
        ),
        (
            lambda: cr.Monitor(weighted)(P, (1.0,), lr=jnp.array([0.1, 0.2])),
            "Monitor: `lr` must be a scalar",
        ),
        (
            lambda: LinearRegression(jnp.eye(2), jnp.ones(2)).sgd_moments(
                2, jnp.array([0.1, 0.2]), 1
            ),
            "LinearRegression.sgd_moments: `lr` must be a scalar",
        ),
        (
            lambda: cr.sgd(
                lambda p, x: jnp.sum(p * x), P, 0.1, jnp.ones((2, 2), complex)
            ),
            "sgd: every leaf of `batches` must be an array of real numbers",
        ),
        (
            lambda: cr.measure_drift(q, P, 0.1, 3, reference=lambda p, ts: p),
            "stacked along a leading axis",
        ),
    ],
)
def test_arguments_are_validated_before_jax_sees_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_flow_evaluate_refuses_nan_times():
    flow = cr.gradient_flow(q, P, [0.0, 1.0], dense=True)
    np.testing.assert_allclose(flow.evaluate(0.5), np.exp(-0.5) * P, rtol=1e-6)
    with pytest.raises(RUNTIME_ERRORS, match=r"Flow\.evaluate: `t` contains NaN"):
        flow.evaluate(jnp.nan)


def test_exact_flow_overflow_is_an_error():
    grows = Quadratic(jnp.array([[-1.0]]), jnp.array([1.0]))
    # θ(t) = 1 + 2(e^t − 1)... finite for moderate t, overflow for huge t.
    assert np.isfinite(np.asarray(grows.exact_flow(jnp.array([1.0]), 10.0))).all()
    with pytest.raises(RUNTIME_ERRORS, match="exact_flow: the exact flow"):
        grows.exact_flow(jnp.array([1.0]), 1e4)


def test_cone_loss_of_nan_is_nan_not_its_minimum():
    assert np.isnan(float(Cone(jnp.zeros(2), 1.0).loss(P * jnp.nan)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_path_geometry_at_huge_scale_matches_the_unit_scale(dtype):
    path = jnp.array([[1.0, 2.0], [0.5, 1.0], [0.25, 0.5], [0.0, 0.0]], dtype)
    grads = 3.0 * path  # a quadratic with A = 3I: RSI = EB = 3 off x*
    rsi, eb = cr.path_geometry(path, grads)
    big_rsi, big_eb = cr.path_geometry(path * 1e25, grads * 1e25)
    np.testing.assert_allclose(rsi[:-1], 3.0, rtol=1e-6)
    np.testing.assert_allclose(big_rsi, rsi, rtol=1e-6)
    np.testing.assert_allclose(big_eb, eb, rtol=1e-6)
    assert float(rsi[-1]) == 0.0 and float(eb[-1]) == 0.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: T.assert_tree_allclose(1.0, 1.0, rtol=-1.0), "`rtol`"),
        (lambda: T.assert_tree_allclose(1.0, 1.0, atol=np.nan), "`atol`"),
        (lambda: T.assert_in_corridor(q, jnp.zeros((1, 2)), tol=-1.0), "`tol`"),
        (lambda: T.assert_in_corridor(q, jnp.zeros((0, 2))), "non-empty"),
        (lambda: T.assert_follows_flow(q, P, 0.1, 2, atol=np.inf), "`atol`"),
    ],
)
def test_testing_kit_refuses_tolerances_that_check_nothing(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_assert_tree_allclose_compares_imaginary_parts():
    T.assert_tree_allclose(1 + 1j, 1 + 1j)
    with pytest.raises(AssertionError, match="not close"):
        T.assert_tree_allclose(1 + 1j, 1 + 5j)


def test_nan_batches_are_named():
    def batch_loss(theta, x):
        return 0.5 * jnp.sum((theta - x) ** 2)

    batches = (jnp.array([[1.0, 0.0], [jnp.nan, 0.0]]),)
    with pytest.raises(eqx.EquinoxRuntimeError, match="sgd: `batches` contains NaN"):
        cr.sgd(batch_loss, P, 0.1, batches)
    with pytest.raises(
        eqx.EquinoxRuntimeError, match="sgd_regularizers: `batches` contains NaN"
    ):
        cr.sgd_regularizers(batch_loss, P, 0.1, batches)


def test_integer_batches_are_data():
    """Integer targets are real data: SGD on them is the closed form of float ones."""
    loss = lambda p, target: 0.5 * jnp.sum((p - target) ** 2)  # noqa: E731
    path = cr.sgd(loss, jnp.zeros(1), 0.5, np.array([[1], [3]]))
    np.testing.assert_allclose(path[:, 0], [0.0, 0.5, 1.75])  # θ ← θ − ½(θ − t_k)


def test_weak_error_under_jit():
    """weak_error traces (no host copy of the times): under jit its means are those
    of NumPy, and paths saved at other times are an error when the compiled code runs."""
    rng = np.random.default_rng(0)
    ts = jnp.linspace(0.0, 0.2, 3)

    def paths(params):  # (n_paths, times, 1); only ts, params and result are read
        loss = jnp.sum(params**2, -1)
        return cr.Paths(
            ts, params, loss, loss.mean(0), params.mean(0), jnp.zeros(3), {},
            cr.RESULTS.successful,
        )  # fmt: skip

    a, b = (jnp.asarray(rng.normal(size=(8, 3, 1))) for _ in range(2))
    jitted = eqx.filter_jit(cr.weak_error)
    found = jitted(paths(a), paths(b), "norm2")
    expected = (np.asarray(a) ** 2).sum(-1).mean(0) - (np.asarray(b) ** 2).sum(-1).mean(
        0
    )
    np.testing.assert_allclose(found.difference, expected, rtol=1e-12)
    later = eqx.tree_at(lambda p: p.ts, paths(b), ts + 0.01)
    with pytest.raises(eqx.EquinoxRuntimeError, match="weak_error: `sgd` and `sme`"):
        jax.block_until_ready(jitted(paths(a), later, "norm2").error)


def test_sampled_paths_refuse_outputs_that_cannot_fit():
    """2**40 saved iterates are refused before anything is allocated, with the counts
    named (not an out-of-memory error from XLA)."""
    xs = jnp.linspace(-1.0, 1.0, 4)[:, None]
    data = (xs, 2.0 * xs[:, 0])
    loss = lambda w, batch: 0.5 * jnp.mean((batch[0] @ w - batch[1]) ** 2)  # noqa: E731
    options = dict(batch_size=2, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"sgd_paths: n_paths × \(n_steps / every"):
        cr.sgd_paths(loss, P[:1], 0.1, data, n_steps=2**40, n_paths=2, **options)
    with pytest.raises(ValueError, match=r"sgd_sde: n_paths × len\(ts\) = 1,099,5"):
        cr.sgd_sde(
            loss, P[:1], jnp.linspace(0, 1, 3), 0.1, data, n_paths=2**40, **options
        )
