"""A small teacher–student regression problem for neural-network-like tests."""

import functools
import itertools
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, PyTree, Scalar

from .._checks import InvalidInputError
from ._base import NO_EXACT_FLOW, AbstractLandscape, Minimum, _Absent, checked_like

Params = tuple[tuple[Array, Array], ...]


def _forward(params: Params, inputs: Array) -> Array:
    """tanh MLP: hidden layers tanh(Wx + b), a linear last layer; inputs (n, w₀)."""
    hidden = inputs
    for weight, bias in params[:-1]:
        hidden = jnp.tanh(hidden @ weight.T + bias)
    weight, bias = params[-1]
    return hidden @ weight.T + bias


@functools.partial(jax.jit, static_argnames=("widths", "dtype", "scale"))
def _init(key: PRNGKeyArray, widths: tuple[int, ...], dtype, scale: float) -> Params:
    """Weights N(0, scale²/fan_in), biases N(0, (scale/10)²), layer by layer."""
    keys = jax.random.split(key, 2 * (len(widths) - 1))
    layers = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        weight = jax.random.normal(keys[2 * i], (fan_out, fan_in), dtype)
        bias = jax.random.normal(keys[2 * i + 1], (fan_out,), dtype)
        layers.append((scale * weight / np.sqrt(fan_in), 0.1 * scale * bias))
    return tuple(layers)


@functools.partial(jax.jit, static_argnames=("widths", "n", "dtype"))
def _teacher_problem(key: PRNGKeyArray, widths: tuple[int, ...], n: int, dtype):
    """(teacher params, inputs, targets), compiled once per architecture."""
    teacher_key, data_key = jax.random.split(key)
    teacher = _init(teacher_key, widths, dtype, 1.0)
    inputs = jax.random.normal(data_key, (n, widths[0]), dtype)
    return teacher, inputs, _forward(teacher, inputs)


class MLPRegression(AbstractLandscape):
    """Teacher–student regression with a tanh multi-layer perceptron.

    A teacher network with layer widths `widths` = (w₀, w₁, …, w_L), random weights
    and hidden activations tanh (the last layer linear) labels n Gaussian inputs
    xᵢ ~ N(0, I); the loss of a student with the same architecture is the mean
    squared error

        L(params) = (1/n) Σᵢ ½‖f_params(xᵢ) − f_teacher(xᵢ)‖².

    A small, smooth, non-convex problem whose Hessian has the structure of a real
    network's; not a corridor, and with no closed-form flow (`exact_flow` is absent).
    Params are a tuple of `(weight, bias)` pairs, weight of shape (w_{k+1}, w_k);
    `init(key)` draws a student.

    **Fields:** `inputs` (n, w₀), `targets` (n, w_L), `teacher` (the teacher's params),
    `widths` (static). **Minimum:** value 0 at the teacher's params (one of many
    minimizers: permuting hidden units or flipping the signs of a tanh unit's weights
    gives others).
    """

    inputs: Float[Array, "n w0"]
    targets: Float[Array, "n wL"]
    teacher: PyTree
    widths: tuple[int, ...] = eqx.field(static=True)

    exact_flow = _Absent(NO_EXACT_FLOW)

    def __init__(self, widths: Sequence[int], key: PRNGKeyArray, n: int):
        """**Arguments:**

        - `widths`: layer widths (w₀, …, w_L), at least two positive ints (w₀ inputs,
          w_L outputs).
        - `key`: a JAX PRNG key for the teacher's weights and the inputs.
        - `n`: the number of samples, an int ≥ 1.
        """
        owner = "MLPRegression"
        try:
            widths = tuple(widths)
        except TypeError as error:
            raise InvalidInputError(
                f"{owner}: `widths` must be a sequence of ints."
            ) from error
        if len(widths) < 2 or not all(
            isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1
            for w in widths
        ):
            raise InvalidInputError(
                f"{owner}: `widths` must hold at least two ints ≥ 1 (inputs, …, "
                f"outputs), got {widths!r}."
            )
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidInputError(f"{owner}: `n` must be an int ≥ 1, got {n!r}.")
        if not isinstance(key, jax.Array) or not (
            jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
            or (key.dtype == jnp.uint32 and key.shape == (2,))
        ):
            raise InvalidInputError(
                f"{owner}: `key` must be a JAX PRNG key, e.g. jax.random.key(0); got "
                f"{key!r}."
            )
        widths = tuple(int(w) for w in widths)
        self.widths = widths
        self.teacher, self.inputs, self.targets = _teacher_problem(
            key, widths, int(n), jnp.result_type(float)
        )

    def loss(self, params: Params) -> Scalar:
        params = checked_like(
            "MLPRegression.loss", params, "params", self.teacher, "MLPRegression"
        )
        residual = _forward(params, self.inputs) - self.targets
        return 0.5 * jnp.mean(jnp.sum(residual**2, axis=-1))

    def init(self, key: PRNGKeyArray, *, scale: float = 1.0) -> Params:
        """A random student: weights N(0, scale²/fan_in), biases N(0, (scale/10)²)."""
        return _init(key, self.widths, self.inputs.dtype, float(scale))

    @property
    def minimum(self) -> Minimum:
        return Minimum(jnp.zeros((), self.inputs.dtype), self.teacher)
