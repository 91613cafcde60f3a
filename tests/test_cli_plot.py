"""`corridors plot` on training runs (run.json + metrics.jsonl) and on folders it
cannot read."""

import json

from corridors.cli import main

from .test_cli import assert_one_line_error


def write_run(folder, *, optimizer, lr, torn=False):
    folder.mkdir(parents=True)
    description = {"optimizer": optimizer, "lr": lr if optimizer == "sgd" else None}
    (folder / "run.json").write_text(json.dumps(description))
    lines = []
    for step in range(0, 100, 10):
        lines.append(
            {"kind": "train", "step": step, "loss": 2.0 / (1 + step), "lr": lr}
        )
        lines.append(
            {"kind": "measure", "step": step, "corridor_score": 1 / (1 + step)}
        )
    lines.append({"kind": "eval", "step": 100, "eval_accuracy": 0.9})
    text = "".join(json.dumps(line) + "\n" for line in lines)
    if torn:
        text += '{"kind": "train", "st'  # a write cut short: ignored
    (folder / "metrics.jsonl").write_text(text)


def test_training_runs_are_overlaid(tmp_path, capsys):
    write_run(tmp_path / "runs" / "clr-seed0", optimizer="clr", lr=1.5, torn=True)
    write_run(tmp_path / "runs" / "sgd-lr0.1-seed0", optimizer="sgd", lr=0.1)
    out = tmp_path / "figures"
    assert main(["plot", str(tmp_path / "runs"), "--out", str(out), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)["figures"]
    names = sorted(path.split("/")[-1] for path in figures)
    # Only the figures whose data the runs hold (no drift, sharpness or RSI/EB here).
    assert names == ["accuracy.png", "corridor_score.png", "loss.png", "lr.png"]
    assert all((out / name).stat().st_size > 0 for name in names)


def test_a_folder_with_nothing_to_plot_is_a_one_line_error(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "nothing to plot" in assert_one_line_error(capsys.readouterr().err)


def test_a_broken_report_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "demo.json").write_text("{not json")
    assert main(["plot", str(tmp_path)]) == 2
    assert "not valid JSON" in assert_one_line_error(capsys.readouterr().err)
    (tmp_path / "demo.json").write_text('{"kind": "corridors.demo"}')
    assert main(["plot", str(tmp_path)]) == 2
    assert "incomplete" in assert_one_line_error(capsys.readouterr().err)
    (tmp_path / "demo.json").write_text('{"kind": "corridors.drift"}')
    assert main(["plot", str(tmp_path)]) == 2
    assert "not a corridors.demo" in assert_one_line_error(capsys.readouterr().err)


def test_plot_options_format_metrics_layout_and_scale(tmp_path, capsys):
    from .run_fixtures import write_sweep

    root = write_sweep(tmp_path / "runs", lrs=(0.3,), seeds=(0,))
    out = tmp_path / "figures"
    argv = ["plot", str(root), "--out", str(out), "--json", "--format", "svg",
            "--layout", "panels", "--metrics", "loss", "drift", "--linear"]  # fmt: skip
    assert main(argv) == 0
    figures = json.loads(capsys.readouterr().out)["figures"]
    assert [path.split("/")[-1] for path in figures] == ["training.svg"]
    text = (out / "training.svg").read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert main(["plot", str(root), "--logy", "--linear"]) == 2  # exclusive
    capsys.readouterr()
