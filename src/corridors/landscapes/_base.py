"""The interface every analytic landscape implements, and the numerics they share.

A landscape is an `equinox.Module` holding its constants as arrays, so it can be passed
to jitted code (and to every `corridors` function, as `landscape.loss` or the landscape
itself) without recompiling when only the constants change.
"""

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, PyTree, Scalar

from .._checks import (
    InvalidInputError,
    check_finite,
    check_outputs,
    float_dtype,
    is_concrete,
)
from .._geometry import corridor_score


class Minimum(eqx.Module):
    """The global minimum of a landscape.

    **Fields:**

    - `value`: the minimum value of the loss, a scalar.
    - `location`: a minimizer, shaped like the landscape's params. Where the minimizers
      form a set (a cylinder cone's axis, a singular quadratic), this is the one named
      in the landscape's docstring.
    """

    value: Scalar
    location: PyTree


class NoExactFlowError(AttributeError, NotImplementedError):
    """Raised on access to `exact_flow` of a landscape whose flow has no closed form.

    It is both an `AttributeError` (so `hasattr(landscape, "exact_flow")` is `False`:
    the method is absent) and a `NotImplementedError`.
    """


class _Absent:
    """Class attribute standing for a method a landscape does not have."""

    def __init__(self, hint: str):
        self.hint = hint

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        owner = type(instance) if owner is None else owner
        raise NoExactFlowError(
            f"{owner.__name__} has no closed-form gradient flow, so `{self.name}` is "
            f"absent. {self.hint}"
        )


NO_EXACT_FLOW = (
    "Solve it numerically: `corridors.gradient_flow(landscape.loss, params0, ts)`."
)


class AbstractLandscape(eqx.Module):
    """A loss landscape with known geometry.

    Subclasses implement `loss(params)` and the `minimum` property, and may refine
    `in_corridor`. Calling the landscape is the same as calling `loss`, so a landscape
    can be passed wherever `corridors` expects `loss(params, *args)` (with `args=()`).

    The class attribute `is_corridor` says whether the landscape is a corridor
    (H∇L = 0) wherever it is differentiable and its gradient is non-zero: there GD,
    momentum and every consistent explicit Runge–Kutta method follow the flow.
    """

    is_corridor: ClassVar[bool] = False

    @abc.abstractmethod
    def loss(self, params: PyTree) -> Scalar:
        """The loss L(params), a scalar."""

    @property
    @abc.abstractmethod
    def minimum(self) -> Minimum | None:
        """The global minimum (value and a minimizer), or `None` if there is none."""

    def __call__(self, params: PyTree) -> Scalar:
        return self.loss(params)

    def in_corridor(self, params: PyTree, *, tol: float = 1e-8) -> Bool[Array, ""]:
        """Whether H∇L = 0 at `params`, numerically: `corridor_score ≤ tol`.

        **Arguments:**

        - `params`: the point θ.
        - `tol`: the largest corridor score ‖H∇L‖/‖∇L‖ (a curvature) counted as zero.

        **Returns:**

        A boolean JAX scalar. Critical points (∇L = 0) count as in the corridor.
        """
        return corridor_score(self.loss, params) <= tol


class AbstractExactLandscape(AbstractLandscape):
    """A landscape whose gradient flow θ' = −∇L(θ) has a closed form.

    Subclasses implement `_flow_at(params0, t)` for a scalar `t`; `exact_flow`
    validates its inputs and vectorizes over array `t`.
    """

    @abc.abstractmethod
    def _flow_at(self, params0: PyTree, t: Scalar) -> PyTree:
        """The flow at one scalar time (inputs already checked)."""

    @abc.abstractmethod
    def _template(self) -> PyTree:
        """A pytree of arrays with the structure and shapes params must have."""

    def exact_flow(self, params0: PyTree, t: float | Array) -> PyTree:
        """The exact gradient flow φ(t) from φ(0) = `params0`, in closed form.

        **Arguments:**

        - `params0`: the starting point, shaped like the landscape's params.
        - `t`: a time or an array of times of any shape. Negative times give the flow
          backwards in time, where the landscape's docstring says it is unique.

        **Returns:**

        φ(t), shaped like `params0` with `t.shape` prepended to every leaf.
        """
        where = f"{type(self).__name__}.exact_flow"
        params0 = self.checked_params(where, params0, "params0")
        params0 = check_finite(where, "params0", params0)
        t = jnp.asarray(t)
        if not (
            jnp.issubdtype(t.dtype, jnp.floating)
            or jnp.issubdtype(t.dtype, jnp.integer)
        ):
            raise InvalidInputError(
                f"{where}: `t` must be real times, got dtype {t.dtype}."
            )
        t = check_finite(where, "t", t.astype(float_dtype(params0)))
        return _exact_flow(self, params0, t)

    def checked_params(self, where: str, params: Any, name: str) -> PyTree:
        """`params` as floating arrays, refusing a structure or shape unlike the template."""
        return checked_like(where, params, name, self._template(), type(self).__name__)


@eqx.filter_jit
def _exact_flow(landscape: AbstractExactLandscape, params0: PyTree, t: Array) -> PyTree:
    """`landscape._flow_at` vectorized over every entry of `t` (compiled once per
    landscape class and shapes; new constants or times do not recompile)."""
    flat = jax.vmap(lambda s: landscape._flow_at(params0, s))(t.reshape(-1))
    flow = jax.tree.map(lambda x: x.reshape(t.shape + x.shape[1:]), flat)
    # Finite inputs, non-finite flow: it overflowed (e.g. exp(−λt) for λ < 0, large t).
    return check_outputs(
        f"{type(landscape).__name__}.exact_flow",
        flow,
        [("params0", params0), ("t", t)],
        "the exact flow (it overflowed: a smaller |t|?)",
    )


def checked_like(
    where: str, params: Any, name: str, template: PyTree, owner: str
) -> PyTree:
    """Convert `params` to floating arrays shaped like `template`, or raise ValueError."""
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise InvalidInputError(
            f"{where}: `{name}` has no array leaves (got {params!r})."
        )
    if jax.tree.structure(params) != jax.tree.structure(template):
        raise InvalidInputError(
            f"{where}: `{name}` must have the pytree structure of this {owner}'s "
            f"params, {jax.tree.structure(template)}; got {jax.tree.structure(params)}."
        )
    for leaf, like in zip(leaves, jax.tree.leaves(template), strict=True):
        if jnp.shape(leaf) != jnp.shape(like):
            raise InvalidInputError(
                f"{where}: `{name}` has shape {jnp.shape(leaf)} where this {owner} "
                f"needs {jnp.shape(like)}."
            )
        dtype = jnp.asarray(leaf).dtype
        if not (
            jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
        ):
            raise InvalidInputError(
                f"{where}: `{name}` must hold real numbers, got {dtype}."
            )
    dtype = float_dtype(jax.tree.map(jnp.asarray, params))
    return jax.tree.map(lambda x: jnp.asarray(x, dtype), params)


# --------------------------------------------------------------------------- constants


def constant(owner: str, name: str, value: Any, *, ndim: int | None = None) -> Array:
    """A finite floating constant of a landscape, with `ndim` dimensions if given."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{owner}: `{name}` must be a number, got a bool.")
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"{owner}: `{name}` must be an array of numbers."
        ) from error
    if not (
        jnp.issubdtype(array.dtype, jnp.floating)
        or jnp.issubdtype(array.dtype, jnp.integer)
    ):
        raise InvalidInputError(
            f"{owner}: `{name}` must be real, got dtype {array.dtype}."
        )
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(jnp.result_type(float))
    if ndim is not None and array.ndim != ndim:
        kind = {0: "a scalar", 1: "a vector (1-D)", 2: "a matrix (2-D)"}[ndim]
        raise InvalidInputError(
            f"{owner}: `{name}` must be {kind}, got shape {array.shape}."
        )
    return check_finite(owner, name, array)


def constant_tree(owner: str, name: str, tree: Any) -> PyTree:
    """A non-empty pytree of finite floating constants."""
    if not jax.tree.leaves(tree):
        raise InvalidInputError(
            f"{owner}: `{name}` has no array leaves (got {tree!r})."
        )
    return jax.tree.map(lambda x: constant(owner, name, x), tree)


def positive_constant(owner: str, name: str, value: Any) -> Array:
    """A finite scalar constant > 0."""
    value = constant(owner, name, value, ndim=0)
    if is_concrete(value):
        if not float(value) > 0:
            raise InvalidInputError(
                f"{owner}: `{name}` must be > 0, got {float(value)}."
            )
        return value
    return eqx.error_if(value, value <= 0, f"{owner}: `{name}` must be > 0.")


def common_dtype(*arrays: Any):
    """The floating dtype all of a landscape's constants are stored in."""
    return jnp.result_type(*[jnp.asarray(a).dtype for a in arrays], jnp.float32)


def matrix_tolerance(dtype, dim: int) -> float:
    """Entrywise tolerance for structural checks (symmetry, idempotence) in `dtype`."""
    return 100.0 * max(dim, 1) * float(jnp.finfo(dtype).eps)


def concrete(value: Any) -> np.ndarray | None:
    """`value` as a NumPy array, or None when it is traced."""
    return np.asarray(value) if is_concrete(value) else None


# ---------------------------------------------------------------------------- numerics


@jax.custom_jvp
def safe_norm(x: Array) -> Scalar:
    """‖x‖₂ of a vector with derivative 0 (not NaN) at x = 0 and no under/overflow.

    The vector is scaled by max|xᵢ| before squaring, so tiny and huge vectors keep
    full relative accuracy. Differentiable to any order away from 0.
    """
    scale = jnp.max(jnp.abs(x), initial=0.0)
    nonzero = scale != 0  # a NaN entry gives a NaN norm, never a zero
    scale = jnp.where(nonzero, scale, 1.0)
    return jnp.where(nonzero, scale * jnp.sqrt(jnp.sum((x / scale) ** 2)), 0.0)


@safe_norm.defjvp
def _safe_norm_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    norm = safe_norm(x)
    return norm, jnp.sum(unit_vector(x, norm) * dx)


def unit_vector(x: Array, norm: Array | None = None) -> Array:
    """x / ‖x‖, and 0 where x = 0 (with finite derivatives)."""
    norm = safe_norm(x) if norm is None else norm
    nonzero = norm != 0  # NaN stays NaN
    return jnp.where(nonzero, x / jnp.where(nonzero, norm, 1.0), 0.0)


def flatten(tree: PyTree) -> Array:
    """All leaves of a pytree concatenated into one vector."""
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])


def tree_norm(tree: PyTree) -> Scalar:
    """`safe_norm` over every entry of a pytree."""
    return safe_norm(flatten(tree))


def tree_vdot(a: PyTree, b: PyTree) -> Scalar:
    """Σ over leaves of ⟨a, b⟩."""
    return sum(
        jnp.vdot(x, y)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def rounding_tolerance(*values: PyTree) -> Scalar:
    """64·eps·(1 + Σ‖value‖): differences below it are floating-point noise."""
    dtype = float_dtype(values)
    return 64 * jnp.finfo(dtype).eps * (1 + sum(tree_norm(v) for v in values))


def phi1(x: Array) -> Array:
    """(eˣ − 1)/x, accurate near 0 (where it is 1 + x/2 + x²/6 + …)."""
    small = jnp.abs(x) < 1e-4
    safe_x = jnp.where(small, 1.0, x)
    series = 1.0 + x / 2.0 + x**2 / 6.0 + x**3 / 24.0
    return jnp.where(small, series, jnp.expm1(safe_x) / safe_x)
