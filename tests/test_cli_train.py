"""`corridors train`: flags and TOML reach the run, its files are what `corridors plot`
reads, and impossible settings are one-line errors."""

import json

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
    assert main(["train", *TINY, "--optimizer", "adam", "--out", str(tmp_path)]) == 2
    assert "optimizer" in assert_one_line_error(capsys.readouterr().err)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("steps = [")
    assert main(["train", "--config", str(bad_toml)]) == 2
    assert "not valid TOML" in assert_one_line_error(capsys.readouterr().err)
