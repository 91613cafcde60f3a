"""Higher-order modified flows of gradient descent (backward error analysis) and the
first correction of heavy-ball momentum, derived by sympy rather than assumed.

GD: the ansatz θ' = −∇L + h·c₂H∇L + h²(c₃H²∇L + d₃D³L[∇L,∇L])
+ h³(a₄D⁴L[∇L,∇L,∇L] + b₄D³L[∇L,H∇L] + c₄H·D³L[∇L,∇L] + d₄H³∇L) is fitted so that one
GD step matches the flow over time h to O(h⁵) (generic loss, dimension 2, where the
four h³ differentials are independent). sympy's unique solution is

    f₂ = −½H∇L,  f₃ = −⅓H²∇L − (1/12)D³L[∇L,∇L],
    f₄ = −¼H³∇L − (1/12)D³L[∇L,H∇L] − (1/12)H·D³L[∇L,∇L]   (no D⁴L term),

which `corridors.modified_flow(order=1, 2, 3)` implements; the residual then vanishes
identically (dimensions 1 and 2). Numerically (corridors.gd vs
corridors.modified_flow) the one-step distance has orders 3, 4, 5; without its D³L term
the order-2 flow falls back to order 3 (the falsification).

Heavy ball (optax convention, θ_{k+1} − (1+β)θ_k + βθ_{k−1} = −h∇L(θ_k)): the ansatz
θ' = a∇L + h·c·H∇L is fitted to the recurrence to O(h³); sympy finds a = −1/(1−β),
c = −(1+β)/(2(1−β)³), the ODE of Remark A.3.

Run alone: `python proofs/modified_flows.py` (exit code 0 only when proved).
"""

import functools

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import corridors as cr
from corridors import symbolic as sym

jax.config.update("jax_enable_x64", True)

STATEMENT = 14
HS = 0.05 * 2.0 ** (-np.arange(5) / 2)  # the asymptotic regime of `bumpy`


def fourth_derivative(loss, xs, u, v, w):
    """D⁴L[u, v, w] as an (n, 1) matrix."""
    n = len(xs)
    return sp.Matrix(
        [
            sum(
                sp.diff(loss, xs[i], xs[j], xs[k], xs[m]) * u[j] * v[k] * w[m]
                for j in range(n)
                for k in range(n)
                for m in range(n)
            )
            for i in range(n)
        ]
    )


def coefficient_equations(residual, h, powers):
    """Every coefficient, in the loss's derivatives, of h^p in `residual` (p in powers)."""
    equations = []
    for p in powers:
        for entry in sym.coefficient(residual, h, p):
            entry = sp.expand(entry)
            if entry == 0:
                continue
            atoms = sorted(entry.atoms(sp.Derivative), key=str)
            equations.extend(sp.Poly(entry, *atoms).coeffs())
    return equations


@functools.cache
def gd_terms(n: int):
    h = sp.Symbol("h", positive=True)
    xs = sym.coordinates(n)
    loss = sym.generic_function("L", xs)
    g = sym.gradient(loss, xs)
    hess = sym.hessian(loss, xs)
    hg = hess * g
    d3 = lambda u, v: sym.third_derivative(loss, xs, u, v)  # noqa: E731
    terms = {
        "f2": -hg / 2,
        "f3": -hess * hg / 3 - d3(g, g) / 12,
        "f4": -hess * hess * hg / 4 - d3(g, hg) / 12 - hess * d3(g, g) / 12,
    }
    return h, xs, loss, g, hess, hg, d3, terms


def derive_gd():
    """Solve the ansatz's coefficients in dimension 2 (independent differentials)."""
    h, xs, loss, g, hess, hg, d3, _ = gd_terms(2)
    c2, c3, d3c, a4, b4, c4, d4 = sp.symbols("c2 c3 d3 a4 b4 c4 d4")
    field = (
        -g
        + h * c2 * hg
        + h**2 * (c3 * hess * hg + d3c * d3(g, g))
        + h**3
        * (
            a4 * fourth_derivative(loss, xs, g, g, g)
            + b4 * d3(g, hg)
            + c4 * hess * d3(g, g)
            + d4 * hess * hess * hg
        )
    )
    residual = sym.gd_step(loss, xs, h) - sym.flow_series(field, xs, h, 4)
    unknowns = [c2, c3, d3c, a4, b4, c4, d4]
    solutions = sp.solve(
        coefficient_equations(residual, h, (2, 3, 4)), unknowns, dict=True
    )
    return solutions, dict(zip(map(str, unknowns), unknowns, strict=True))


def derive_momentum(n: int):
    h, beta = sp.Symbol("h", positive=True), sp.Symbol("beta", positive=True)
    xs = sym.coordinates(n)
    loss = sym.generic_function("L", xs)
    g = sym.gradient(loss, xs)
    hg = sym.hessian(loss, xs) * g
    a, c = sp.symbols("a c")
    field = a * g + h * c * hg
    forward = sym.flow_series(field, xs, h, 2)
    backward = sym.flow_series(field, xs, h, 2, time=-h)
    residual = sym.truncate(
        forward - (1 + beta) * sp.Matrix(xs) + beta * backward + h * g, h, 2
    )
    return sp.solve(coefficient_equations(residual, h, (1, 2)), [a, c], dict=True), (
        a,
        c,
        beta,
    )


def one_step_distances(loss, x0, order, *, drop_d3=False):
    grad = jax.grad(loss)

    # f₁ + h f₂ + h²·(−⅓H²∇L): the order-2 field without its D³L term (defined once,
    # and h passed as arrays: one compiled solve for every h).
    def field(t, x, h):
        g, hvp = jax.linearize(grad, x)
        hg = hvp(g)
        return -g - 0.5 * h * hg - h**2 / 3 * hvp(hg)

    out = []
    for h in HS:
        step = cr.gd(loss, x0, float(h), 1)[1]
        if drop_d3:
            h_array = jnp.asarray(float(h))
            flow = diffrax.diffeqsolve(
                diffrax.ODETerm(field), diffrax.Dopri8(), 0.0, h_array, h_array / 20,
                x0, args=h_array,
                stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-14),
            ).ys[-1]  # fmt: skip
        else:
            flow = cr.modified_flow(
                loss, x0, jnp.array([0.0, h]), float(h), order=order
            ).params[1]
        out.append(float(jnp.linalg.norm(step - flow)))
    return np.array(out)


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "Modified flows of orders 1-3; heavy-ball correction",
        "GD with step h follows θ' = −∇L − (h/2)H∇L − h²(⅓H²∇L + (1/12)D³L[∇L,∇L]) "
        "− h³(¼H³∇L + (1/12)D³L[∇L,H∇L] + (1/12)H·D³L[∇L,∇L]) to O(h⁵) per step (the "
        "coefficients are the unique solution of the general ansatz); heavy ball's "
        "first-order modified ODE is θ' = −∇L/(1−β) − h(1+β)/(2(1−β)³)·H∇L.",
        method="sympy solves ansatz coefficients from Lie series (generic L, n = 2); "
        "residuals vanish for n = 1, 2; numerical orders through corridors.modified_flow "
        "(n = 3)",
        assumptions=[
            "L is C⁵ near θ0; the series is asymptotic (h·λ_max ≪ 1).",
            "The GD ansatz spans all elementary differentials of each order for a "
            "gradient field (rooted trees up to order 4, H symmetric); uniqueness is "
            "shown in dimension 2, where they are independent.",
            "Heavy ball: the modified ODE of the two-step recurrence, to O(h³); the "
            "transient from m0 = 0 is not modelled (as in Remark A.3).",
        ],
    )
    solutions, names = derive_gd()
    expected = {
        "c2": sp.Rational(-1, 2), "c3": sp.Rational(-1, 3), "d3": sp.Rational(-1, 12),
        "a4": 0, "b4": sp.Rational(-1, 12), "c4": sp.Rational(-1, 12),
        "d4": sp.Rational(-1, 4),
    }  # fmt: skip
    proof.fact(
        "n = 2: the GD ansatz has exactly one solution, f₂, f₃, f₄ as stated",
        len(solutions) == 1
        and all(solutions[0][names[key]] == value for key, value in expected.items()),
        sp.Matrix([solutions[0].get(names[key], sp.nan) for key in expected])
        if solutions
        else sp.nan,
    )
    for n in (1, 2):
        h, xs, loss, g, _, _, _, terms = gd_terms(n)
        field = -g + h * terms["f2"] + h**2 * terms["f3"] + h**3 * terms["f4"]
        proof.vanishes(
            f"n = {n}: θ1 − ψ_h(h) = O(h⁵) for the order-3 modified flow",
            sym.truncate(
                sym.gd_step(loss, xs, h) - sym.flow_series(field, xs, h, 4), h, 4
            ),
        )
    for n in (1, 2):
        found, (a, c, beta) = derive_momentum(n)
        proof.fact(
            f"n = {n}: heavy ball's ansatz θ' = a∇L + h·c·H∇L has the one solution "
            "a = −1/(1−β), c = −(1+β)/(2(1−β)³)",
            len(found) == 1
            and sp.simplify(found[0][a] + 1 / (1 - beta)) == 0
            and sp.simplify(found[0][c] + (1 + beta) / (2 * (1 - beta) ** 3)) == 0,
            sp.Matrix([found[0][a], found[0][c]]) if found else sp.nan,
        )

    # Numerical orders through the library (n = 3, a concrete non-quadratic loss with
    # non-zero third and fourth derivatives).
    def loss(x):
        return jnp.sum(jnp.cosh(x)) + 0.7 * x[0] ** 2 * x[1] + 0.1 * jnp.sum(x**4)

    x0 = jnp.asarray([0.3, -0.4, 0.2])
    for order in (1, 2, 3):
        measured = cr.drift_order(HS, one_step_distances(loss, x0, order)).order
        proof.check(
            f"n = 3: ‖θ1 − ψ_h(h)‖ for corridors.modified_flow(order={order}) has "
            f"order {order + 2} (|slope − {order + 2}|)",
            abs(measured - (order + 2)),
            0.15,
        )
    without = cr.drift_order(HS, one_step_distances(loss, x0, 2, drop_d3=True)).order
    proof.falsification(
        "f₃ needs its −(1/12)D³L[∇L,∇L] term",
        witness=f"without it the order-2 flow's one-step distance has order {without:.2f}"
        " (corridors.gd vs the truncated field), not 4",
        found=abs(without - 3.0) < 0.3,
    )
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
