"""`corridors train`: flags and TOML reach the run, its files are what `corridors plot`
reads, and impossible settings are one-line errors."""

import json

import numpy as np
import pytest

import corridors.train as ct
from corridors.cli import main

from .test_cli import assert_one_line_error

TINY = ["--model", "mlp", "--width", "8", "--dataset", "digits", "--batch-size", "32"]


def test_a_sweep_from_toml_and_flags_trains_logs_and_plots(tmp_path, capsys):
    # The flags override two of the file's settings and add the rest.
    config = tmp_path / "sweep.toml"
    config.write_text('[train]\noptimizer = "sgd"\nlr = [0.5]\nsteps = 100\n')
    out = tmp_path / "runs"
    arguments = ["train", *TINY, "--config", str(config), "--steps", "4"]
    arguments += ["--lr", "0.05", "0.2", "--measure-every", "2", "--out", str(out)]
    # No sharpness nor SGD terms (nothing below reads them; each is one more compiled
    # program per run) and a small measurement batch.
    arguments += ["--sharpness-every", "0", "--measure-microbatches", "0"]
    arguments += ["--measure-batch", "32"]
    assert main([*arguments, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [(run["lr"], run["steps"]) for run in runs] == [(0.05, 4), (0.2, 4)]
    for run in runs:
        train = ct.read_metrics(run["run_dir"], kind="train")
        # Training runs in float32, so the logged lr is the float32 nearest run["lr"].
        assert [record["lr"] for record in train] == pytest.approx(
            [run["lr"]] * len(train), rel=1e-7
        )
        assert train[-1]["step"] == 4
        measured = ct.read_metrics(run["run_dir"], kind="measure")
        assert [record["step"] for record in measured][:2] == [0, 2]
    # Same seed and data order: only the step size differs, so the losses must too.
    assert runs[0]["final_loss"] != runs[1]["final_loss"]

    figures = tmp_path / "figures"
    assert main(["plot", str(out), "--out", str(figures), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)["figures"]
    assert {path.rsplit("/", 1)[-1] for path in written} >= {
        "loss.png",
        "lr.png",
        "corridor_score.png",
        "drift.png",
    }


def test_impossible_settings_are_one_line_errors(tmp_path, capsys):
    missing = tmp_path / "missing"
    assert main(["train", "--dataset", "cifar10", "--data-dir", str(missing)]) == 2
    assert "data_dir" in assert_one_line_error(capsys.readouterr().err)
    assert main(["train", *TINY, "--optimizer", "adamax", "--out", str(tmp_path)]) == 2
    assert "optimizer" in assert_one_line_error(capsys.readouterr().err)
    assert main(["train", *TINY, "--optimizer", "sgd", "--b1", "0.9"]) == 2
    assert "`b1` applies to adam" in assert_one_line_error(capsys.readouterr().err)
    assert main(["train", *TINY, "--optimizer", "adam", "--nesterov"]) == 2
    assert "`nesterov` needs momentum" in assert_one_line_error(capsys.readouterr().err)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("steps = [")
    assert main(["train", "--config", str(bad_toml)]) == 2
    assert "not valid TOML" in assert_one_line_error(capsys.readouterr().err)


def final_params(run_dir) -> list:
    import jax
    import orbax.checkpoint as ocp

    folder = run_dir / "checkpoints"
    with ocp.CheckpointManager(folder) as manager:
        state = manager.restore(
            manager.latest_step(),
            args=ocp.args.Composite(state=ocp.args.StandardRestore()),
        )["state"]
    return [np.asarray(leaf) for leaf in jax.tree.leaves(state)]


@pytest.mark.slow
def test_adam_trains_measures_and_resumes_bit_identically(tmp_path, capsys):
    # Stopped after 4 steps and resumed to 6 against 6 steps in one go.
    flags = [*TINY, "--optimizer", "adam", "--lr", "0.01", "--b1", "0.5", "--b2",
             "0.75", "--measure-every", "2", "--sharpness-every", "0",
             "--measure-microbatches", "0", "--measure-batch", "32",
             "--checkpoint-every", "2",
             "--eval-every", "2", "--snapshots", "0", "--log-every", "1",
             "--no-async-checkpoints", "--quiet", "--json"]  # fmt: skip
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main(["train", *flags, "--steps", "6", "--out", str(whole)]) == 0
    (run,) = json.loads(capsys.readouterr().out)["runs"]
    assert run["run_dir"].endswith("adam-lr0.01-seed0")
    assert main(["train", *flags, "--steps", "4", "--out", str(parts)]) == 0
    capsys.readouterr()
    assert main(["train", *flags, "--steps", "6", "--out", str(parts), "--resume"]) == 0
    (resumed,) = json.loads(capsys.readouterr().out)["runs"]
    assert resumed["steps"] == 6
    a_dir, b_dir = (folder / "adam-lr0.01-seed0" for folder in (whole, parts))
    for a, b in zip(final_params(a_dir), final_params(b_dir), strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit

    def logged(run_dir):
        timing = {"images_per_s", "wall_time", "wall_time_s", "resumed_from"}
        return [
            {k: v for k, v in r.items() if k not in timing}
            for r in ct.read_metrics(run_dir)
            if r["kind"] in ("train", "measure", "eval")
        ]

    assert logged(a_dir) == logged(b_dir)
    measures = ct.read_metrics(a_dir, kind="measure")
    assert [r["step"] for r in measures] == [0, 2, 4, 6]
    for record in measures:
        assert record["lr"] == pytest.approx(0.01, rel=1e-7)
        # Adam's step (≈ −h·sign(∇L) at first) leaves the flow far more than GD's.
        assert record["drift"] > 10 * record["gd_drift"] > 0
