"""Theorem 2.11: H∇L = 0 on an open set U ⇔ every flow line in U is θ0 − t∇L(θ0).

Two identities carry the proof; sympy checks both for a generic loss and a generic
curve θ(t) in every dimension 1..4:

(a) a gradient-flow solution accelerates by θ'' = H∇L(θ). (⇐) A straight flow line has
    θ'' = 0, so H∇L = 0 at its start; every point of U starts one.
(b) on a curve with constant velocity θ' = −w, u = ∇L(θ) − w satisfies
    u' = H(θ)·u − H∇L(θ). (⇒) With w = ∇L(θ0) and H∇L = 0 along the line, u solves
    the linear ODE u' = H(θ(t))·u with u(0) = 0, so u ≡ 0: ∇L is constant on the line,
    the line solves θ' = −∇L(θ), and by uniqueness it is the flow line.

Run alone: `python proofs/theorem_2_11.py` (exit code 0 only when proved).
"""

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

import corridors as cr
from corridors import symbolic as sym
from corridors.landscapes import Cone, CylinderCone, Linear, Quadratic

jax.config.update("jax_enable_x64", True)

STATEMENT = 2
DIMENSIONS = (1, 2, 3, 4)


def identities(n: int):
    """The residuals of (a) and (b) in n dimensions (both must vanish)."""
    t = sp.Symbol("t", real=True)
    xs = sym.coordinates(n)
    loss = sym.generic_function("L", xs)
    theta = [sp.Function(f"theta{i + 1}", real=True)(t) for i in range(n)]
    at_theta = dict(zip(xs, theta, strict=True))
    grad = sym.gradient(loss, xs).subs(at_theta)
    hess = sym.hessian(loss, xs).subs(at_theta)

    flow = {sp.Derivative(theta[i], t): -grad[i] for i in range(n)}
    acceleration = sp.diff(-grad, t).subs(flow)
    residual_a = acceleration - hess * grad

    w = sp.Matrix(sym.coordinates(n, "w"))
    straight = {sp.Derivative(theta[i], t): -w[i] for i in range(n)}
    u = grad - w
    residual_b = sp.diff(u, t).subs(straight) - (hess * u - hess * grad)
    return residual_a, residual_b


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "Theorem 2.11",
        "On an open set U, H∇L = 0 everywhere ⇔ every gradient-flow line in U is the "
        "straight line θ(t) = θ0 − t∇L(θ0) (as long as it stays in U).",
        method="symbolic, generic sympy.Function L and curve θ(t), every dimension "
        "n = 1..4, plus cited ODE uniqueness",
        assumptions=[
            "L is C² on U (so ∇L is locally Lipschitz and flow lines are unique).",
            "Cited, not machine-checked: uniqueness for the linear ODE u' = A(t)u "
            "(Grönwall) and for θ' = −∇L(θ) (Picard–Lindelöf).",
            "The identities are checked for n = 1..4; the computation is the same in "
            "every dimension.",
        ],
    )
    for n in DIMENSIONS:
        residual_a, residual_b = identities(n)
        proof.vanishes(f"n = {n}: (a) a flow line accelerates by θ'' = H∇L", residual_a)
        proof.vanishes(
            f"n = {n}: (b) θ' = −w ⇒ (∇L − w)' = H(∇L − w) − H∇L", residual_b
        )

    # Cross-checks: corridors' adaptive flow solver on a cone (n = 3) follows the
    # straight line; exact flows of other corridors do too; corridor_score is 0.
    rng = np.random.default_rng(1)
    cone = Cone(jnp.asarray(rng.normal(size=3)), 1.7)
    theta0 = cone.center + jnp.asarray([2.0, -1.0, 1.5])
    ts = np.linspace(0.0, 1.2, 7)  # the apex is reached at t = ‖θ0 − c‖/a ≈ 1.6
    grad0 = jax.grad(cone.loss)(theta0)
    line = theta0[None] - ts[:, None] * grad0[None]
    flow = cr.gradient_flow(cone.loss, theta0, ts)
    proof.close(
        "cone a‖θ − c‖, n = 3: corridors.gradient_flow = θ0 − t∇L(θ0) on [0, 1.2]",
        flow.params,
        line,
        atol=1e-9,
    )
    projection = jnp.diag(jnp.array([1.0, 1.0, 0.0, 0.0]))
    rotation, _ = jnp.linalg.qr(jnp.asarray(rng.normal(size=(4, 4))))
    cylinder = CylinderCone(np.zeros(4), 0.8, rotation @ projection @ rotation.T)
    linear = Linear(jnp.asarray(rng.normal(size=4)), 0.3)
    for name, landscape in (("cylinder cone", cylinder), ("linear", linear)):
        start = jnp.asarray(rng.normal(size=4)) + 3.0
        grad_start = jax.grad(landscape.loss)(start)
        exact = landscape.exact_flow(start, ts)
        proof.close(
            f"{name}, n = 4: exact_flow = θ0 − t∇L(θ0) and corridor_score = 0",
            np.concatenate(
                [exact.ravel(), cr.corridor_score(landscape.loss, start)[None]]
            ),
            np.concatenate(
                [(start[None] - ts[:, None] * grad_start[None]).ravel(), np.zeros(1)]
            ),
            atol=1e-12,
        )

    # Falsification: drop "H∇L = 0". In the family L_s(θ) = s·‖θ‖²/2 + ⟨w, θ⟩ the
    # flow is straight only at s = 0; search s for a bent flow line.
    w = jnp.asarray([1.0, -0.5])
    start = jnp.asarray([0.7, 0.2])
    witness, found = "", False
    for s in (0.0, 0.25, 0.5, 1.0):
        quadratic = Quadratic(s * np.eye(2), w)
        exact = quadratic.exact_flow(start, ts)
        bend = float(
            np.max(
                np.abs(
                    exact
                    - (
                        start[None]
                        - ts[:, None] * jax.grad(quadratic.loss)(start)[None]
                    )
                )
            )
        )
        if bend > 1e-6:
            witness = (
                f"L = {s}·‖θ‖²/2 + ⟨(1, −0.5), θ⟩ from θ0 = (0.7, 0.2): the exact flow "
                f"leaves the line θ0 − t∇L(θ0) by {bend:.3g} by t = 1.2 "
                f"(corridor_score {float(cr.corridor_score(quadratic.loss, start)):.3g})"
            )
            found = True
            break
    proof.falsification("H∇L = 0 on U", witness=witness, found=found)
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
