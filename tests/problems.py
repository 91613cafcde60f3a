"""Losses with known geometry, shared by the tests.

Every loss takes its constants through `args`, so one compiled function serves every
random instance a test draws.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.linalg
from jax.flatten_util import ravel_pytree


def safe_norm(x):
    """‖x‖ with a finite (zero) gradient at x = 0."""
    squared = jnp.sum(x**2)
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def linear(theta, w, b):
    return w @ theta + b


def cone(theta, center, slope, offset):
    """slope·‖θ − center‖ + offset: a corridor away from its apex (slope > 0)."""
    return slope * safe_norm(theta - center) + offset


def quadratic(theta, a, b):
    """½θᵀAθ + bᵀθ."""
    return 0.5 * theta @ a @ theta + b @ theta


def quadratic_flow(a, b, theta0, t, *, modified=None):
    """Exact gradient flow of `quadratic`, or of its modified flow at lr `modified`.

    The flow θ' = −Gθ − c (G = A, c = b; modified: G = A + (lr/2)A², c = (I + (lr/2)A)b)
    is affine, so exp of the augmented matrix [[−G, −c], [0, 0]]·t holds both e^{−Gt}
    and ∫₀ᵗ e^{−Gs}ds·c, accurately even for singular or nearly singular A (no A⁻¹b).
    """
    a, b, theta0 = (np.asarray(x, dtype=float) for x in (a, b, theta0))
    n = a.shape[0]
    generator, shift = a, b
    if modified is not None:
        generator = a + 0.5 * modified * a @ a
        shift = b + 0.5 * modified * a @ b
    augmented = np.zeros((n + 1, n + 1))
    augmented[:n, :n] = -generator
    augmented[:n, n] = -shift
    return (scipy.linalg.expm(augmented * t) @ np.append(theta0, 1.0))[:n]


def random_spd(rng, n, *, low=0.5, high=3.0):
    """A symmetric matrix with eigenvalues uniform in [low, high]."""
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * rng.uniform(low, high, size=n)) @ q.T


def mlp_params(key, sizes):
    """A tanh MLP's parameters as a list of {"w", "b"} dicts (a nested pytree)."""
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        key, sub = jax.random.split(key)
        params.append(
            {
                "w": jax.random.normal(sub, (fan_in, fan_out)) / np.sqrt(fan_in),
                "b": 0.1 * jnp.ones(fan_out),
            }
        )
    return params


def mlp_loss(params, x, y):
    """Mean squared error of a tanh MLP."""
    h = x
    for layer in params[:-1]:
        h = jnp.tanh(h @ layer["w"] + layer["b"])
    out = h @ params[-1]["w"] + params[-1]["b"]
    return jnp.mean((out - y) ** 2)


def mlp_problem(sizes=(4, 8, 2), n=16, seed=0):
    """(params, (x, y)) for a small teacher-free regression."""
    kx, ky, kp = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(kx, (n, sizes[0]))
    y = jax.random.normal(ky, (n, sizes[-1]))
    return mlp_params(kp, sizes), (x, y)


def scipy_flow(loss, params0, ts, args=(), *, rtol, atol):
    """The gradient flow of `loss` from `params0` at times `ts` (starting at 0) by
    scipy's DOP853 on the flattened vector: an independent reference, shape
    (len(ts), number of parameters)."""
    flat0, unravel = ravel_pytree(params0)
    grad = jax.jit(lambda flat: ravel_pytree(jax.grad(loss)(unravel(flat), *args))[0])
    solution = scipy.integrate.solve_ivp(
        lambda t, flat: -np.asarray(grad(flat)),
        (0.0, float(ts[-1])),
        np.asarray(flat0),
        method="DOP853",
        t_eval=ts,
        rtol=rtol,
        atol=atol,
    )
    assert solution.success, solution.message
    return solution.y.T
