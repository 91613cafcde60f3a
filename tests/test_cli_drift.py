"""`corridors drift`: table, JSON and figures; the orders of the theory.

These run the command in-process (`main(argv)`, output captured) to share one JAX
compilation cache; `test_cli.py` and `test_cli_demo.py` drive it in a subprocess.
"""

import json

import numpy as np
import pytest

from corridors.cli import main


def drift(*arguments, capsys) -> dict:
    """`corridors drift ARGUMENTS --json --quiet`, returning the printed document."""
    code = main(["drift", *map(str, arguments), "--json", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    return json.loads(captured.out)


def test_drift_on_a_cone_is_round_off(tmp_path, capsys):
    document = drift(
        "--landscape", "cone", "--method", "gd", "momentum", "--lr", "0.2", "0.1",
        "--steps", "5", "--out", tmp_path, capsys=capsys,
    )  # fmt: skip
    assert document["kind"] == "corridors.drift"
    assert len(document["runs"]) == 4
    for run in document["runs"]:
        assert run["max_drift"] <= 1e-12
        assert run["n_steps"] == 5
    assert all(
        fit["at_round_off"] and fit["theory"] is None for fit in document["fits"]
    )
    for name in ("drift.json", "report.md", "drift_vs_lr.png", "drift_along_time.png"):
        assert (tmp_path / name).is_file()
    on_disk = json.loads((tmp_path / "drift.json").read_text(encoding="utf-8"))
    assert on_disk["runs"][0]["distance"] == document["runs"][0]["distance"]


def test_one_step_drift_orders_against_the_flow_and_the_modified_flow(tmp_path, capsys):
    lrs = ("0.04", "0.02", "0.01")
    slopes = {}
    for reference in ("flow", "modified"):
        document = drift(
            "--landscape", "quadratic", "--lr", *lrs, "--steps", "1",
            "--reference", reference, "--out", tmp_path / reference, capsys=capsys,
        )  # fmt: skip
        (fit,) = document["fits"]
        slopes[reference] = fit["slope"]
        assert fit["theory"] == (2 if reference == "flow" else 3)
    assert abs(slopes["flow"] - 2) <= 0.15  # (h²/2)H∇L
    assert abs(slopes["modified"] - 3) <= 0.2  # the modified flow is one order better


def test_drift_of_a_network_on_a_data_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "data.npz", x=rng.normal(size=(40, 5)), y=rng.integers(0, 3, 40))
    document = drift(
        "--model", "mlp", "--dataset", "folder", "--data-dir", data, "--hidden", "4",
        "--lr", "0.1", "0.05", "--steps", "3", "--seed", "1",
        "--out", tmp_path / "out", capsys=capsys,
    )  # fmt: skip
    assert document["problem"]["parameters"] == 5 * 4 + 4 + 4 * 3 + 3
    assert document["settings"]["seed"] == 1
    assert [run["lr"] for run in document["runs"]] == [0.1, 0.05]
    assert all(run["drift"] > 0 for run in document["runs"])


def test_a_diverging_run_is_one_line_from_the_status_channel(tmp_path, capsys):
    from corridors.cli._main import main

    # GD on the quadratic (spectrum up to 2) at lr 5 overflows within 2000 steps.
    code = main(
        ["drift", "--lr", "5", "--steps", "2000", "--out", str(tmp_path), "--quiet"]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "gd at lr 5 (2000 steps): The iterates became NaN or Inf" in err[0]


def failure(*arguments, capsys) -> str:
    """`corridors drift ARGUMENTS --quiet` that must fail with exit code 2 in one line."""
    code = main(["drift", *map(str, arguments), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    return err[0]


def test_gd_tracks_its_higher_modified_flows_and_the_principal_flow(tmp_path, capsys):
    lrs = ("0.04", "0.02", "0.01")
    document = drift(
        "--landscape", "quadratic", "--lr", *lrs, "--steps", "1",
        "--reference", "modified3", "--out", tmp_path, capsys=capsys,
    )  # fmt: skip
    assert document["settings"]["reference"] == "modified3"
    (fit,) = document["fits"]
    # The modified flow of order p matches one GD step to O(h^(p+2)).
    assert fit["theory"] == 5
    assert abs(fit["slope"] - 5) <= 0.2
    assert "modified flow (order 3)" in (tmp_path / "report.md").read_text("utf-8")
    # On a quadratic the principal flow passes through every GD iterate exactly
    # (it is the log of GD's linear map), so only round-off remains.
    document = drift(
        "--landscape", "quadratic", "--lr", "0.2", "0.1", "--steps", "3",
        "--reference", "principal", "--out", tmp_path / "principal", capsys=capsys,
    )  # fmt: skip
    (fit,) = document["fits"]
    assert fit["at_round_off"] and fit["theory"] is None
    assert all(run["drift"] <= 1e-12 for run in document["runs"])


def test_bad_drift_combinations_are_one_line_errors(tmp_path, capsys):
    out = ("--out", tmp_path / "never")
    message = failure("--method", "momentum", "--reference", "modified2", *out,
                      capsys=capsys)  # fmt: skip
    assert "--reference modified2 is a flow of GD" in message and "momentum" in message
    message = failure("--method", "sgd", *out, capsys=capsys)
    assert "--method sgd needs data" in message and "quadratic" in message
    message = failure("--method", "sgd", "gd", "--model", "mlp", *out, capsys=capsys)
    assert "--method sgd runs alone" in message
    message = failure("--batch-size", "4", *out, capsys=capsys)
    assert "go with --method sgd" in message
    message = failure("--model", "mlp", "--method", "sgd", "--reference", "central",
                      *out, capsys=capsys)  # fmt: skip
    assert "--reference is for the deterministic methods" in message
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "data.npz", x=rng.normal(size=(12, 3)), y=rng.integers(0, 2, 12))
    message = failure(
        "--model", "mlp", "--dataset", "folder", "--data-dir", data, "--method",
        "sgd", "--batch-size", "500", *out, capsys=capsys,
    )  # fmt: skip
    assert "--batch-size 500 is above the" in message
    assert not (tmp_path / "never").exists()
    # Range checks of the flags themselves are argparse's (exit 2, usage on stderr).
    for flag in ("--batch-size", "--paths"):
        assert main(["drift", "--method", "sgd", flag, "0"]) == 2
        assert "must be an integer ≥ 1" in capsys.readouterr().err


@pytest.mark.slow  # SGD, flow and two SME compilations: ~100 s on the shared 2-core VM
def test_sgd_against_its_sme_on_a_data_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "data.npz", x=rng.normal(size=(40, 5)), y=rng.integers(0, 3, 40))
    document = drift(
        "--model", "mlp", "--dataset", "folder", "--data-dir", data, "--hidden", "4",
        "--method", "sgd", "--batch-size", "4", "--paths", "64",
        "--lr", "0.1", "0.05", "--steps", "4", "--out", tmp_path / "out",
        capsys=capsys,
    )  # fmt: skip
    assert document["kind"] == "corridors.drift.sgd"
    settings = document["settings"]
    assert (settings["batch_size"], settings["paths"]) == (4, 64)
    assert [run["lr"] for run in document["runs"]] == [0.1, 0.05]
    assert [fit["theory"] for fit in document["fits"]] == [1, 2]
    for run in document["runs"]:
        assert run["flow_time"] == pytest.approx(4 * run["lr"])
        for order in (1, 2):
            error = abs(run["loss_sgd"] - run[f"loss_sme{order}"])
            assert run[f"weak_error{order}"] == pytest.approx(error, rel=1e-9)
            # The SME models SGD: at these small lrs its model error is far below
            # the Monte Carlo noise of 64 paths, so the means agree within 99%.
            assert run[f"weak_error{order}"] <= run[f"half_width{order}"]
    out = tmp_path / "out"
    assert (out / "report.md").is_file()
    assert "sgd_drift_along_time.png" in document["files"]
    assert (out / "sgd_drift_along_time.png").stat().st_size > 10_000
    on_disk = json.loads((out / "drift.json").read_text(encoding="utf-8"))
    for run in on_disk["runs"]:
        along = run["along"]
        # 4 steps: every iterate is saved, at t = k·lr; all paths start on the flow.
        np.testing.assert_allclose(along["ts"], run["lr"] * np.arange(5))
        assert along["sgd_to_flow"][0] == 0 and along["sgd_to_flow"][-1] > 0
        low, mean, high = (
            np.array(along[k][1:])
            for k in ("sgd_to_flow_low", "sgd_to_flow", "sgd_to_flow_high")
        )
        assert np.all((low <= mean) & (mean <= high))
    _check_sgd_figure(on_disk, n_paths=64)


def _sgd_document(n_paths=3):
    """A `corridors drift --method sgd` document whose curves are known exactly: the
    flow is 0, path p is at (p + 1)·t·(3, 4) (distance 5(p + 1)t), the SME of order q
    is the same paths shifted by q·(1, 0) (a gap of exactly q)."""
    from corridors.cli import _sgd_figure

    runs = []
    for lr in (0.1, 0.05):
        ts = lr * np.arange(4.0)
        sgd = np.arange(1.0, n_paths + 1)[:, None, None] * ts[None, :, None] * [3, 4]
        variance = np.var(np.linalg.norm(sgd, axis=-1), axis=0)  # any (T,) array
        smes = {q: (sgd + np.array([q, 0.0]), variance) for q in (1, 2)}
        along = _sgd_figure.along(ts, sgd, variance, np.zeros((4, 2)), smes)
        runs.append({"lr": lr, "n_steps": 3, "along": along})
    settings = {"paths": n_paths, "batch_size": 2, "mode": "steps", "steps": 3}
    fits = [{"sme_order": 1}, {"sme_order": 2}]
    problem = {"name": "toy"}
    document = {"settings": settings, "runs": runs, "fits": fits, "problem": problem}
    return document, variance


def test_sgd_figure_curves_and_layout():
    document, variance = _sgd_document()
    along = document["runs"][-1]["along"]  # lr 0.05, whose `variance` is returned
    ts = along["ts"]
    np.testing.assert_allclose(along["sgd_to_flow"], 5 * 2 * ts)  # mean of 5·{1,2,3}t
    # The 10% and 90% quantiles of {1, 2, 3} (linear interpolation): 1.2 and 2.8.
    np.testing.assert_allclose(along["sgd_to_flow_low"], 5 * 1.2 * ts)
    np.testing.assert_allclose(along["sgd_to_flow_high"], 5 * 2.8 * ts)
    for q in (1, 2):
        np.testing.assert_allclose(along[f"sgd_to_sme{q}"], q)
        np.testing.assert_allclose(along[f"noise{q}"], np.sqrt(2 * variance / 3))
        np.testing.assert_allclose(
            along[f"sme{q}_to_flow"],
            np.linalg.norm(
                np.arange(1.0, 4)[:, None, None] * ts[None, :, None] * [3, 4] + [q, 0],
                axis=-1,
            ).mean(0),
        )
    _check_sgd_figure(document, n_paths=3)


def _check_sgd_figure(document: dict, n_paths: int) -> None:
    """Two lrs: their lines in both panels, one legend outside both, n in it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from corridors.cli import _sgd_figure

    figure = _sgd_figure.draw(document)
    panels = {axes.get_label(): axes for axes in figure.axes}
    # Per lr: SGD, SME1 and SME2 to the flow; SGD to SME1 and to SME2.
    assert {k: len(a.get_lines()) for k, a in panels.items()} == {
        "to_flow": 6,
        "to_sme": 4,
    }
    FigureCanvasAgg(figure).draw()
    renderer = figure.canvas.get_renderer()
    (legend,) = figure.legends
    box = legend.get_window_extent(renderer)
    for axes in figure.axes:
        assert not box.overlaps(axes.get_window_extent(renderer)), axes.get_label()
    texts = [text.get_text() for text in legend.get_texts()]
    for model in ("SGD", "SME of order 1", "SME of order 2"):
        assert f"{model} (n = {n_paths} paths)" in texts, texts
