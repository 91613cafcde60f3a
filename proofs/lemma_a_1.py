"""Lemma A.1 and Remark A.3: heavy-ball momentum in a corridor.

Heavy ball in the optax convention, m_{k+1} = ∇L(θ_k) + β·m_k, θ_{k+1} = θ_k − h·m_{k+1},
from m_0 = 0. In a corridor, with w = ∇L(θ0):

    m_k = w·(1 − β^k)/(1 − β),   θ_k = θ0 − h·w·S_k,   S_k = Σ_{j=1..k} (1 − β^j)/(1 − β),

the gradient-flow line θ0 − t·w at flow time h·S_k. sympy proves the closed forms by
induction for symbolic k (each coordinate; every vector is a multiple of w, so this
holds in every dimension); ∇L(θ_k) = w on the line is Theorem 2.11.

Remark A.3: the recurrence θ_{k+1} − (1 + β)θ_k + βθ_{k−1} = −h∇L(θ_k) is matched to
O(h³) by the modified ODE

    θ' = −∇L/(1 − β) − h(1 + β)/(2(1 − β)³)·H∇L = −(1/(1 − β))·∇(L + λ‖∇L‖²),
    λ = h(1 + β)/(4(1 − β)²),

(sympy, generic loss, dimensions 1..4). Its regularization term is a multiple of H∇L,
which vanishes in a corridor: there the ODE is the gradient flow sped up by 1/(1 − β).

Run alone: `python proofs/lemma_a_1.py` (exit code 0 only when proved).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import sympy as sp

import corridors as cr
from corridors import symbolic as sym
from corridors.landscapes import Cone, Linear

jax.config.update("jax_enable_x64", True)

STATEMENT = 7
DIMENSIONS = (1, 2, 3, 4)
HS = np.array([0.004, 0.002, 0.001, 0.0005])  # the asymptotic regime of the sample loss


def speed_sum():
    """(k, β, S_k in closed form) with S_k = Σ_{j=1..k} (1 − β^j)/(1 − β)."""
    k = sp.Symbol("k", integer=True, nonnegative=True)
    beta = sp.Symbol("beta", positive=True)
    return k, beta, (k - beta * (1 - beta**k) / (1 - beta)) / (1 - beta)


def modified_equation(n: int):
    """(field, residual of the recurrence to O(h²), IGR form, symbols)."""
    h = sp.Symbol("h", positive=True)
    beta = sp.Symbol("beta", positive=True)
    xs = sym.coordinates(n)
    loss = sym.generic_function("L", xs)
    grad = sym.gradient(loss, xs)
    hess_grad = sym.hessian(loss, xs) * grad
    field = -grad / (1 - beta) - h * (1 + beta) / (2 * (1 - beta) ** 3) * hess_grad
    forward = sym.flow_series(field, xs, h, 2)
    backward = sym.flow_series(field, xs, h, 2, time=-h)
    residual = forward - (1 + beta) * sp.Matrix(xs) + beta * backward + h * grad
    lam = h * (1 + beta) / (4 * (1 - beta) ** 2)
    igr = -sym.gradient(loss + lam * (grad.T * grad)[0], xs) / (1 - beta)
    return field, sym.truncate(residual, h, 2), igr, hess_grad, (h, beta, xs, loss)


def prove() -> sym.Certificate:
    proof = sym.Proof(
        "Lemma A.1 / Remark A.3",
        "Heavy-ball momentum (optax convention, m0 = 0) in a corridor stays on the "
        "flow line: θ_k = θ0 − h∇L(θ0)·Σ_{j=1..k}(1 − β^j)/(1 − β); its modified ODE "
        "θ' = −(1/(1−β))∇(L + h(1+β)/(4(1−β)²)‖∇L‖²) loses its regularization term "
        "there.",
        method="symbolic induction for symbolic k (dimension-free); modified equation "
        "by Lie series, generic sympy.Function L, every dimension n = 1..4",
        assumptions=[
            "L is C² on a corridor containing θ0 − t∇L(θ0) for t ∈ [0, h·S_k]; "
            "Theorem 2.11 gives ∇L(θ_k) = ∇L(θ0) on that line.",
            "0 ≤ β < 1, m0 = 0.",
            "The modified equation is checked for n = 1..4 and to O(h³) per step; its "
            "transient from m0 = 0 is not modelled.",
        ],
    )
    k, beta, speed = speed_sum()
    lr, w, theta0 = sp.symbols("h w theta0", real=True)
    momentum_k = w * (1 - beta**k) / (1 - beta)
    iterate_k = theta0 - lr * w * speed
    proof.vanishes(
        "base: m_0 = 0, θ_0 = θ0, S_0 = 0",
        sp.Matrix(
            [momentum_k.subs(k, 0), iterate_k.subs(k, 0) - theta0, speed.subs(k, 0)]
        ),
    )
    next_momentum = w + beta * momentum_k  # ∇L(θ_k) = w on the corridor line
    proof.vanishes(
        "step: m_{k+1} = ∇L(θ_k) + β·m_k with ∇L(θ_k) = w (symbolic k)",
        sp.expand(sp.powsimp(sp.expand(next_momentum - momentum_k.subs(k, k + 1)))),
        methods=("expand", "simplify"),
    )
    proof.vanishes(
        "step: θ_{k+1} = θ_k − h·m_{k+1} = θ0 − h·w·S_{k+1} (symbolic k)",
        sp.expand(
            sp.powsimp(
                sp.expand(iterate_k - lr * next_momentum - iterate_k.subs(k, k + 1))
            )
        ),
        methods=("expand", "simplify"),
    )
    j = sp.Symbol("j", integer=True, positive=True)
    proof.vanishes(
        "S_k = Σ_{j=1..k} (1 − β^j)/(1 − β): S_{k+1} − S_k = (1 − β^{k+1})/(1 − β)",
        sp.expand(
            sp.powsimp(
                sp.expand(
                    speed.subs(k, k + 1)
                    - speed
                    - ((1 - beta**j) / (1 - beta)).subs(j, k + 1)
                )
            )
        ),
        methods=("expand", "simplify"),
    )
    for n in DIMENSIONS:
        field, residual, igr, hess_grad, (h, beta_n, _, _) = modified_equation(n)
        proof.vanishes(
            f"n = {n}: θ(t+h) − (1+β)θ(t) + βθ(t−h) + h∇L = O(h³) on the modified "
            "ODE's solutions",
            residual,
        )
        proof.equal(
            f"n = {n}: the modified field is −(1/(1−β))∇(L + h(1+β)/(4(1−β)²)‖∇L‖²)",
            field,
            igr,
        )
        proof.equal(
            f"n = {n}: its regularization term is −h(1+β)/(2(1−β)³)·H∇L (0 in a "
            "corridor)",
            field
            + sym.gradient(
                sym.generic_function("L", sym.coordinates(n)), sym.coordinates(n)
            )
            / (1 - beta_n),
            -h * (1 + beta_n) / (2 * (1 - beta_n) ** 3) * hess_grad,
        )

    # Cross-checks: corridors.momentum and measure_drift's matched times on a cone.
    speed_of = sym.to_jax(speed.subs(k, sp.Symbol("kk")), [sp.Symbol("kk")], (beta,))
    rng = np.random.default_rng(7)
    cone = Cone(jnp.asarray(rng.normal(size=3)), 0.6)
    start = cone.center + jnp.asarray([3.0, -2.0, 2.5])
    grad0 = jax.grad(cone.loss)(start)
    n_steps, h_value = 6, 0.1
    for beta_value in (0.0, 0.5, 0.9):
        speeds = np.stack(
            [speed_of(jnp.array([float(i)]), beta_value) for i in range(n_steps + 1)]
        )
        iterates = cr.momentum(cone.loss, start, h_value, beta_value, n_steps)
        proof.close(
            f"cone, β = {beta_value}: corridors.momentum = θ0 − h∇L(θ0)·S_k "
            "(lambdified S_k), k ≤ 6",
            iterates,
            start[None] - h_value * speeds[:, None] * grad0[None],
            atol=1e-12,
        )
    drift = cr.measure_drift(
        cone.loss, start, h_value, n_steps, method="momentum", beta=0.9
    )
    proof.close(
        "cone, β = 0.9: measure_drift(method='momentum').ts = h·S_k and distance = 0",
        np.concatenate([drift.ts, drift.distance]),
        np.concatenate(
            [
                h_value
                * np.stack(
                    [speed_of(jnp.array([float(i)]), 0.9) for i in range(n_steps + 1)]
                ),
                np.zeros(n_steps + 1),
            ]
        ),
        atol=1e-10,
    )

    # Cross-check of the modified ODE (n = 3): the recurrence residual on its solution
    # (corridors.gradient_flow with modified = h(1+β)/(1−β)², time rescaled by 1−β) is
    # O(h³); on the rescaled plain flow it is only O(h²).
    xs = sym.coordinates(3)
    loss = sym.to_loss(sym.sample_function(xs, seed=3), xs)
    grad = jax.jit(jax.grad(loss))
    theta_start = jnp.asarray([0.3, -0.4, 0.2])
    beta_value = 0.5
    with_term, without_term = [], []
    for h_value in HS:
        tau = h_value / (1 - beta_value)
        modified = h_value * (1 + beta_value) / (1 - beta_value) ** 2
        one, two = (
            cr.gradient_flow(
                loss, theta_start, jnp.asarray([0.0, m * tau]), modified=modified
            ).params[1]
            for m in (1, 2)
        )
        plain = cr.gradient_flow(loss, theta_start, tau * np.arange(5.0)).params
        for out, (a, b, c) in (
            (with_term, (theta_start, one, two)),
            (without_term, (plain[0], plain[1], plain[2])),
        ):
            out.append(
                float(
                    np.linalg.norm(
                        c - (1 + beta_value) * b + beta_value * a + h_value * grad(b)
                    )
                )
            )
    order_with = cr.drift_order(HS, with_term).order
    proof.check(
        "n = 3, β = 0.5: recurrence residual on the modified ODE's solution "
        "(corridors.gradient_flow) has order 3 (|slope − 3|)",
        abs(order_with - 3.0),
        0.15,
    )
    order_without = cr.drift_order(HS, without_term).order
    proof.check(
        "n = 3, β = 0.5: without the H∇L term (plain flow, time/(1−β)) it has order 2 "
        "(|slope − 2|)",
        abs(order_without - 2.0),
        0.15,
    )

    # Falsification: drop m0 = 0 (velocity aligned with the gradient). Start from
    # m0 = v on a linear loss (a corridor) and search v for iterates off the line.
    linear = Linear(jnp.asarray([1.0, 2.0, -1.0]))
    optimizer = optax.sgd(0.1, momentum=0.9)
    witness, found = "", False
    for trial in range(10):
        v = jnp.asarray(rng.normal(size=3))
        params = np.zeros(3)
        trace, empty = optimizer.init(params)
        state = (trace._replace(trace=v), empty)
        for _ in range(5):
            updates, state = optimizer.update(jax.grad(linear.loss)(params), state)
            params = optax.apply_updates(params, updates)
        direction = linear.w / np.linalg.norm(linear.w)
        off_line = float(np.linalg.norm(params - (params @ direction) * direction))
        if off_line > 1e-6:
            witness = (
                f"linear loss ⟨(1, 2, −1), θ⟩, m0 = {np.round(np.asarray(v), 3).tolist()}"
                f" (trial {trial}), h = 0.1, β = 0.9: after 5 optax steps the iterate is "
                f"{off_line:.3g} off the flow line"
            )
            found = True
            break
    proof.falsification("m0 = 0 (or m0 parallel to ∇L)", witness=witness, found=found)
    return proof.certificate()


if __name__ == "__main__":
    raise SystemExit(sym.run_proof(prove))
