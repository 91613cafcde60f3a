"""Proposition 2.10: in a corridor the loss falls linearly, L(θ(t)) = L(θ0) − t‖∇L(θ0)‖².

By Theorem 2.11 the flow line is θ(t) = θ0 − t·w with w = ∇L(θ0), and ∇L(θ(t)) = w on
it. sympy checks, for a generic loss and curve in every dimension 1..4, the chain rule
d/dt L(θ(t)) = −⟨∇L(θ(t)), w⟩ on a curve with θ' = −w; substituting ∇L(θ(t)) = w
makes the slope the constant −‖w‖², and integrating gives the claim. The second
derivative w·H·w = ⟨∇L, H∇L⟩ vanishes in the corridor, as it must.

Run alone: `python proofs/proposition_2_10.py` (exit code 0 only when proved).
"""

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import corridors as cr
from corridors import symbolic as sym
from corridors.landscapes import Cone, Quadratic

jax.config.update("jax_enable_x64", True)

STATEMENT = 3
DIMENSIONS = (1, 2, 3, 4)


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "Proposition 2.10",
        "In a corridor (H∇L = 0 on an open set U) the loss decreases linearly along the "
        "gradient flow: L(θ(t)) = L(θ0) − t‖∇L(θ0)‖² while θ(t) stays in U.",
        method="symbolic, generic sympy.Function L and curve θ(t), every dimension "
        "n = 1..4, with Theorem 2.11",
        assumptions=[
            "L is C² on U; Theorem 2.11 (proved in proofs/theorem_2_11.py) gives "
            "θ(t) = θ0 − t·w and ∇L(θ(t)) = w = ∇L(θ0).",
            "The identities are checked for n = 1..4; the computation is the same in "
            "every dimension.",
        ],
    )
    t, s = sp.symbols("t s", real=True)
    loss0 = sp.Symbol("L0", real=True)
    for n in DIMENSIONS:
        xs = sym.coordinates(n)
        loss = sym.generic_function("L", xs)
        theta = [sp.Function(f"theta{i + 1}", real=True)(t) for i in range(n)]
        at_theta = dict(zip(xs, theta, strict=True))
        w = sp.Matrix(sym.coordinates(n, "w"))
        straight = {sp.Derivative(theta[i], t): -w[i] for i in range(n)}
        grad_t = sym.gradient(loss, xs).subs(at_theta)
        slope = sp.diff(loss.subs(at_theta), t).subs(straight)
        proof.vanishes(
            f"n = {n}: θ' = −w ⇒ d/dt L(θ(t)) = −⟨∇L(θ(t)), w⟩",
            slope + (grad_t.T * w)[0],
        )
        curvature = sp.diff(slope, t).subs(straight)
        hess_t = sym.hessian(loss, xs).subs(at_theta)
        proof.vanishes(
            f"n = {n}: d²/dt² L(θ(t)) = wᵀH(θ(t))w, = ⟨∇L, H∇L⟩ once ∇L(θ(t)) = w",
            curvature - (w.T * hess_t * w)[0],
        )
        in_corridor = -(w.T * w)[0]  # the slope after ∇L(θ(t)) = w (Theorem 2.11)
        integrated = loss0 + sp.integrate(in_corridor.subs(t, s), (s, 0, t))
        proof.equal(
            f"n = {n}: L0 + ∫₀ᵗ −‖w‖² ds = L0 − t‖w‖²",
            integrated,
            loss0 - t * (w.T * w)[0],
        )

    # Cross-check: loss along corridors.gradient_flow on a cone (n = 3) is affine with
    # slope −‖∇L(θ0)‖² = −a²; the symbolic cone loss, lambdified, agrees with the
    # landscape's.
    rng = np.random.default_rng(1)
    cone = Cone(jnp.asarray(rng.normal(size=3)), 1.7)
    theta0 = cone.center + jnp.asarray([2.0, -1.0, 1.5])
    ts = np.linspace(0.0, 1.2, 7)
    flow = cr.gradient_flow(cone.loss, theta0, ts)
    losses = jax.vmap(cone.loss)(flow.params)
    value0, grad0 = jax.value_and_grad(cone.loss)(theta0)
    proof.close(
        "cone, n = 3: L along corridors.gradient_flow = L(θ0) − t‖∇L(θ0)‖²",
        losses,
        value0 - ts * np.sum(grad0**2),
        atol=1e-9,
    )
    xs = sym.coordinates(3)
    center = sp.Matrix([sp.nsimplify(float(c)) for c in cone.center])
    a = sp.nsimplify(1.7)
    symbolic_cone = a * sp.sqrt(
        sum((x - c) ** 2 for x, c in zip(xs, center, strict=True))
    )
    along = sym.to_jax(symbolic_cone, xs)
    proof.close(
        "cone, n = 3: lambdified a‖θ − c‖ = Cone.loss along the flow",
        np.stack([along(p) for p in flow.params]),
        losses,
        atol=1e-9,
    )

    # Falsification: drop the corridor. On quadratics s·‖θ‖²/2 + ⟨w, θ⟩ the loss along
    # the exact flow is affine only for s = 0: search s for a second difference ≠ 0.
    w = jnp.asarray([1.0, -0.5])
    start = jnp.asarray([0.7, 0.2])
    witness, found = "", False
    for s_value in (0.0, 0.25, 0.5, 1.0):
        quadratic = Quadratic(s_value * np.eye(2), w)
        values = jax.vmap(quadratic.loss)(quadratic.exact_flow(start, ts))
        second = float(np.max(np.abs(np.diff(values, 2))))
        if second > 1e-8:
            witness = (
                f"L = {s_value}·‖θ‖²/2 + ⟨(1, −0.5), θ⟩: the loss along the exact flow "
                f"has second differences up to {second:.3g} (not affine in t)"
            )
            found = True
            break
    proof.falsification("H∇L = 0 on U", witness=witness, found=found)
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
