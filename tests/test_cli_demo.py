"""`corridors demo --fast` writes every file it promises, and its numbers satisfy the
theorems; `corridors plot` redraws its figures from demo.json alone."""

import itertools
import json

import pytest

from corridors.cli import main
from corridors.cli._demo import FILES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# In-process: a subprocess would add a JAX import (~10 s); the CLI's exit codes and
# stderr in a real process are tested in tests/test_cli.py. Slow: the demo's third
# part compiles a central flow, a modified flow and two Lanczos solves (~100 s more).
@pytest.mark.slow
def test_fast_demo_report_and_theorems(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--fast", "--json", "--quiet", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert "Traceback" not in captured.err

    for name in FILES:
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_SIGNATURE
    report = (out / "report.md").read_text(encoding="utf-8")
    for png in (name for name in FILES if name.endswith(".png")):
        assert f"]({png})" in report

    # The numbers, read back from the JSON on disk.
    document = json.loads((out / "demo.json").read_text(encoding="utf-8"))
    assert document["kind"] == "corridors.demo"
    assert document["settings"] == {"fast": True, "seed": 0}
    assert printed["checks"] == document["checks"]
    assert all(check["passed"] for check in document["checks"])

    cone = document["analytic"]["cone"]
    assert set(cone["methods"]) == {"gd", "rk4", "momentum"}
    for values in cone["methods"].values():
        assert len(values["max_drift"]) == len(cone["lrs"])
        assert max(values["max_drift"]) <= 1e-9

    series = {s["name"]: s for s in document["analytic"]["quadratic"]["series"]}
    assert abs(series["gd_one_step"]["slope"] - 2) <= 0.15
    assert abs(series["gd_horizon"]["slope"] - 1) <= 0.15
    assert abs(series["rk4_horizon"]["slope"] - 4) <= 0.15
    assert abs(series["momentum_horizon"]["slope"] - 1) <= 0.15
    lrs = document["analytic"]["quadratic"]["lrs"]
    for s in series.values():  # drift grows with lr on the quadratic
        by_lr = [d for _, d in sorted(zip(lrs, s["drift"], strict=True))]
        assert all(a < b for a, b in itertools.pairwise(by_lr))

    network = document["network"]
    training = network["training"]
    assert training["drift"][0] == 0.0
    assert all(d > 0 for d in training["drift"][1:])
    assert all(score > 0 for score in training["corridor_score"])
    assert len(network["sweep"]["drift"]) == len(network["sweep"]["lrs"])
    runs = network["clr"]["runs"]
    assert runs[0]["optimizer"] == "clr"
    assert len(runs[0]["loss"]) == network["clr"]["steps"] + 1
    assert runs[0]["loss"][-1] < runs[0]["loss"][0]  # CLR trains without an lr

    # Part 3: GD at the edge of stability against GF, the modified flow and the central
    # flow, each saved at the same steps.
    edge = document["edge"]
    two_over_h, steps = edge["edge"], edge["step"]
    assert two_over_h == 2 / edge["lr"]
    for series in (
        edge["gd"]["sharpness"],
        edge["central"]["sharpness"],
        edge["central"]["predicted_loss"],
        edge["flow"]["loss"],
        edge["modified"]["loss"],
        *edge["distance"].values(),
    ):
        assert len(series) == len(steps)
    assert len(edge["gd"]["loss"]) == edge["n_steps"] + 1
    assert all(d[0] == 0.0 for d in edge["distance"].values())  # the same start
    # GD is at the edge: its sharpness starts below 2/h and passes it (progressive
    # sharpening), in the last quarter it stays within 30% of 2/h, and its loss is
    # non-monotone while it still falls overall.
    gd = edge["gd"]
    assert gd["sharpness_converged"]
    assert gd["sharpness"][0] < 0.9 * two_over_h
    assert gd["max_sharpness_ratio"] > 1.0
    low, high = gd["late_sharpness_ratio"]
    assert 0.95 < low <= high < 1.3
    assert gd["loss_increases"] >= 3
    assert gd["loss"][-1] < 0.2 * gd["loss"][0]
    # The central flow holds its sharpness at 2/h (it reaches it: Σ switches on), and an
    # independent Lanczos at its end agrees on the top eigenvalue and finds the first
    # untracked one below 2/h.
    central = edge["central"]
    assert max(central["sharpness"]) <= two_over_h * (1 + 1e-3)
    assert max(central["sharpness"]) > 0.999 * two_over_h
    assert central["first_edge_step"] is not None
    independent = central["independent_eigenvalues"]
    assert abs(independent[0] / central["sharpness"][-1] - 1) < 1e-4
    assert independent[edge["k"]] < two_over_h
    # Below the edge the central flow is the gradient flow (Σ = 0); 1e-3: the central
    # flow is solved to rtol 1e-4, the gradient flow to 1e-10.
    before = [i for i, step in enumerate(steps) if step < central["first_edge_step"]]
    assert before
    for i in before:
        assert central["predicted_loss"][i] == pytest.approx(
            edge["flow"]["loss"][i], rel=1e-3
        )
    # At the end GD is closer to the central flow than to either series in h.
    final = edge["final_distance"]
    assert final["central"] < min(final["flow"], final["modified"])
    assert {c["name"] for c in document["checks"] if c["name"].startswith("edge:")}

    # `corridors plot` redraws every figure from demo.json, without recomputing.
    replot = tmp_path / "replot"
    assert main(["plot", str(out), "--out", str(replot), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    names = sorted(p.split("/")[-1] for p in figures["figures"])
    assert names == sorted(name for name in FILES if name.endswith(".png"))
    for name in names:
        assert (replot / name).read_bytes()[:8] == PNG_SIGNATURE
