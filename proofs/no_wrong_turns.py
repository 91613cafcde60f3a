"""No Wrong Turns: path geometry (RSI, EB) gives a linear rate and a step size.

For a GD step x_{k+1} = x_k − h·g_k and d = x_k − x*, with
RSI_k = ⟨g_k, d⟩/‖d‖² and EB_k = ‖g_k‖/‖d‖:

    ‖x_{k+1} − x*‖² = (1 − 2h·RSI_k + h²·EB_k²)·‖d‖²          (exact; sympy, n = 1..4)
                    ≤ (1 − 2hμ + h²L²)·‖d‖²   if RSI_k ≥ μ, EB_k ≤ L, h ≥ 0;

the bound is minimized at h = μ/L², where it equals 1 − μ²/L².

Run alone: `python proofs/no_wrong_turns.py` (exit code 0 only when proved).
"""

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import corridors as cr
from corridors import symbolic as sym
from corridors.landscapes import Quadratic

jax.config.update("jax_enable_x64", True)

STATEMENT = 12
DIMENSIONS = (1, 2, 3, 4)


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "No Wrong Turns",
        "If RSI_k ≥ μ and EB_k ≤ L along the path then ‖x_{k+1} − x*‖² ≤ "
        "(1 − 2hμ + h²L²)‖x_k − x*‖² for h ≥ 0, minimized at h = μ/L² with rate "
        "1 − μ²/L².",
        method="symbolic: the one-step identity in every dimension n = 1..4; the "
        "inequality and the minimization with scalar symbols (dimension-free)",
        assumptions=[
            "x_k ≠ x* (RSI, EB defined), h ≥ 0, μ > 0, L > 0; EB ≥ 0 by definition.",
            "The identity is checked for n = 1..4; it is the bilinear expansion of "
            "‖d − hg‖² in any inner-product space.",
        ],
    )
    h = sp.Symbol("h", nonnegative=True)
    for n in DIMENSIONS:
        d = sp.Matrix(sym.coordinates(n, "d"))
        g = sp.Matrix(sym.coordinates(n, "g"))
        d2 = (d.T * d)[0]
        rsi = (g.T * d)[0] / d2
        eb2 = (g.T * g)[0] / d2
        after = d - h * g
        proof.equal(
            f"n = {n}: ‖d − hg‖² = (1 − 2h·RSI + h²·EB²)‖d‖²",
            (after.T * after)[0],
            (1 - 2 * h * rsi + h**2 * eb2) * d2,
        )
    mu, big_l = sp.symbols("mu L", positive=True)
    slack, gap, eb = sp.symbols("r e EB", nonnegative=True)  # RSI = μ + r, L = EB + e
    factor = lambda rsi_value, eb_value: 1 - 2 * h * rsi_value + h**2 * eb_value**2  # noqa: E731
    difference = sp.expand(factor(mu, eb + gap) - factor(mu + slack, eb))
    proof.fact(
        "RSI = μ + r, L = EB + e (r, e, EB ≥ 0): (1 − 2hμ + h²L²) − (1 − 2h·RSI + "
        f"h²EB²) = {difference} ≥ 0 (every term non-negative)",
        bool(difference.is_nonnegative),
        difference,
    )
    bound = factor(mu, big_l)
    critical = sp.solve(sp.diff(bound, h), h)
    proof.fact(
        f"d/dh (1 − 2hμ + h²L²) = 0 only at h = μ/L² (sympy: {critical})",
        critical == [mu / big_l**2],
        sp.Matrix(critical) - sp.Matrix([mu / big_l**2]) if critical else sp.nan,
    )
    proof.fact(
        "the bound is convex in h: d²/dh² = 2L² > 0, so h = μ/L² is the minimum",
        bool(sp.diff(bound, h, 2).is_positive),
        sp.diff(bound, h, 2),
    )
    proof.equal(
        "its value there is 1 − μ²/L²",
        bound.subs(h, mu / big_l**2),
        1 - mu**2 / big_l**2,
    )

    # Cross-checks: corridors.gd on a quadratic, with RSI/EB from
    # corridors.path_geometry relative to the true minimizer.
    rng = np.random.default_rng(12)
    basis, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    A = basis @ np.diag([0.5, 1.0, 2.0]) @ basis.T
    quadratic = Quadratic(jnp.asarray(A), jnp.asarray(rng.normal(size=3)))
    x_star = jnp.asarray(np.linalg.solve(A, -np.asarray(quadratic.b)))
    start = x_star + jnp.asarray([1.0, -2.0, 0.5])
    lr = 0.3
    iterates = cr.gd(quadratic.loss, start, lr, 8)
    grads = jax.vmap(jax.grad(quadratic.loss))(iterates)
    rsi, eb = cr.path_geometry(iterates, grads, x_star)
    distances2 = np.sum((iterates - x_star) ** 2, axis=1)
    step_identity = sym.to_jax(
        factor(sp.Symbol("R"), sp.Symbol("E")), [sp.Symbol("R"), sp.Symbol("E")], (h,)
    )
    predicted = (
        np.stack([step_identity(np.stack([rsi[k], eb[k]]), lr) for k in range(8)])
        * distances2[:-1]
    )
    proof.close(
        "quadratic, n = 3: ‖x_{k+1} − x*‖² = lambdified (1 − 2h·RSI_k + h²EB_k²)‖x_k − x*‖² "
        "with RSI/EB from corridors.path_geometry",
        distances2[1:],
        predicted,
        rtol=1e-10,
        atol=1e-14,
    )
    # On this quadratic RSI ∈ [λ_min, λ_max] and EB ≤ λ_max everywhere (x* the
    # minimizer), so μ = 0.5, L = 2 hold on every path; check that on the h = μ/L² path.
    mu_value, l_value = 0.5, 2.0
    best = mu_value / l_value**2
    steps = cr.gd(quadratic.loss, start, best, 8)
    rsi_best, eb_best = cr.path_geometry(
        steps, jax.vmap(jax.grad(quadratic.loss))(steps), x_star
    )
    distances = np.sum((steps - x_star) ** 2, axis=1)
    ratio = distances[1:] / distances[:-1]
    rate = 1 - mu_value**2 / l_value**2
    proof.check(
        "quadratic, n = 3: on the corridors.gd path with h = μ/L² = 0.125, "
        "path_geometry gives RSI ≥ μ = 0.5 and EB ≤ L = 2 (error: worst violation)",
        max(
            0.0,
            float(np.max(mu_value - rsi_best[:-1])),
            float(np.max(eb_best[:-1] - l_value)),
        ),
        1e-12,
    )
    proof.check(
        f"… and every step contracts ‖x_k − x*‖² by at most 1 − μ²/L² = {rate:.4f} "
        "(error: worst ratio − rate, clipped at 0)",
        max(0.0, float(np.max(ratio)) - rate),
        1e-12,
    )
    schedule = cr.lr.rsi_eb_schedule(rsi[:-1], eb[:-1])
    proof.close(
        "corridors.lr.rsi_eb_schedule = RSI/EB², the argmin of the one-step factor",
        schedule,
        rsi[:-1] / eb[:-1] ** 2,
        rtol=1e-12,
    )

    # Falsification: drop RSI ≥ μ. Claim a larger μ' than the path's RSI allows and
    # search μ' and the steps of the h = 0.125 path for one that breaks the bound.
    witness, found = "", False
    for mu_try in (0.6, 1.0, 1.5):
        bound_factor = 1 - 2 * best * mu_try + best**2 * l_value**2
        broken = np.nonzero(np.asarray(ratio > bound_factor * (1 + 1e-9)))[0]
        if broken.size:
            k = int(broken[0])
            witness = (
                f"quadratic path (h = 0.125), μ' = {mu_try} > RSI_{k} = "
                f"{float(rsi_best[k]):.3g}: ‖x_{k + 1} − x*‖²/‖x_{k} − x*‖² = "
                f"{float(ratio[k]):.4f} > 1 − 2hμ' + h²L² = {bound_factor:.4f}"
            )
            found = True
            break
    proof.falsification("RSI_k ≥ μ along the path", witness=witness, found=found)
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
