"""Flows and one-step methods as Taylor series in the step size h.

The flow of a vector field f (possibly depending on h, as modified flows do) at time h
is the Lie series φ_h(x) = Σ_k h^k/k!·(f·∇)^k x. A Runge–Kutta step expands each stage
f(x + h·Σ_j a_ij k_j) in a multivariate Taylor series. Everything is truncated at a
fixed order in h, so expressions stay small.
"""

import math
from collections.abc import Sequence

import sympy as sp

from .._checks import InvalidInputError
from ._calculus import _check_variables, gradient


def _check_order(where: str, order: int) -> int:
    if isinstance(order, bool) or not isinstance(order, int) or order < 0:
        raise InvalidInputError(
            f"{where}: `order` must be a non-negative int, got {order!r}."
        )
    return order


def _column(where: str, name: str, value, n: int) -> sp.Matrix:
    matrix = sp.Matrix(value)
    if matrix.shape != (n, 1):
        raise InvalidInputError(
            f"{where}: `{name}` must be a column of length {n}, got shape "
            f"{matrix.shape}."
        )
    return matrix


def _degree(term: sp.Expr, h: sp.Symbol) -> int | None:
    """The power of h in a monomial term (None if h appears otherwise)."""
    power = 0
    for factor in sp.Mul.make_args(term):
        if factor == h:
            power += 1
        elif factor.is_Pow and factor.base == h and factor.exp.is_Integer:
            power += int(factor.exp)
        elif factor.has(h):
            return None
    return power if power >= 0 else None


def truncate(expr, h: sp.Symbol, order: int):
    """Drop every power of `h` above `order` (expr polynomial in h; matrices entrywise).

    **Arguments:**

    - `expr`: a sympy expression or matrix, polynomial in `h`.
    - `h`: the expansion variable.
    - `order`: the highest power kept.

    **Returns:**

    The truncated, expanded expression (or matrix).

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    h = sp.Symbol("h")
    print(sym.truncate((1 + h) ** 4, h, 2))  # 6*h**2 + 4*h + 1
    ```
    """
    order = _check_order("truncate", order)
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(lambda e: truncate(e, h, order))
    kept = []
    for term in sp.Add.make_args(sp.expand(expr)):
        power = _degree(term, h)
        if power is None:
            raise InvalidInputError(
                f"truncate: `expr` is not a polynomial in {h} (term {term}); expand it "
                "in h first."
            )
        if power <= order:
            kept.append(term)
    return sp.Add(*kept)


def coefficient(expr, h: sp.Symbol, k: int):
    """The coefficient of h**k of a polynomial in h (matrices entrywise).

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    h = sp.Symbol("h")
    print(sym.coefficient((1 + h) ** 4, h, 3))  # 4
    ```
    """
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(lambda e: coefficient(e, h, k))
    return sp.expand(expr).coeff(h, k)


class _JetSymbols:
    """Derivatives of undefined functions of the coordinates, as plain symbols.

    sympy differentiates `Derivative(L(x1, …, xn), …)` slowly (each new derivative is
    canonicalized). Here ∂^α L(x) is a Dummy symbol and ∂/∂x_i maps it to ∂^(α+e_i) L;
    `decode` restores the `Derivative` objects. Other expressions are differentiated
    by sympy as usual.
    """

    def __init__(self, variables: tuple):
        self.variables = variables
        self._symbols: dict[tuple, sp.Dummy] = {}
        self._keys: dict[sp.Dummy, tuple] = {}
        self._decoded: dict[sp.Dummy, sp.Expr] = {}

    def symbol(self, function: sp.Expr, alpha: tuple) -> sp.Dummy:
        key = (function, alpha)
        if key not in self._symbols:
            name = f"{function.func}_" + "".join(map(str, alpha))
            dummy = sp.Dummy(name, real=True)
            self._symbols[key] = dummy
            self._keys[dummy] = key
            pairs = [(v, k) for v, k in zip(self.variables, alpha, strict=True) if k]
            self._decoded[dummy] = (
                sp.Derivative(function, *pairs) if pairs else function
            )
        return self._symbols[key]

    def encode(self, expr):
        if isinstance(expr, sp.MatrixBase):
            return expr.applyfunc(self.encode)
        expr = sp.sympify(expr)
        mapping = {}
        for derivative in expr.atoms(sp.Derivative):
            function = derivative.expr
            if self._is_generic(function) and all(
                v in self.variables for v, _ in derivative.variable_count
            ):
                alpha = [0] * len(self.variables)
                for v, count in derivative.variable_count:
                    alpha[self.variables.index(v)] += int(count)
                mapping[derivative] = self.symbol(function, tuple(alpha))
        for function in expr.atoms(sp.core.function.AppliedUndef):
            if self._is_generic(function):
                mapping[function] = self.symbol(function, (0,) * len(self.variables))
        return expr.xreplace(mapping) if mapping else expr

    def _is_generic(self, function) -> bool:
        return (
            isinstance(function, sp.core.function.AppliedUndef)
            and function.args == self.variables
        )

    def diff(self, expr: sp.Expr, i: int) -> sp.Expr:
        """∂expr/∂x_i, with the jet symbols depending on x."""
        result = sp.diff(expr, self.variables[i])
        for dummy in expr.free_symbols & self._keys.keys():
            function, alpha = self._keys[dummy]
            shifted = tuple(a + (k == i) for k, a in enumerate(alpha))
            result += sp.diff(expr, dummy) * self.symbol(function, shifted)
        return result

    def lie(self, field: sp.Matrix, expr):
        if isinstance(expr, sp.MatrixBase):
            return expr.applyfunc(lambda e: self.lie(field, e))
        return sum(field[i] * self.diff(expr, i) for i in range(len(self.variables)))

    def decode(self, expr):
        if isinstance(expr, sp.MatrixBase):
            return expr.applyfunc(self.decode)
        return expr.xreplace(self._decoded)


def lie_derivative(field: sp.Matrix, variables: Sequence[sp.Symbol], expr):
    """(f·∇)expr = Σ_i f_i ∂expr/∂x_i, entrywise for matrices.

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    x1, x2 = sym.coordinates(2)
    print(sym.lie_derivative(sp.Matrix([x2, -x1]), (x1, x2), x1**2 + x2**2))  # 0: a rotation keeps the radius
    ```
    """
    variables = _check_variables("lie_derivative", variables)
    field = _column("lie_derivative", "field", field, len(variables))
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(lambda e: lie_derivative(field, variables, e))
    jets = _JetSymbols(variables)
    return jets.decode(jets.lie(jets.encode(field), jets.encode(expr)))


def flow_series(
    field: sp.Matrix,
    variables: Sequence[sp.Symbol],
    h: sp.Symbol,
    order: int,
    *,
    time: sp.Expr | None = None,
) -> sp.Matrix:
    """The flow of x' = field(x) from x at time h, as a Taylor polynomial in h.

    The field may itself depend on h (a modified flow); the result is then truncated at
    total order `order` in h.

    **Arguments:**

    - `field`: an (n, 1) matrix in `variables` (and possibly `h`).
    - `variables`: the coordinates x (the initial point).
    - `h`: the expansion variable.
    - `order`: the highest power of h kept.
    - `time`: the flow time, a multiple of h such as `-h` or `2*h` (default `h`).

    **Returns:**

    An (n, 1) matrix φ_time(x) + O(h^(order+1)).

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    (x,) = sym.coordinates(1)
    h = sp.Symbol("h")
    print(sym.flow_series(sp.Matrix([-x]), (x,), h, 3))  # Matrix([[-h**3*x1/6 + h**2*x1/2 - h*x1 + x1]])
    ```
    """
    time = h if time is None else sp.sympify(time)
    if sp.simplify(time / h).has(h) or time == 0:
        raise InvalidInputError(
            f"flow_series: `time` must be a non-zero constant multiple of {h}, got "
            f"{time}."
        )
    variables = _check_variables("flow_series", variables)
    order = _check_order("flow_series", order)
    field = _column("flow_series", "field", field, len(variables))
    jets = _JetSymbols(variables)
    field = jets.encode(field)
    term = sp.Matrix(variables)
    result = sp.Matrix(variables)
    for k in range(1, order + 1):
        # Only h^(order-k) of the field can still contribute after the factor h^k.
        reduced = truncate(field, h, order - k)
        term = truncate(jets.lie(reduced, term), h, order - k)
        result += time**k / math.factorial(k) * term
    return jets.decode(truncate(result, h, order))


def taylor_shift(
    expr,
    variables: Sequence[sp.Symbol],
    shift: sp.Matrix,
    h: sp.Symbol,
    order: int,
):
    """expr(x + shift) as a Taylor polynomial in h, for a shift that is O(h).

    **Arguments:**

    - `expr`: an expression or matrix in `variables`.
    - `variables`: the coordinates x.
    - `shift`: an (n, 1) matrix, polynomial in h with no h⁰ term.
    - `h`: the expansion variable.
    - `order`: the highest power of h kept.

    **Returns:**

    Σ_m (1/m!)·D^m expr(x)[shift, …, shift], truncated at h**order.

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    (x,) = sym.coordinates(1)
    h = sp.Symbol("h")
    print(sym.taylor_shift(x**3, (x,), sp.Matrix([h]), h, 2))  # 3*h**2*x1 + 3*h*x1**2 + x1**3
    ```
    """
    variables = _check_variables("taylor_shift", variables)
    order = _check_order("taylor_shift", order)
    shift = _column("taylor_shift", "shift", shift, len(variables))
    if any(sp.expand(s).subs(h, 0) != 0 for s in shift):
        raise InvalidInputError("taylor_shift: `shift` must vanish at h = 0.")
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(lambda e: taylor_shift(e, variables, shift, h, order))
    jets = _JetSymbols(variables)
    shift = jets.encode(shift)
    # The shift is a constant direction: differentiate with placeholders for it.
    placeholders = [sp.Dummy(f"d{i}") for i in range(len(variables))]
    term = jets.encode(expr)
    result = truncate(term, h, order)
    for m in range(1, order + 1):
        term = sum(d * jets.diff(term, i) for i, d in enumerate(placeholders))
        # The m-th term is a product of m shifts, each O(h): each needs only its
        # terms up to h^(order-m+1).
        short = truncate(shift, h, order - m + 1)
        shifted = term.xreplace(dict(zip(placeholders, short, strict=True)))
        result += truncate(shifted, h, order) / math.factorial(m)
    return jets.decode(result)


def gd_step(loss: sp.Expr, variables: Sequence[sp.Symbol], h: sp.Symbol) -> sp.Matrix:
    """One gradient-descent step x − h∇L(x), an (n, 1) matrix.

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    xs = sym.coordinates(2)
    h = sp.Symbol("h")
    print(sym.gd_step(xs[0] ** 2 + xs[1], xs, h))  # Matrix([[-2*h*x1 + x1], [-h + x2]])
    ```
    """
    variables = _check_variables("gd_step", variables)
    return sp.Matrix(variables) - h * gradient(loss, variables)


def rk_step_series(
    field: sp.Matrix,
    variables: Sequence[sp.Symbol],
    h: sp.Symbol,
    order: int,
    a: sp.Matrix,
    b: sp.Matrix,
) -> sp.Matrix:
    """One explicit Runge–Kutta step x + h·Σ b_i k_i as a Taylor polynomial in h.

    Stage i is k_i = field(x + h·Σ_{j<i} a_ij k_j); each is expanded with
    `taylor_shift`.

    **Arguments:**

    - `field`: the vector field, an (n, 1) matrix in `variables`.
    - `variables`: the coordinates x.
    - `h`: the step size.
    - `order`: the highest power of h kept.
    - `a`: the (s, s) strictly lower-triangular Runge–Kutta matrix (symbols allowed).
    - `b`: the s weights, a (1, s) or (s, 1) matrix.

    **Returns:**

    An (n, 1) matrix.

    **Example:**

    ```python
    import sympy as sp
    from corridors import symbolic as sym
    (x,) = sym.coordinates(1)
    h = sp.Symbol("h")
    a, b = sp.Matrix([[0, 0], [1, 0]]), sp.Matrix([[sp.Rational(1, 2), sp.Rational(1, 2)]])  # Heun
    print(sym.rk_step_series(sp.Matrix([-x]), (x,), h, 3, a, b))  # Matrix([[h**2*x1/2 - h*x1 + x1]])
    ```
    """
    variables = _check_variables("rk_step_series", variables)
    order = _check_order("rk_step_series", order)
    field = _column("rk_step_series", "field", field, len(variables))
    a, b = sp.Matrix(a), sp.Matrix(b)
    s = a.shape[0]
    if a.shape != (s, s) or len(b) != s or s < 1:
        raise InvalidInputError(
            "rk_step_series: `a` must be (s, s) and `b` have s entries, got "
            f"{a.shape} and {b.shape}."
        )
    if any(a[i, j] != 0 for i in range(s) for j in range(i, s)):
        raise InvalidInputError(
            "rk_step_series: `a` must be strictly lower triangular (explicit method)."
        )
    stages: list[sp.Matrix] = []
    for i in range(s):
        shift = h * sum(
            (a[i, j] * stages[j] for j in range(i)), sp.zeros(len(variables), 1)
        )
        if all(entry == 0 for entry in shift):
            stage = field
        else:
            stage = taylor_shift(field, variables, truncate(shift, h, order), h, order)
        stages.append(truncate(stage, h, max(order - 1, 0)))
    step = sp.Matrix(variables) + h * sum(
        (b[i] * stages[i] for i in range(s)), sp.zeros(len(variables), 1)
    )
    return truncate(step, h, order)
