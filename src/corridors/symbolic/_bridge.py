"""The lambdify bridge: sympy expressions as JAX functions of a parameter vector."""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import sympy as sp

from .._checks import InvalidInputError
from ._calculus import _check_variables


@functools.lru_cache(maxsize=256)
def _compiled(expr, variables: tuple, parameters: tuple, jit: bool) -> Callable:
    function = sp.lambdify((*variables, *parameters), expr, modules="jax")
    n = len(variables)
    shape = None
    if isinstance(expr, sp.MatrixBase):
        shape = (expr.shape[0],) if expr.shape[1] == 1 else expr.shape

    def evaluate(theta, *values):
        theta = jnp.asarray(theta)
        if theta.shape != (n,):
            raise InvalidInputError(
                f"to_jax: the point must be a vector of length {n}, got shape "
                f"{theta.shape}."
            )
        if len(values) != len(parameters):
            raise InvalidInputError(
                f"to_jax: expected {len(parameters)} parameter value(s) "
                f"{[str(p) for p in parameters]}, got {len(values)}."
            )
        out = function(*(theta[i] for i in range(n)), *values)
        if shape is None:
            return jnp.asarray(out, theta.dtype)
        return jnp.broadcast_to(jnp.asarray(out, theta.dtype).reshape(shape), shape)

    return jax.jit(evaluate) if jit else evaluate


def to_jax(
    expr,
    variables: Sequence[sp.Symbol],
    parameters: Sequence[sp.Symbol] = (),
    *,
    jit: bool = False,
) -> Callable:
    """A sympy expression as a JAX function `f(theta, *parameter_values)`.

    Built with `sympy.lambdify(..., modules="jax")`, so it composes with `jax.jit`,
    `jax.grad` and `jax.vmap`. The same arguments give the same function object, so
    jitted library calls taking it (e.g. `corridors.gd`) hit their compilation cache.

    **Arguments:**

    - `expr`: a scalar expression, or a matrix (a column comes back as a vector).
    - `variables`: the coordinates; `theta` is the vector of their values.
    - `parameters`: further symbols, passed positionally after `theta`.
    - `jit`: wrap the function in `jax.jit` (worth it when it is called many times
      eagerly; a one-off evaluation is cheaper without the compilation).

    **Returns:**

    A function of a length-n JAX array (and the parameter values) returning a scalar,
    a vector or a matrix, in `theta`'s dtype.

    **Example:**

    ```python
    import jax.numpy as jnp
    from corridors import symbolic as sym
    xs = sym.coordinates(2)
    f = sym.to_jax(xs[0] ** 2 + 3 * xs[1], xs)
    print(f(jnp.array([2.0, 1.0])))  # 7.0
    ```
    """
    variables = _check_variables("to_jax", variables)
    parameters = tuple(parameters)
    if not all(isinstance(p, sp.Symbol) for p in parameters):
        raise InvalidInputError("to_jax: `parameters` must be sympy Symbols.")
    if isinstance(expr, sp.MatrixBase):
        expr = sp.ImmutableMatrix(expr)
    else:
        expr = sp.sympify(expr)
    extra = expr.free_symbols - set(variables) - set(parameters)
    if extra:
        raise InvalidInputError(
            f"to_jax: `expr` has symbols {sorted(map(str, extra))} that are neither "
            "variables nor parameters."
        )
    if expr.atoms(sp.core.function.AppliedUndef):
        raise InvalidInputError(
            "to_jax: `expr` contains an undefined function; replace it with a concrete "
            "one first (`corridors.symbolic.instantiate`)."
        )
    return _compiled(expr, variables, parameters, bool(jit))


def to_loss(
    expr: sp.Expr,
    variables: Sequence[sp.Symbol],
    parameters: Sequence[sp.Symbol] = (),
    *,
    jit: bool = False,
) -> Callable:
    """A scalar sympy loss as `loss(params, *args)`, ready for `corridors` functions.

    `params` is the vector of `variables`; `args` are the values of `parameters`.
    Like `to_jax`, equal inputs give the same function object (no recompiles).

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors as cr
    from corridors import symbolic as sym
    xs = sym.coordinates(2)
    loss = sym.to_loss(xs[0] ** 2 + 3 * xs[1], xs)
    print(cr.corridor_score(loss, jnp.array([2.0, 1.0])))  # 1.6 = ‖H∇L‖/‖∇L‖ = 8/5
    ```
    """
    if isinstance(expr, sp.MatrixBase):
        raise InvalidInputError("to_loss: `expr` must be a scalar expression.")
    return to_jax(expr, variables, parameters, jit=jit)
