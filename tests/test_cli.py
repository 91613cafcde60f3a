"""The `corridors` command: parser, help, and one-line errors with exit code 2.

`corridors()` runs the command in a subprocess, as a user would; the cheap parser
checks also run in-process through `main(argv)`.
"""

import importlib
import json
import subprocess
import sys

import pytest

import corridors
from corridors.cli import main
from corridors.cli._main import COMMANDS, one_line


def corridors_cli(*arguments, cwd=None, env=None):
    """Run `python -m corridors.cli ARGUMENTS` and return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", "corridors.cli", *map(str, arguments)],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def json_output(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(result_or_stderr, code=2):
    if isinstance(result_or_stderr, subprocess.CompletedProcess):
        assert result_or_stderr.returncode == code, result_or_stderr.stderr
        stderr = result_or_stderr.stderr
    else:
        stderr = result_or_stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "error:" in lines[0]
    return lines[0]


def test_version_flag_prints_the_package_version():
    result = corridors_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"corridors {corridors.__version__}"


def test_unknown_flag_is_a_one_line_error_with_exit_code_2():
    result = corridors_cli("--no-such-flag")
    line = assert_one_line_error(result)
    assert "unrecognized arguments: --no-such-flag" in line


def test_console_script_entry_point_is_main():
    import importlib.metadata

    scripts = importlib.metadata.entry_points(group="console_scripts")
    (script,) = [s for s in scripts if s.name == "corridors"]
    assert script.value == "corridors.cli:main"


def test_no_subcommand_prints_the_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("demo", "drift", "train", "prove", "plot"):
        assert name in out


@pytest.mark.parametrize("command", ["demo", "drift", "train", "prove", "plot"])
def test_every_subcommand_has_help_with_an_example(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"corridors {command}" in out
    for flag in ("--out", "--quiet", "--json"):
        assert flag in out


def test_subcommands_come_from_the_table():
    names = [importlib.import_module(name, "corridors.cli").NAME for name in COMMANDS]
    assert names == ["demo", "drift", "train", "prove", "plot"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["drift", "--lr", "-0.1"], "must be a finite number > 0"),
        (["drift", "--lr", "nan"], "must be a finite number > 0"),
        (["drift", "--lr", "fast"], "is not a number"),
        (["drift", "--landscape", "volcano"], "invalid choice: 'volcano'"),
        (["drift", "--model", "resnet50"], "invalid choice: 'resnet50'"),
        (["drift", "--method", "adam"], "invalid choice: 'adam'"),
        (["drift", "--model", "mlp", "--data-dir", "/no/such/dir"], "no such folder"),
        (["drift", "--beta", "1"], "must lie in [0, 1)"),
        (["drift", "--steps", "0"], "must be an integer ≥ 1"),
        (["drift", "--horizon", "1", "--steps", "3"], "not allowed with"),
        (["drift", "--landscape", "cone", "--model", "mlp"], "not allowed with"),
        (["demo", "--seed", "-1"], "must be an integer ≥ 0"),
        (["demo", "--frobnicate"], "unrecognized arguments"),
        (["plot"], "required: RUN_DIR"),
        (["plot", "/no/such/run"], "no such folder"),
        (["prove", "--proofs-dir", "/no/such/proofs"], "no such folder"),
    ],
)
def test_bad_flags_are_one_line_errors_with_exit_code_2(argv, fragment, capsys):
    assert main(argv) == 2
    line = assert_one_line_error(capsys.readouterr().err)
    assert fragment in line


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["drift", "--dataset", "digits"], "go with --model"),
        (["drift", "--model", "mlp", "--dataset", "folder"], "needs --data-dir"),
        (
            ["drift", "--reference", "modified", "--method", "rk4"],
            "not defined for rk4",
        ),
        (["prove", "no_such_statement"], "unknown statement"),
    ],
)
def test_impossible_combinations_are_one_line_errors(argv, fragment, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    line = assert_one_line_error(capsys.readouterr().err)
    assert fragment in line


def test_missing_data_file_is_a_one_line_error(capsys, tmp_path):
    argv = ["drift", "--model", "mlp", "--dataset", "folder", "--data-dir", tmp_path]
    assert main([*map(str, argv), "--out", str(tmp_path / "out")]) == 2
    assert "no data file" in assert_one_line_error(capsys.readouterr().err)


def test_lr_above_the_horizon_is_a_one_line_error_in_a_subprocess(tmp_path):
    result = corridors_cli("drift", "--lr", "2", "--horizon", "1", "--out", tmp_path)
    assert "above the horizon" in assert_one_line_error(result)


def test_a_diverging_run_is_a_one_line_error_not_a_traceback(tmp_path, capsys):
    # GD at lr 0.1 on Rosenbrock (sharpness ~ 1000) overflows: the library's runtime
    # check (an equinox error with a stack dump) becomes one line.
    argv = ["drift", "--landscape", "rosenbrock", "--lr", "0.1", "--steps", "60"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert "NaN or Inf" in assert_one_line_error(capsys.readouterr().err)


def test_a_failed_status_becomes_a_usage_error_with_its_message():
    # Commands learn of failures from `.result`; a batch names how many failed.
    import jax
    import jax.numpy as jnp

    from corridors.cli._options import UsageError, refuse_failure

    refuse_failure(corridors.RESULTS.successful, "gd")  # nothing to refuse
    with pytest.raises(UsageError, match=r"^gd: The iterates became NaN or Inf"):
        refuse_failure(corridors.RESULTS.diverged, "gd")
    batch = jax.vmap(
        lambda ok: corridors.RESULTS.where(
            ok, corridors.RESULTS.successful, corridors.RESULTS.nonfinite_loss
        )
    )(jnp.array([True, False, False]))
    with pytest.raises(UsageError, match=r"^SGD \(2 of 3\): The loss or its gradient"):
        refuse_failure(batch, "SGD")
    assert one_line(ValueError("first\nsecond")) == "first"


def test_invalid_input_from_the_library_is_a_one_line_error(monkeypatch, capsys):
    from corridors.cli import _drift

    def refuse(options):
        raise corridors.InvalidInputError("measure_drift: `lr` must be > 0, got 0.")

    monkeypatch.setattr(_drift, "run", refuse)
    assert main(["drift"]) == 2
    line = assert_one_line_error(capsys.readouterr().err)
    assert line == "corridors drift: error: measure_drift: `lr` must be > 0, got 0."


def test_a_bug_is_not_hidden_as_a_usage_error(monkeypatch):
    from corridors.cli import _drift

    def crash(options):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(_drift, "run", crash)
    with pytest.raises(ZeroDivisionError):
        main(["drift"])


TRAIN = ["train", "--model", "mlp", "--dataset", "digits", "--steps", "2"]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--width", "1000000000"], "`width` must be at most 65,536"),
        (["--epochs", "inf"], "`epochs` must be finite"),
        (["--seeds", "-1"], "`seeds` must be ≥ 0"),
        (["--steps", str(10**30)], "`steps` must be at most 2,147,483,647"),
        (["--lr", "inf"], "`lr` must be finite"),
        (["--weight-decay", "nan"], "`weight_decay` must be finite"),
        (
            ["--dataset", "synthetic", "--synthetic-shape", "100000", "100000", "3"],
            "more than half of this machine's memory",
        ),
    ],
)
def test_train_flags_out_of_range_are_one_line_errors(
    flags, expected, capsys, tmp_path
):
    # Each is refused by TrainConfig before anything is allocated (on main: an XLA
    # abort, OverflowError tracebacks, a 126 TiB allocation, a NaN run).
    assert main([*TRAIN, *flags, "--out", str(tmp_path)]) == 2
    assert expected in assert_one_line_error(capsys.readouterr().err)


def test_epochs_past_the_step_budget_is_a_one_line_error(capsys, tmp_path):
    argv = ["train", "--model", "mlp", "--dataset", "digits", "--epochs", "1e30"]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    line = assert_one_line_error(capsys.readouterr().err)
    assert "`epochs` 1e+30 makes" in line and "2,147,483,647" in line


def test_a_config_file_that_is_not_utf8_is_named(capsys, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_bytes(b"\xff\xfe")
    assert main(["train", "--config", str(config), "--out", str(tmp_path)]) == 2
    line = assert_one_line_error(capsys.readouterr().err)
    assert str(config) in line and "not UTF-8" in line


def test_malformed_run_files_are_one_line_errors(capsys, tmp_path):
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "metrics.jsonl").write_text("[1, 2]\n")
    assert main(["plot", str(tmp_path / "runs"), "--out", str(tmp_path / "f")]) == 2
    line = assert_one_line_error(capsys.readouterr().err)
    assert f"{run / 'run.json'} is not a run description" in line
    # A description that parses, with a metrics line that is JSON but no record: the
    # line is skipped with a one-line warning, and there is nothing left to plot.
    (run / "run.json").write_text('{"optimizer": "sgd", "lr": 0.1}')
    assert main(["plot", str(tmp_path / "runs"), "--out", str(tmp_path / "f")]) == 2
    warning, error = [line for line in capsys.readouterr().err.splitlines() if line]
    assert (
        warning.startswith("corridors plot: warning: ")
        and ":1: not a record" in warning
    )
    assert error == "corridors plot: error: the training runs hold no metrics to plot."


def test_a_proof_script_that_does_not_load_is_a_one_line_error(capsys, tmp_path):
    (tmp_path / "broken.py").write_text("STATEMENT = 1\ndef (\n")
    assert main(["prove", "--proofs-dir", str(tmp_path)]) == 2
    line = assert_one_line_error(capsys.readouterr().err)
    assert f"{tmp_path / 'broken.py'} cannot be loaded (SyntaxError" in line


def test_drift_names_the_steps_a_tiny_lr_would_need(capsys, tmp_path):
    assert main(["drift", "--lr", "1e-300", "--out", str(tmp_path)]) == 2
    line = assert_one_line_error(capsys.readouterr().err)
    assert "needs 1e+300 steps per run, more than the budget of 1,000,000" in line
