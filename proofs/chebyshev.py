"""The Chebyshev step-size schedule (Agarwal, Goel & Zhang) and its error bound.

With r_j = (M + m)/2 − (M − m)/2·c_j, c_j = cos((2j + 1)π/(2T)), x(λ) = (M + m − 2λ)/(M − m):

    p(λ) = Π_j (1 − λ/r_j) = T_T(x(λ)) / T_T(x(0)),

so T GD steps h_j = 1/r_j on a quadratic with spectrum in [m, M] shrink the error by at
most 1/|T_T((M + m)/(M − m))|, in any order. sympy proves, for T = 1..8:

1. T_T((z + 1/z)/2) = (z^T + z^{−T})/2, i.e. T_T(cos θ) = cos(Tθ), so |T_T| ≤ 1 on
   [−1, 1] and T_T(c_j) = cos((2j + 1)π/2) = 0: the c_j are T distinct roots, and
   T_T (degree T, leading coefficient 2^{T−1}) is 2^{T−1}·Π(x − c_j);
2. r_j − λ = ((M − m)/2)·(x(λ) − c_j), so p(λ) = Π(x(λ) − c_j)/Π(x(0) − c_j);
3. x maps [m, M] onto [−1, 1] and x(0) > 1.

Run alone: `python proofs/chebyshev.py` (exit code 0 only when proved).
"""

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import optax
import sympy as sp

import corridors as cr
from corridors import symbolic as sym

jax.config.update("jax_enable_x64", True)

STATEMENT = 13
ORDERS = tuple(range(1, 9))


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "Chebyshev schedule",
        "For steps 1/r_j at the Chebyshev roots mapped to [m, M], Π(1 − λ/r_j) = "
        "T_T((M + m − 2λ)/(M − m)) / T_T((M + m)/(M − m)), so T steps shrink the error "
        "on a quadratic with spectrum in [m, M] by at most 1/T_T((M + m)/(M − m)).",
        method="symbolic for T = 1..8: Chebyshev identity in z, exact roots, "
        "factor theorem; the product identity also at 50 digits",
        assumptions=[
            "0 < m < M; the factorization step is the factor theorem (a degree-T "
            "polynomial with T distinct roots c_j and leading coefficient 2^{T−1} is "
            "2^{T−1}Π(x − c_j)), applied to facts sympy checks.",
            "Proved for T = 1..8 (the same argument works for every T).",
        ],
    )
    x, z, lam = sp.symbols("x z lambda")
    m, M = sp.symbols("m M", positive=True)
    c = sp.Symbol("c", real=True)
    mapped = (M + m - 2 * lam) / (M - m)
    for T in ORDERS:
        chebyshev = sp.chebyshevt(T, x)
        proof.vanishes(
            f"T = {T}: T_T((z + 1/z)/2) = (z^T + z^−T)/2 (so T_T(cos θ) = cos Tθ)",
            chebyshev.subs(x, (z + 1 / z) / 2) - (z**T + z ** (-T)) / 2,
            methods=("cancel",),
        )
        poly = sp.Poly(chebyshev, x)
        proof.fact(
            f"T = {T}: deg T_T = {poly.degree()}, leading coefficient {poly.LC()} = 2^(T−1)",
            poly.degree() == T and poly.LC() == 2 ** (T - 1),
        )
        thetas = [(2 * j + 1) * sp.pi / (2 * T) for j in range(T)]
        proof.fact(
            f"T = {T}: cos(T·θ_j) = 0 for θ_j = (2j+1)π/(2T), and 0 < θ_0 < … < "
            "θ_{T−1} < π (distinct roots c_j = cos θ_j)",
            all(sp.cos(T * theta) == 0 for theta in thetas)
            and all(0 < t / sp.pi < 1 for t in thetas)
            and all(thetas[j] < thetas[j + 1] for j in range(T - 1)),
        )
    node = (M + m) / 2 - (M - m) / 2 * c
    proof.vanishes(
        "r_j − λ = ((M − m)/2)(x(λ) − c_j)", node - lam - (M - m) / 2 * (mapped - c)
    )
    proof.equal(
        "x(m) = 1 and x(M) = −1",
        sp.Matrix([mapped.subs(lam, m), mapped.subs(lam, M)]),
        sp.Matrix([1, -1]),
    )
    proof.fact(
        "x(λ) is decreasing (dx/dλ = −2/(M − m) < 0 for M > m) and x(0) − 1 = "
        "2m/(M − m) > 0",
        sp.simplify(sp.diff(mapped, lam) + 2 / (M - m)) == 0
        and sp.simplify(mapped.subs(lam, 0) - 1 - 2 * m / (M - m)) == 0,
    )

    # The product identity itself at 50 digits, for every T and random (m, M, λ).
    rng = np.random.default_rng(13)
    mpmath.mp.dps = 50
    worst = mpmath.mpf(0)
    for T in ORDERS:
        low = mpmath.mpf(float(rng.uniform(0.1, 1.0)))
        high = low * mpmath.mpf(float(rng.uniform(2.0, 50.0)))
        for value in rng.uniform(0.0, float(high), size=3):
            value = mpmath.mpf(float(value))
            product = mpmath.fprod(
                1
                - value
                / (
                    (high + low) / 2
                    - (high - low) / 2 * mpmath.cos((2 * j + 1) * mpmath.pi / (2 * T))
                )
                for j in range(T)
            )
            ratio = mpmath.chebyt(
                T, (high + low - 2 * value) / (high - low)
            ) / mpmath.chebyt(T, (high + low) / (high - low))
            worst = max(worst, abs(product - ratio))
    proof.check(
        "T = 1..8: Π(1 − λ/r_j) = T_T(x(λ))/T_T(x(0)) at 50 digits (mpmath)",
        float(worst),
        1e-40,
    )

    # Cross-checks with corridors.lr.
    m_value, M_value = 0.3, 12.0
    ratio_fn = sym.to_jax(
        sp.Matrix(
            [
                sp.chebyshevt(T, mapped) / sp.chebyshevt(T, mapped.subs(lam, 0))
                for T in ORDERS
            ]
        ),
        [lam],
        (m, M),
    )
    lambdas = rng.uniform(m_value, M_value, size=5)
    products, expected = [], []
    for T in ORDERS:
        order = "fractal" if T & (T - 1) == 0 else "increasing"
        steps = np.asarray(cr.lr.chebyshev_steps(m_value, M_value, T, order=order))
        for value in lambdas:
            products.append(np.prod(1 - value * steps))
            expected.append(
                float(ratio_fn(jnp.asarray([value]), m_value, M_value)[T - 1])
            )
    proof.close(
        "corridors.lr.chebyshev_steps: Π(1 − λh_j) = lambdified T_T ratio, T = 1..8, "
        "5 random λ ∈ [m, M]",
        np.asarray(products),
        np.asarray(expected),
        atol=1e-12,
    )
    bound_fn = sym.to_jax(
        sp.Matrix([1 / sp.chebyshevt(T, mapped.subs(lam, 0)) for T in ORDERS]),
        [m],
        (M,),
    )
    proof.close(
        "corridors.lr.chebyshev_error_bound = lambdified 1/T_T((M + m)/(M − m)), T = 1..8",
        np.asarray([cr.lr.chebyshev_error_bound(m_value, M_value, T) for T in ORDERS]),
        np.asarray(bound_fn(jnp.asarray([m_value]), M_value)),
        rtol=1e-12,
    )
    eigenvalues = jnp.asarray([m_value, 1.0, 5.0, M_value])
    T = 8
    optimizer = optax.sgd(cr.lr.chebyshev_schedule(m_value, M_value, T))
    loss = lambda theta: 0.5 * jnp.sum(eigenvalues * theta**2)  # noqa: E731

    @jax.jit
    def run(theta):
        def step(carry, _):
            theta, state = carry
            updates, state = optimizer.update(jax.grad(loss)(theta), state)
            return (optax.apply_updates(theta, updates), state), None

        return jax.lax.scan(step, (theta, optimizer.init(theta)), length=T)[0][0]

    start = jnp.ones(4)
    expected_final = np.asarray(
        [
            float(ratio_fn(jnp.asarray([float(v)]), m_value, M_value)[T - 1])
            for v in eigenvalues
        ]
    )
    proof.close(
        "optax.sgd(corridors.lr.chebyshev_schedule), T = 8 fractal steps on "
        "½Σλ_iθ_i²: θ_T = p(λ_i)·θ_0",
        run(start),
        expected_final,
        atol=1e-12,
    )

    # Falsification: drop the Chebyshev nodes. Search T for equally spaced nodes on
    # [m, M] whose residual polynomial exceeds the Chebyshev bound on [m, M].
    grid = np.linspace(m_value, M_value, 2001)
    witness, found = "", False
    for T in ORDERS:
        nodes = m_value + (np.arange(T) + 0.5) * (M_value - m_value) / T
        worst_value = float(
            np.max(np.abs(np.prod(1 - grid[:, None] / nodes[None], axis=1)))
        )
        bound = cr.lr.chebyshev_error_bound(m_value, M_value, T)
        if worst_value > bound * (1 + 1e-9):
            witness = (
                f"T = {T}, equally spaced nodes on [{m_value}, {M_value}]: "
                f"max |Π(1 − λ/r_j)| = {worst_value:.4g} > 1/T_T(x0) = {bound:.4g}"
            )
            found = True
            break
    proof.falsification(
        "r_j are the mapped Chebyshev roots", witness=witness, found=found
    )
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
