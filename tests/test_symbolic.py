"""Tests of corridors.symbolic: certificates, calculus, series, tableaux, jets, bridge."""

import math
import pathlib
import textwrap

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import corridors as cr
from corridors import symbolic as sym
from corridors.symbolic import run_all as run_all_module


# --- is_zero, Proof, Certificate ------------------------------------------------------
def test_is_zero_methods():
    x, y = sp.symbols("x y")
    assert sym.is_zero(sp.S.Zero) == (True, "literal")
    assert sym.is_zero((x + y) ** 2 - x**2 - 2 * x * y - y**2) == (True, "expand")
    assert sym.is_zero(1 / (x + 1) + x / (x + 1) - 1) == (True, "cancel")
    assert sym.is_zero(sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1) == (True, "simplify")
    assert sym.is_zero(sp.Matrix([x - x, x - y])) == (False, "failed")
    assert sym.is_zero(x**2 - x * x, methods=("expand",))[0]


def test_is_zero_rejects_unknown_methods():
    with pytest.raises(cr.InvalidInputError, match="methods"):
        sym.is_zero(sp.S.One, methods=("magic",))


def _proof(**parts):
    proof = sym.Proof("Toy", "0 = 0", method="by hand")
    if parts.get("identity", True):
        proof.vanishes("zero", sp.S.Zero)
    if parts.get("check", True):
        proof.close("close", [1.0, 2.0], [1.0, 2.0 + 1e-13], atol=1e-12)
    if parts.get("falsification", True):
        proof.falsification("nothing", witness="1 ≠ 0", found=True)
    return proof


def test_certificate_verdict_needs_every_part():
    assert _proof().certificate().verdict
    for missing in ("identity", "check", "falsification"):
        certificate = _proof(**{missing: False}).certificate()
        assert not certificate.verdict
        assert any(missing[:5] in line for line in certificate.failures())


def test_certificate_records_failures():
    proof = _proof()
    x = sp.Symbol("x")
    assert not proof.vanishes("not zero", x)
    assert not proof.close("far", 1.0, 2.0, atol=0.1)
    assert not proof.falsification("kept", witness="", found=False)
    assert not proof.check("nan", float("nan"), 1.0)
    certificate = proof.certificate()
    assert not certificate.verdict
    assert len(certificate.failures()) == 4
    report = certificate.report()
    assert "NOT PROVED" in report and "Toy" in report and "FAIL" in report
    assert str(certificate) == report
    assert certificate.seconds >= 0


def test_proof_close_tolerance_is_atol_plus_rtol():
    proof = sym.Proof("T", "s", method="m")
    assert proof.close("rtol", 101.0, 100.0, rtol=0.02, atol=0.0)
    assert not proof.close("tight", 101.0, 100.0, rtol=0.001, atol=0.0)
    checks = proof.certificate().checks
    assert checks[0].error == pytest.approx(1.0)
    assert checks[0].tolerance == pytest.approx(2.0)


def test_proof_equal_shapes_and_facts():
    proof = sym.Proof("T", "s", method="m")
    assert not proof.equal("shapes", sp.Matrix([1, 2]), sp.Matrix([1, 2, 3]))
    assert proof.equal("same", sp.Matrix([1, 2]), sp.Matrix([1, 2]))
    assert proof.fact("decided", True)
    assert not proof.fact("refuted", False)


@pytest.mark.parametrize("argument", ["name", "statement", "method"])
def test_proof_rejects_empty_strings(argument):
    kwargs = {"name": "n", "statement": "s", "method": "m", argument: ""}
    with pytest.raises(cr.InvalidInputError, match=f"`{argument}`"):
        sym.Proof(kwargs["name"], kwargs["statement"], method=kwargs["method"])


def test_run_proof_exit_codes(capsys):
    assert sym.run_proof(lambda: _proof().certificate()) == 0
    assert "PROVED" in capsys.readouterr().out
    assert sym.run_proof(lambda: _proof(check=False).certificate()) == 1
    assert "failed parts" in capsys.readouterr().out
    with pytest.raises(cr.InvalidInputError, match="Certificate"):
        sym.run_proof(lambda: True)


# --- calculus ---------------------------------------------------------------------------
def test_gradient_hessian_and_corridor_quantity():
    x, y = sym.coordinates(2)
    loss = x**2 * y
    assert sym.gradient(loss, (x, y)) == sp.Matrix([2 * x * y, x**2])
    assert sym.hessian(loss, (x, y)) == sp.Matrix([[2 * y, 2 * x], [2 * x, 0]])
    expected = sp.Matrix([[2 * y, 2 * x], [2 * x, 0]]) * sp.Matrix([2 * x * y, x**2])
    assert sym.is_zero(sym.hessian_gradient(loss, (x, y)) - expected)[0]
    u = sp.Matrix([1, 0])
    assert sym.third_derivative(loss, (x, y), u, u) == sp.Matrix([0, 2])
    assert sym.third_derivative(loss, (x, y), u, sp.Matrix([0, 1])) == sp.Matrix([2, 0])
    assert sym.directional_derivative(loss, (x, y), u) == 2 * x * y


def test_calculus_errors_name_the_argument():
    with pytest.raises(cr.InvalidInputError, match="`n`"):
        sym.coordinates(0)
    with pytest.raises(cr.InvalidInputError, match="`variables`"):
        sym.gradient(sp.Symbol("x"), [])
    x, y = sym.coordinates(2)
    with pytest.raises(cr.InvalidInputError, match="`u` and `v`"):
        sym.third_derivative(x * y, (x, y), sp.Matrix([1]), sp.Matrix([1, 0]))


def test_generic_function_and_instantiate():
    xs = sym.coordinates(2)
    generic = sym.generic_function("L", xs)
    hessian_grad = sym.hessian_gradient(generic, xs)
    concrete = xs[0] ** 2 + 3 * xs[1]
    result = sym.instantiate(hessian_grad, generic, concrete, xs)
    assert sym.is_zero(result - sp.Matrix([4 * xs[0], 0]))[0]
    # The class works as well as the applied function, also at other points.
    t = sp.Symbol("t")
    shifted = generic.subs({xs[0]: xs[0] + t}, simultaneous=True)
    assert sym.is_zero(
        sym.instantiate(sp.diff(shifted, t), generic.func, concrete, xs)
        - 2 * (xs[0] + t)
    )[0]


def test_sample_function_is_deterministic_and_curved():
    xs = sym.coordinates(3)
    assert sym.sample_function(xs, seed=1) == sym.sample_function(xs, seed=1)
    assert sym.sample_function(xs, seed=1) != sym.sample_function(xs, seed=2)
    hg = sym.hessian_gradient(sym.sample_function(xs, seed=1), xs)
    point = {x: sp.Rational(1, 3) for x in xs}
    assert any(abs(float(e.subs(point))) > 1e-3 for e in hg)


# --- series -----------------------------------------------------------------------------
def test_truncate_and_coefficient():
    h, x = sp.symbols("h x")
    expr = 1 + h * x + h**2 * x**2 + h**5
    assert sym.truncate(expr, h, 2) == 1 + h * x + h**2 * x**2
    assert sym.coefficient(sp.Matrix([expr]), h, 2) == sp.Matrix([x**2])
    with pytest.raises(cr.InvalidInputError, match="polynomial"):
        sym.truncate(sp.sin(h), h, 2)
    with pytest.raises(cr.InvalidInputError, match="`order`"):
        sym.truncate(expr, h, -1)


def test_flow_series_of_a_linear_field_is_the_exponential():
    h = sp.Symbol("h")
    (x,) = sym.coordinates(1)
    a = sp.Symbol("a")
    series = sym.flow_series(sp.Matrix([-a * x]), (x,), h, 4)
    expected = x * sum((-a * h) ** k / math.factorial(k) for k in range(5))
    assert sym.is_zero(series[0] - expected)[0]
    backward = sym.flow_series(sp.Matrix([-a * x]), (x,), h, 3, time=-h)
    assert sym.is_zero(
        backward[0] - x * sum((a * h) ** k / math.factorial(k) for k in range(4))
    )[0]
    with pytest.raises(cr.InvalidInputError, match="`time`"):
        sym.flow_series(sp.Matrix([-a * x]), (x,), h, 3, time=h**2)


def test_flow_series_of_a_generic_loss():
    h = sp.Symbol("h")
    xs = sym.coordinates(2)
    loss = sym.generic_function("L", xs)
    grad = sym.gradient(loss, xs)
    flow = sym.flow_series(-grad, xs, h, 2)
    expected = sp.Matrix(xs) - h * grad + h**2 / 2 * sym.hessian_gradient(loss, xs)
    assert sym.is_zero(flow - expected)[0]


def test_taylor_shift_and_steps():
    h = sp.Symbol("h")
    (x,) = sym.coordinates(1)
    shifted = sym.taylor_shift(sp.sin(x), (x,), sp.Matrix([h]), h, 3)
    expected = sp.sin(x) + h * sp.cos(x) - h**2 / 2 * sp.sin(x) - h**3 / 6 * sp.cos(x)
    assert sym.is_zero(shifted - expected)[0]
    with pytest.raises(cr.InvalidInputError, match="vanish at h = 0"):
        sym.taylor_shift(sp.sin(x), (x,), sp.Matrix([1 + h]), h, 3)
    euler = sym.named_tableau("euler")
    field = -sym.gradient(x**3, (x,))
    assert sym.is_zero(
        sym.rk_step_series(field, (x,), h, 3, euler.a, euler.b)
        - sym.gd_step(x**3, (x,), h)
    )[0]


def test_rk4_series_on_a_linear_field():
    h = sp.Symbol("h")
    (x,) = sym.coordinates(1)
    rk4 = sym.named_tableau("rk4")
    step = sym.rk_step_series(sp.Matrix([-x]), (x,), h, 5, rk4.a, rk4.b)
    # RK4's stability polynomial: the exponential up to h⁴, nothing at h⁵.
    expected = x * (1 - h + h**2 / 2 - h**3 / 6 + h**4 / 24)
    assert sym.is_zero(step[0] - expected)[0]


def test_symbolic_tableau_order_conditions():
    h = sp.Symbol("h")
    (x,) = sym.coordinates(1)
    tableau = sym.symbolic_tableau(2)
    step = sym.rk_step_series(sp.Matrix([-x]), (x,), h, 2, tableau.a, tableau.b)
    # The h² coefficient is x·b2·a21 for x' = −x; order 2 needs b2·a21 = 1/2.
    assert sym.is_zero(
        sym.coefficient(step, h, 2)[0] - x * tableau.b[1] * tableau.a[1, 0]
    )[0]
    with pytest.raises(cr.InvalidInputError, match="strictly lower"):
        sym.rk_step_series(sp.Matrix([-x]), (x,), h, 2, sp.eye(2), tableau.b)


# --- tableaux ---------------------------------------------------------------------------
def test_symbolic_tableau_structure():
    tableau = sym.symbolic_tableau(4)
    assert tableau.stages == 4
    assert len(tableau.symbols) == 6 + 3
    assert sp.simplify(sum(tableau.b) - 1) == 0
    assert tableau.c[3] == sum(tableau.a[3, j] for j in range(3))
    free = sym.symbolic_tableau(3, consistent=False)
    assert len(free.symbols) == 3 + 3
    with pytest.raises(cr.InvalidInputError, match="`stages`"):
        sym.symbolic_tableau(0)
    with pytest.raises(cr.InvalidInputError, match="unknown `name`"):
        sym.named_tableau("rk45")


def test_butcher_tableau_matches_corridors_rk4():
    tableau = sym.butcher_tableau(sym.named_tableau("rk4"))
    assert isinstance(tableau, diffrax.ButcherTableau)
    loss = lambda p: jnp.sum(jnp.sin(p)) + jnp.sum(p**2)  # noqa: E731
    start = jnp.asarray([0.3, -0.2])
    ours = cr.runge_kutta(loss, start, 0.1, 2, tableau=tableau)
    named = cr.runge_kutta(loss, start, 0.1, 2, tableau="rk4")
    np.testing.assert_allclose(ours, named, rtol=0, atol=1e-15)


def test_butcher_tableau_errors():
    tableau = sym.symbolic_tableau(2)
    with pytest.raises(cr.InvalidInputError, match="missing"):
        sym.butcher_tableau(tableau, {tableau.symbols[0]: 1})
    with pytest.raises(cr.InvalidInputError, match="one-stage"):
        sym.butcher_tableau(sym.named_tableau("euler"))


# --- jets -------------------------------------------------------------------------------
def test_rooted_trees_counts():
    assert [len(sym.rooted_trees(k)) for k in range(1, 7)] == [1, 1, 2, 4, 9, 20]
    assert all(sym.tree_order(t) == 5 for t in sym.rooted_trees(5))
    assert sym.tree_label(((),)) == "f^(1)(f)"
    with pytest.raises(cr.InvalidInputError, match="`order`"):
        sym.rooted_trees(0)


def test_corridor_jet_kills_differentials_of_order_two_and_more():
    jet = sym.CorridorJet(2, 4)
    assert jet.relations > 0 and jet.free > 0
    (leaf,) = sym.rooted_trees(1)
    assert any(entry != 0 for entry in jet.elementary_differential(leaf))
    for order in (2, 3, 4):
        for tree in sym.rooted_trees(order):
            assert all(entry == 0 for entry in jet.elementary_differential(tree))
    # A derivative without index 1 stays free: the reduction is not vacuous.
    assert jet.value((0, 2)) != 0
    assert str(jet.symbol((1, 2))) == "L_122"
    with pytest.raises(cr.InvalidInputError, match="order"):
        jet.elementary_differential(sym.rooted_trees(5)[0])
    with pytest.raises(cr.InvalidInputError, match="`n`"):
        sym.CorridorJet(0, 3)


# --- bridge -----------------------------------------------------------------------------
def test_to_jax_scalars_vectors_and_parameters():
    x, y = sym.coordinates(2)
    a = sp.Symbol("a")
    scalar = sym.to_jax(a * x * y, (x, y), (a,))
    assert float(scalar(jnp.asarray([2.0, 3.0]), 0.5)) == pytest.approx(3.0)
    vector = sym.to_jax(sp.Matrix([x, y**2]), (x, y))
    np.testing.assert_allclose(vector(jnp.asarray([2.0, 3.0])), [2.0, 9.0])
    assert vector(jnp.asarray([2.0, 3.0])).shape == (2,)
    zero = sym.to_jax(sp.zeros(2, 1), (x, y))
    np.testing.assert_allclose(zero(jnp.asarray([2.0, 3.0])), [0.0, 0.0])
    assert sym.to_jax(a * x * y, (x, y), (a,)) is scalar
    jitted = sym.to_jax(a * x * y, (x, y), (a,), jit=True)
    assert float(jitted(jnp.asarray([2.0, 3.0]), 0.5)) == pytest.approx(3.0)
    grad = jax.grad(lambda p: scalar(p, 1.0))(jnp.asarray([2.0, 3.0]))
    np.testing.assert_allclose(grad, [3.0, 2.0])


def test_to_jax_errors():
    x, y = sym.coordinates(2)
    with pytest.raises(cr.InvalidInputError, match="neither"):
        sym.to_jax(x * sp.Symbol("z"), (x, y))
    with pytest.raises(cr.InvalidInputError, match="undefined function"):
        sym.to_jax(sym.generic_function("L", (x, y)), (x, y))
    with pytest.raises(cr.InvalidInputError, match="length 2"):
        sym.to_jax(x * y, (x, y))(jnp.ones(3))
    with pytest.raises(cr.InvalidInputError, match="parameter"):
        sym.to_jax(x * y, (x, y))(jnp.ones(2), 1.0)
    with pytest.raises(cr.InvalidInputError, match="scalar"):
        sym.to_loss(sp.Matrix([x]), (x, y))


def test_to_loss_runs_in_the_library():
    xs = sym.coordinates(2)
    loss = sym.to_loss(3 * xs[0] - xs[1], xs)
    iterates = cr.gd(loss, jnp.asarray([0.0, 0.0]), 0.5, 2)
    np.testing.assert_allclose(iterates[-1], [-3.0, 1.0])


# --- run_all ----------------------------------------------------------------------------
def test_discover_finds_every_statement():
    proofs = pathlib.Path(__file__).resolve().parents[1] / "proofs"
    names = [path.stem for path in run_all_module.discover(proofs)]
    assert len(names) == 14
    assert "lemma_2_8" in names and "conftest" not in names
    assert not any(name.startswith("test_") for name in names)


def test_run_all_reports_success_and_crashes(tmp_path, capsys):
    (tmp_path / "good_proof.py").write_text(
        textwrap.dedent(
            """
            import sympy as sp
            from corridors import symbolic as sym

            STATEMENT = 1

            def prove():
                proof = sym.Proof("Good", "0 = 0", method="by hand")
                proof.vanishes("zero", sp.S.Zero)
                proof.check("small", 0.0, 1.0)
                proof.falsification("h", witness="w", found=True)
                return proof.certificate()
            """
        )
    )
    (tmp_path / "bad_proof.py").write_text(
        "STATEMENT = 2\n\ndef prove():\n    raise RuntimeError('boom')\n"
    )
    (tmp_path / "test_ignored.py").write_text(
        "raise SystemExit('must not be imported')\n"
    )
    results = run_all_module.run_all(tmp_path)
    assert [name for name, _ in results] == ["good_proof", "bad_proof"]
    assert results[0][1].verdict and not results[1][1].verdict
    assert "boom" in results[1][1].failures()[0]
    assert run_all_module.main(["--proofs", str(tmp_path), "good_proof"]) == 0
    assert run_all_module.main(["--proofs", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "Good" in out and "bad_proof" in out
    with pytest.raises(cr.InvalidInputError, match="unknown proof"):
        run_all_module.run_all(tmp_path, ["missing"])
    with pytest.raises(cr.InvalidInputError, match="not a folder"):
        run_all_module.run_all(tmp_path / "nowhere")
