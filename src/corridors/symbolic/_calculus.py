"""Symbolic calculus of a loss: gradient, Hessian, H∇L, higher derivatives.

Losses are sympy expressions in explicit coordinates x1, …, xn. A *generic* loss is an
undefined `sympy.Function` applied to the coordinates, so identities proved for it hold
for every (sufficiently smooth) loss in that dimension.
"""

import random
from collections.abc import Sequence

import sympy as sp

from .._checks import InvalidInputError


def _check_variables(where: str, variables: Sequence[sp.Symbol]) -> tuple:
    variables = tuple(variables)
    if not variables or not all(isinstance(v, sp.Symbol) for v in variables):
        raise InvalidInputError(
            f"{where}: `variables` must be a non-empty sequence of sympy Symbols, got "
            f"{variables!r}."
        )
    return variables


def coordinates(n: int, name: str = "x") -> tuple[sp.Symbol, ...]:
    """The real coordinates `name`1, …, `name`n.

    **Arguments:**

    - `n`: the dimension, a positive int.
    - `name`: the prefix.

    **Returns:**

    A tuple of n real sympy Symbols.

    **Example:**

    ```python
    from corridors import symbolic as sym
    print(sym.coordinates(3))  # (x1, x2, x3)
    ```
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"coordinates: `n` must be a positive int, got {n!r}.")
    return tuple(sp.Symbol(f"{name}{i + 1}", real=True) for i in range(n))


def generic_function(name: str, variables: Sequence[sp.Symbol]) -> sp.Expr:
    """An arbitrary smooth function of `variables`: `sympy.Function(name)(*variables)`.

    **Arguments:**

    - `name`: the function's name, e.g. "L".
    - `variables`: the coordinates it depends on.

    **Returns:**

    The applied undefined function; its derivatives stay symbolic.

    **Example:**

    ```python
    from corridors import symbolic as sym
    x1, x2 = sym.coordinates(2)
    print(sym.generic_function("L", (x1, x2)).diff(x1))  # Derivative(L(x1, x2), x1)
    ```
    """
    variables = _check_variables("generic_function", variables)
    return sp.Function(name, real=True)(*variables)


def gradient(expr: sp.Expr, variables: Sequence[sp.Symbol]) -> sp.Matrix:
    """∇L as a column matrix.

    **Arguments:**

    - `expr`: the loss, a scalar sympy expression.
    - `variables`: the coordinates.

    **Returns:**

    An (n, 1) `sympy.Matrix`.

    **Example:**

    ```python
    from corridors import symbolic as sym
    x1, x2 = sym.coordinates(2)
    print(sym.gradient(x1**2 * x2, (x1, x2)))  # Matrix([[2*x1*x2], [x1**2]])
    ```
    """
    variables = _check_variables("gradient", variables)
    return sp.Matrix([sp.diff(expr, v) for v in variables])


def hessian(expr: sp.Expr, variables: Sequence[sp.Symbol]) -> sp.Matrix:
    """The Hessian H = ∇²L, an (n, n) `sympy.Matrix`.

    **Example:**

    ```python
    from corridors import symbolic as sym
    x1, x2 = sym.coordinates(2)
    print(sym.hessian(x1**2 * x2, (x1, x2)))  # Matrix([[2*x2, 2*x1], [2*x1, 0]])
    ```
    """
    variables = _check_variables("hessian", variables)
    return sp.hessian(expr, variables)


def hessian_gradient(expr: sp.Expr, variables: Sequence[sp.Symbol]) -> sp.Matrix:
    """H∇L, the quantity that vanishes exactly in a corridor, as an (n, 1) matrix.

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    xs = sym.coordinates(2)
    cone = sp.sqrt(xs[0] ** 2 + xs[1] ** 2)             # a corridor away from 0
    print(sp.simplify(sym.hessian_gradient(cone, xs)))  # Matrix([[0], [0]])
    ```
    """
    variables = _check_variables("hessian_gradient", variables)
    return hessian(expr, variables) * gradient(expr, variables)


def third_derivative(
    expr: sp.Expr,
    variables: Sequence[sp.Symbol],
    u: sp.Matrix,
    v: sp.Matrix,
) -> sp.Matrix:
    """D³L[u, v], the vector with entries Σ_jk ∂_i∂_j∂_k L·u_j·v_k.

    **Arguments:**

    - `expr`: the loss.
    - `variables`: the coordinates.
    - `u`, `v`: column matrices of length n (held constant, not differentiated).

    **Returns:**

    An (n, 1) matrix.

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    (x,) = sym.coordinates(1)
    u = sp.Matrix([2])
    print(sym.third_derivative(x**3, (x,), u, u))  # Matrix([[24]]): 6·2·2
    ```
    """
    variables = _check_variables("third_derivative", variables)
    n = len(variables)
    u, v = sp.Matrix(u), sp.Matrix(v)
    if u.shape != (n, 1) or v.shape != (n, 1):
        raise InvalidInputError(
            f"third_derivative: `u` and `v` must be ({n}, 1) matrices, got "
            f"{u.shape} and {v.shape}."
        )
    return sp.Matrix(
        [
            sum(
                sp.diff(expr, variables[i], variables[j], variables[k]) * u[j] * v[k]
                for j in range(n)
                for k in range(n)
            )
            for i in range(n)
        ]
    )


def directional_derivative(
    expr: sp.Expr, variables: Sequence[sp.Symbol], direction: sp.Matrix
) -> sp.Expr:
    """Σ_i direction_i·∂_i expr (a scalar or a matrix expression, entrywise).

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    x1, x2 = sym.coordinates(2)
    print(sym.directional_derivative(x1 * x2, (x1, x2), sp.Matrix([1, 1])))  # x1 + x2
    ```
    """
    variables = _check_variables("directional_derivative", variables)
    direction = sp.Matrix(direction)
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(lambda e: directional_derivative(e, variables, direction))
    return sum(direction[i] * sp.diff(expr, v) for i, v in enumerate(variables))


def instantiate(
    expr: sp.Expr,
    function: sp.Expr,
    concrete: sp.Expr,
    variables: Sequence[sp.Symbol],
) -> sp.Expr:
    """Replace a generic function by a concrete one, and evaluate its derivatives.

    **Arguments:**

    - `expr`: an expression (or matrix) containing `function`, its derivatives, or
      `function` evaluated at other points.
    - `function`: the generic function, as returned by `generic_function`, or its
      class (`sympy.Function("L")`).
    - `concrete`: the concrete expression in `variables` to put in its place.
    - `variables`: the coordinates `concrete` is written in.

    **Returns:**

    `expr` with the function replaced and every derivative and substitution evaluated.

    **Example:**

    ```python
    from corridors import symbolic as sym
    xs = sym.coordinates(2)
    L = sym.generic_function("L", xs)
    print(sym.instantiate(sym.gradient(L, xs), L, xs[0] ** 2 + 3 * xs[1], xs))  # Matrix([[2*x1], [3]])
    ```
    """
    variables = _check_variables("instantiate", variables)
    head = (
        function.func
        if isinstance(function, sp.core.function.AppliedUndef)
        else function
    )
    replacement = sp.Lambda(variables, concrete)
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(lambda e: e.replace(head, replacement).doit())
    return sp.sympify(expr).replace(head, replacement).doit()


def sample_function(variables: Sequence[sp.Symbol], seed: int = 0) -> sp.Expr:
    """A concrete smooth test function of `variables` with rational coefficients.

    It mixes a quadratic, a cubic, a sine and an exponential, so that its derivatives
    of every order are non-zero and it is far from a corridor: the generic function
    of a proof is replaced by it to cross-check symbolic identities numerically.

    **Arguments:**

    - `variables`: the coordinates.
    - `seed`: selects the coefficients.

    **Returns:**

    A sympy expression.

    **Example:**

    ```python
    from corridors import symbolic as sym
    xs = sym.coordinates(2)
    f = sym.sample_function(xs, seed=1)
    at_one = sym.hessian_gradient(f, xs).subs({xs[0]: 1, xs[1]: 1})
    print(float(at_one.norm()) > 0)  # True: far from a corridor
    ```
    """
    variables = _check_variables("sample_function", variables)
    rng = random.Random(seed)

    def q() -> sp.Rational:
        return sp.Rational(rng.randint(-9, 9) or 1, rng.randint(2, 9))

    quadratic = sum(
        q() * variables[i] * variables[j]
        for i in range(len(variables))
        for j in range(i, len(variables))
    )
    linear = [sum(q() * v for v in variables) for _ in range(3)]
    return (
        quadratic
        + sp.Rational(1, 6) * linear[0] ** 3
        + sp.sin(linear[1])
        + sp.exp(linear[2] / 3)
    )
