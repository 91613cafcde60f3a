"""Input validation shared by the public functions.

Every check names the function and the argument. A check on a concrete value (a Python
number, or an array outside `jit`) raises `InvalidInputError` at once: a `ValueError`
that is also an `equinox.EquinoxRuntimeError`, so code written against either
convention catches it. The same check on a traced value becomes an `equinox.error_if`,
which raises when the compiled code runs. Either way the user never gets a silent NaN.
"""

import functools
import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


class InvalidInputError(ValueError, eqx.EquinoxRuntimeError):
    """Bad input detected before any computation (a `ValueError`)."""


def is_concrete(x: Any) -> bool:
    """Whether every leaf of `x` has a value now (no tracers)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def known(flag: Any) -> bool | None:
    """The value of a boolean flag if it can be known now, else `None` (it is traced).

    Concrete inputs are evaluated eagerly even while an outer `jit` traces, so a check
    on a constant still fails at once.
    """
    try:
        with jax.ensure_compile_time_eval():
            return bool(flag() if callable(flag) else flag)
    except jax.errors.ConcretizationTypeError:
        return None


def on_host(value: Any) -> bool:
    """A Python number or NumPy value: checked with NumPy, no device work at all."""
    return isinstance(value, (int, float, np.ndarray, np.generic)) and not isinstance(
        value, bool
    )


def refuse(
    where: str,
    value: Any,
    bad: Callable[[], Any],
    message: str,
    host_bad: Callable[[], Any] | None = None,
) -> Any:
    """Raise `InvalidInputError(message)` if `bad()` is known to be true; tie the check
    to `value` with `equinox.error_if` if it is traced; else return `value`.

    `host_bad` evaluates the same check with NumPy for a host `value` (no dispatch)."""
    if host_bad is not None and on_host(value):
        with np.errstate(invalid="ignore"):
            if bool(host_bad()):
                raise InvalidInputError(message)
        return value
    verdict = known(bad)
    if verdict is None:
        return eqx.error_if(value, bad(), message)
    if verdict:
        raise InvalidInputError(message)
    return value


def float_dtype(params: Any):
    """The floating dtype of a params pytree (float32 unless it holds float64)."""
    leaves = jax.tree.leaves(params)
    if not leaves:
        return jnp.result_type(float)
    return jnp.result_type(*[jnp.asarray(leaf).dtype for leaf in leaves], jnp.float32)


def as_float_params(where: str, params: Any, name: str = "params0") -> Any:
    """Convert every leaf to a floating JAX array, refusing empty or integer pytrees.

    Leaves that already are JAX arrays are kept as they are (no conversion cost).
    """
    leaves, treedef = jax.tree.flatten(params)
    if not leaves:
        raise InvalidInputError(
            f"{where}: `{name}` has no array leaves (got {params!r})."
        )
    arrays = [
        leaf if isinstance(leaf, jax.Array) else _numeric_leaf(where, name, leaf)
        for leaf in leaves
    ]
    for array in arrays:
        if not jnp.issubdtype(array.dtype, jnp.floating):
            raise InvalidInputError(
                f"{where}: every leaf of `{name}` must be a floating-point array, got "
                f"dtype {array.dtype}. Cast it, e.g. `jnp.asarray(x, float)`."
            )
    return jax.tree.unflatten(treedef, arrays)


def _numeric_leaf(
    where: str, name: str, leaf: Any, expected: str = "a floating-point array"
) -> Array:
    """`leaf` as a JAX array, or an error naming `name` if it holds no numbers (a
    string, an arbitrary object); `expected` says what it should be."""
    if isinstance(leaf, (str, bytes)) or (
        isinstance(leaf, np.ndarray) and leaf.dtype.kind not in "biufc"
    ):
        kind = type(leaf).__name__ if not isinstance(leaf, np.ndarray) else leaf.dtype
        raise InvalidInputError(
            f"{where}: every leaf of `{name}` must be {expected}, got "
            f"{kind} {leaf!r:.40}."
        )
    try:
        return jnp.asarray(leaf)
    except TypeError as error:  # an object JAX cannot hold
        raise InvalidInputError(
            f"{where}: every leaf of `{name}` must be {expected}, got "
            f"{type(leaf).__name__} {leaf!r:.40}."
        ) from error


def real_arrays(where: str, name: str, tree: Any) -> Any:
    """`tree` (data or batches) with every leaf a JAX array of real numbers: refuses
    strings, objects and complex leaves, naming `name`. Bools and ints are data too
    (masks, labels); traced leaves are only inspected for their dtype."""

    def leaf_of(leaf):
        expected = "an array of real numbers"
        array = (
            leaf
            if isinstance(leaf, jax.Array)
            else _numeric_leaf(where, name, leaf, expected)
        )
        if jnp.issubdtype(array.dtype, jnp.complexfloating):
            raise InvalidInputError(
                f"{where}: every leaf of `{name}` must be {expected}, got dtype "
                f"{array.dtype}."
            )
        return array

    return jax.tree.map(leaf_of, tree)


def any_nonfinite(tree: Any) -> Array:
    """A boolean array: does any leaf of `tree` hold NaN or Inf?"""
    return jnp.stack(
        [~jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
    ).any()


def any_nan(tree: Any) -> Array:
    """A boolean array: does any leaf of `tree` hold NaN?"""
    return jnp.stack([jnp.any(jnp.isnan(leaf)) for leaf in jax.tree.leaves(tree)]).any()


# Jitted so that on concrete arrays the reduction runs where the arrays live and only
# one bool comes back.
_any_nonfinite_jit = jax.jit(any_nonfinite)


def check_finite(where: str, name: str, tree: Any, *, tie: Any = None) -> Any:
    """Refuse NaN or Inf anywhere in `tree`.

    Returns `tie` (default: `tree`); when traced, the check runs before it is used.
    """
    tie = tree if tie is None else tie
    if not jax.tree.leaves(tree):
        return tie
    return refuse(
        where,
        tie,
        lambda: _any_nonfinite_jit(tree),
        f"{where}: `{name}` contains NaN or Inf.",
    )


def check_real(where: str, name: str, value: Any, *, scalar: bool = False) -> Any:
    """Refuse what is not a real number or real array (None, str, bool, complex,
    object arrays), and with `scalar` anything but a 0-d value, before JAX sees it."""
    kind = None
    if value is None or isinstance(value, (str, bytes, bool, np.bool_)):
        kind = type(value).__name__
    else:
        dtype = getattr(value, "dtype", None)
        if isinstance(value, (list, tuple)):
            try:
                dtype = np.asarray(value).dtype
            except ValueError:  # ragged
                dtype = np.dtype(object)
        if dtype is None:
            if not isinstance(value, (int, float, np.number)):
                kind = type(value).__name__
            elif isinstance(value, complex):
                kind = "complex"
        elif not (
            jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
        ):
            kind = f"an array of dtype {dtype}"
    if kind is not None:
        raise InvalidInputError(
            f"{where}: `{name}` must be real (a number or an array of real numbers), "
            f"got {kind} ({value!r:.60})."
        )
    if scalar and jnp.ndim(value) != 0:
        raise InvalidInputError(
            f"{where}: `{name}` must be a scalar, got shape {jnp.shape(value)}."
        )
    return value


def check_lr(where: str, lr: Any) -> Any:
    """Refuse an `lr` that is not one real number > 0 (a shaped array too)."""
    return check_positive(where, "lr", check_real(where, "lr", lr, scalar=True))


def check_positive(where: str, name: str, value: Any) -> Any:
    """Refuse a value ≤ 0 (or non-finite, or not real). Works on scalars and arrays."""
    check_real(where, name, value)
    shown = f", got {value}" if is_concrete(value) else ""
    return refuse(
        where,
        value,
        lambda: ~jnp.all(jnp.isfinite(value) & (jnp.asarray(value) > 0)),
        f"{where}: `{name}` must be finite and > 0{shown}.",
        lambda: not np.all(np.isfinite(value) & (np.asarray(value) > 0)),
    )


def check_nonnegative(where: str, name: str, value: Any) -> Any:
    """Refuse a value < 0 (or non-finite, or not real). Works on scalars and arrays."""
    check_real(where, name, value)
    shown = f", got {value}" if is_concrete(value) else ""
    return refuse(
        where,
        value,
        lambda: ~jnp.all(jnp.isfinite(value) & (jnp.asarray(value) >= 0)),
        f"{where}: `{name}` must be finite and ≥ 0{shown}.",
        lambda: not np.all(np.isfinite(value) & (np.asarray(value) >= 0)),
    )


def check_beta(where: str, beta: Any) -> Any:
    """Refuse a momentum coefficient outside [0, 1) (or not real)."""
    check_real(where, "beta", beta)
    shown = f", got {beta}" if is_concrete(beta) else ""
    return refuse(
        where,
        beta,
        lambda: ~((jnp.asarray(beta) >= 0) & (jnp.asarray(beta) < 1)),
        f"{where}: `beta` must lie in [0, 1){shown}.",
        lambda: not np.all((np.asarray(beta) >= 0) & (np.asarray(beta) < 1)),
    )


def check_key(where: str, key: Any) -> Array:
    """One JAX PRNG key: typed (`jax.random.key(0)`) or raw uint32[2]
    (`jax.random.PRNGKey(0)`, also as a NumPy array); returned as a JAX array."""
    if isinstance(key, np.ndarray):
        key = jnp.asarray(key)
    ok = isinstance(key, jax.Array) and (
        (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.ndim == 0)
        or (key.dtype == jnp.uint32 and key.shape == (2,))
    )
    if not ok:
        described = f"{type(key).__name__} {getattr(key, 'dtype', '')}"
        raise InvalidInputError(
            f"{where}: `key` must be one JAX PRNG key, e.g. `jax.random.key(0)`; got "
            f"{described.strip()}{getattr(key, 'shape', '')}."
        )
    return key


def check_steps(where: str, name: str, n: Any, *, minimum: int = 0) -> int:
    """A static, non-negative integer step count (it sizes a `lax.scan`)."""
    if isinstance(n, jax.core.Tracer):
        raise InvalidInputError(
            f"{where}: `{name}` sizes the output and must be a static Python int, not a "
            "traced value (mark it static under jit)."
        )
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise InvalidInputError(f"{where}: `{name}` must be an int, got {n!r}.")
    if n < minimum:
        raise InvalidInputError(f"{where}: `{name}` must be ≥ {minimum}, got {n}.")
    return int(n)


def memory_budget() -> int:
    """Bytes the default device can hold: its allocator limit where it reports one
    (GPUs), else the machine's physical memory."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # some backends do not implement memory_stats
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_storage(
    where: str, what: str, count: int, like: Any, copies: int = 1
) -> None:
    """Refuse an output of `count` stacked copies of the pytree `like` (times `copies`)
    that cannot fit in memory, with the figure, before anything is allocated."""
    per_item = sum(
        int(np.prod(jnp.shape(leaf))) * jnp.dtype(jnp.result_type(leaf)).itemsize
        for leaf in jax.tree.leaves(like)
    )
    needed, budget = count * per_item * copies, memory_budget()
    if needed > budget:
        raise InvalidInputError(
            f"{where}: {what} needs {needed / 2**30:,.1f} GiB ({count:,} × "
            f"{per_item:,} bytes{f' × {copies}' if copies > 1 else ''}), more than the "
            f"{budget / 2**30:,.1f} GiB available; take fewer steps or times."
        )


def check_increasing(where: str, name: str, ts: Any, dtype: Any = None) -> Any:
    """Refuse times that are not a 1-D, finite, strictly increasing array of reals;
    returned as a JAX array (of `dtype` if given)."""
    check_real(where, name, ts)
    ts = jnp.asarray(ts, dtype)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise InvalidInputError(
            f"{where}: `{name}` must be a non-empty 1-D array of times."
        )
    if not jnp.issubdtype(ts.dtype, jnp.floating):
        ts = ts.astype(jnp.result_type(float))
    ts = refuse(
        where,
        ts,
        lambda: ~jnp.all(jnp.isfinite(ts)),
        f"{where}: `{name}` contains NaN or Inf.",
    )
    return refuse(
        where,
        ts,
        lambda: jnp.any(jnp.diff(ts) <= 0),
        f"{where}: `{name}` must be strictly increasing.",
    )


def check_leading_axis(where: str, name: str, tree: Any) -> int:
    """The common, non-empty leading-axis length of every leaf of `tree` (a step or
    batch axis)."""
    leaves = jax.tree.leaves(tree)
    lengths = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
    if not leaves or None in lengths or len(lengths) != 1 or 0 in lengths:
        raise InvalidInputError(
            f"{where}: every leaf of `{name}` must share one non-empty leading (step or "
            f"batch) axis; got leading sizes {sorted(map(str, lengths))}."
        )
    return lengths.pop()


def check_outputs(
    where: str,
    outputs: Any,
    inputs: Sequence[tuple[str, Any]],
    what: str,
    *,
    tie: Any = None,
) -> Any:
    """Inside a kernel: an error if `outputs` hold NaN/Inf, saying which input caused it.

    The inputs are only inspected (inside a `lax.cond`) once an output is non-finite,
    so the common, finite case costs one reduction over `outputs`. The message names
    the first of `inputs` (name, pytree) that holds NaN/Inf, else says that `what`
    became non-finite from finite inputs. Returns `tie` (default: `outputs`).
    """
    tie = outputs if tie is None else tie
    inputs = [(name, tree) for name, tree in inputs if floating_leaves(tree)]
    messages = [f"{where}: `{name}` contains NaN or Inf." for name, _ in inputs]
    messages.append(
        f"{where}: {what} became NaN or Inf at finite inputs (is the loss defined, "
        "and finite, there?)."
    )
    bad = any_nonfinite(outputs)

    def culprit():
        flags = [any_nonfinite(floating_leaves(tree)) for _, tree in inputs]
        return jnp.argmax(jnp.stack([*flags, jnp.array(True)]))

    index = jax.lax.cond(bad, culprit, lambda: jnp.asarray(len(inputs)))
    return eqx.branched_error_if(tie, bad, index, messages)


def check_args(where: str, args: tuple, tie: Any) -> Any:
    """Inside a kernel: refuse NaN/Inf in any floating array of `args`, naming it
    (`args[i]`); returns `tie` with the checks attached."""
    for name, arg in named_args(args):
        leaves = floating_leaves(arg)
        if leaves:
            tie = check_finite(where, name, leaves, tie=tie)
    return tie


def floating_leaves(tree: Any) -> list:
    """The floating-point array leaves of `tree` (where NaN/Inf can hide)."""
    return [
        leaf
        for leaf in jax.tree.leaves(tree)
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.inexact)
    ]


def named_args(args: tuple) -> list[tuple[str, Any]]:
    """`args` as (name, value) pairs for error messages: `args[0]`, `args[1]`, …"""
    return [(f"args[{i}]", arg) for i, arg in enumerate(args)]


def input_errors(kernel: Callable) -> Callable:
    """Wrap a jitted kernel whose only runtime errors are about its inputs (NaN/Inf
    found by `check_outputs`): called eagerly, they surface as `InvalidInputError`
    (a `ValueError` and an `equinox.EquinoxRuntimeError`), as the same bad input
    checked before the call would."""

    @functools.wraps(kernel)
    def call(*args, **kwargs):
        try:
            return kernel(*args, **kwargs)
        except eqx.EquinoxRuntimeError as error:
            if isinstance(error, InvalidInputError):
                raise
            # equinox keeps the bare message of the check that fired (its own error
            # text adds a stack dump and debugging advice); fall back to the text.
            info = getattr(eqx._jit, "last_error_info", None)
            raise InvalidInputError(info[0] if info else str(error)) from None

    return call


def check_same_structure(where: str, name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Refuse two pytrees that differ in structure or in any leaf's shape."""
    struct_a, struct_b = jax.tree.structure(a), jax.tree.structure(b)
    if struct_a != struct_b:
        raise InvalidInputError(
            f"{where}: `{name_b}` must have the same pytree structure as `{name_a}`; "
            f"got {struct_b} vs {struct_a}."
        )
    for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jnp.shape(leaf_a) != jnp.shape(leaf_b):
            raise InvalidInputError(
                f"{where}: `{name_b}` has a leaf of shape {jnp.shape(leaf_b)} where "
                f"`{name_a}` has shape {jnp.shape(leaf_a)}."
            )


def checked_params(
    where: str,
    loss: Callable,
    params: Any,
    args: tuple,
    name: str = "params0",
    *,
    finite: bool = True,
) -> Any:
    """The checks every public function starts with; returns the params as arrays.

    A callable `loss`, a tuple `args`, floating leaves, and (with `finite`) no NaN/Inf.
    Pass `finite=False` where the jitted kernel checks values itself
    (`check_outputs`), so a concrete call costs no device round trip before it runs.
    """
    if not callable(loss):
        raise InvalidInputError(
            f"{where}: `loss` must be callable, got {type(loss).__name__}."
        )
    if not isinstance(args, tuple):
        raise InvalidInputError(
            f"{where}: `args` must be a tuple of extra arguments to `loss`, got "
            f"{type(args).__name__}; write `args=(x,)` for a single one."
        )
    params = as_float_params(where, params, name)
    return check_finite(where, name, params) if finite else params


def traced_floats(args: tuple) -> tuple:
    """`args` with Python and NumPy float scalars turned into JAX arrays.

    Our kernels are `equinox.filter_jit`-ed, which would treat a Python float as static
    and recompile for every new value; as under `jax.jit`, floats are traced instead.
    Ints, bools and other objects stay static (they may set shapes or control flow).
    """
    floating = (float, complex, np.floating, np.complexfloating)
    return jax.tree.map(
        lambda x: jnp.asarray(x) if isinstance(x, floating) else x, args
    )


def check_loss(where: str, loss: Callable, params: Any, args: tuple) -> None:
    """Refuse a loss that fails on `params` or does not return a floating scalar.

    Call it inside the jitted kernel: it then runs once per compilation, abstractly
    (`jax.eval_shape`), at no cost to warm calls.
    """
    try:
        out = jax.eval_shape(lambda p: loss(p, *args), params)
    except Exception as error:  # re-raised with the argument named, cause kept
        raise InvalidInputError(
            f"{where}: calling `loss(params, *args)` failed: {error}"
        ) from error
    if not (
        hasattr(out, "shape")
        and out.shape == ()
        and jnp.issubdtype(out.dtype, jnp.floating)
    ):
        raise InvalidInputError(
            f"{where}: `loss(params, *args)` must return a floating scalar, got "
            f"{getattr(out, 'shape', type(out))} {getattr(out, 'dtype', '')}."
        )


def check_lr_array(where: str, name: str, lrs: Any) -> np.ndarray:
    """A concrete, non-empty 1-D array of positive learning rates."""
    if not is_concrete(lrs):
        raise InvalidInputError(
            f"{where}: `{name}` must be concrete (it sets step counts)."
        )
    array = np.atleast_1d(np.asarray(check_real(where, name, lrs), dtype=float))
    if array.ndim != 1 or array.size == 0:
        raise InvalidInputError(f"{where}: `{name}` must be a non-empty 1-D array.")
    if not np.all(np.isfinite(array) & (array > 0)):
        raise InvalidInputError(
            f"{where}: every entry of `{name}` must be finite and > 0."
        )
    return array


def finite_scalar_or_raise(where: str, name: str, value: Any) -> float:
    """A concrete finite Python float (used for static options such as `horizon`)."""
    check_real(where, name, value, scalar=True)  # float() would take "0.1" or True
    try:
        out = float(value)
    except (TypeError, jax.errors.ConcretizationTypeError) as error:
        raise InvalidInputError(
            f"{where}: `{name}` must be a concrete number."
        ) from error
    if not math.isfinite(out):
        raise InvalidInputError(f"{where}: `{name}` must be finite, got {value}.")
    return out


def default_tolerances(dtype: Any) -> tuple[float, float]:
    """`(rtol, atol)` defaults of the flow solves for params of floating `dtype`.

    float64 keeps the tight 1e-10 / 1e-12 of a reference solve; float32 (and narrower
    types) asks for what its ~7 digits reach in a few steps, 1e-6 / 1e-8 (bfloat16 and
    float16: 1e-3 / 1e-5). A float32 solve at 1e-10 cannot succeed: the error estimate
    never falls below the rounding of the state.
    """
    eps = float(jnp.finfo(dtype).eps)
    if eps < 1e-10:
        return 1e-10, 1e-12
    if eps < 1e-5:
        return 1e-6, 1e-8
    return 1e-3, 1e-5


def resolved_tolerances(where: str, dtype: Any, rtol: Any, atol: Any):
    """`rtol`, `atol` with `None` replaced by the defaults for `dtype`, both checked.

    An `rtol` under 4 ulps of `dtype` cannot be reached by an adaptive solve (it
    would take max_steps): a warning says so, naming the argument.
    """
    default_rtol, default_atol = default_tolerances(dtype)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    for name, tol in (("rtol", rtol), ("atol", atol)):
        check_positive(where, name, tol)
    floor = 4 * float(jnp.finfo(dtype).eps)
    if is_concrete(rtol) and float(rtol) < floor:
        warnings.warn(
            f"{where}: `rtol`={float(rtol):g} is below what {jnp.dtype(dtype).name} can "
            f"reach (~{floor:.1e}); the solve will take max_steps or fail. Use "
            f"rtol ≥ {default_rtol:g} (the {jnp.dtype(dtype).name} default, rtol=None) "
            "or float64 params.",
            stacklevel=3,
        )
    return rtol, atol
