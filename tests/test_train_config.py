"""corridors.train configuration: defaults, validation, TOML and command-line flags,
and the metrics file format."""

import argparse
import os
import subprocess
import sys

import pytest

import corridors.train as ct


def test_import_is_cheap_and_lazy():
    code = (
        "import sys, corridors, corridors.train as ct; "
        "ct.TrainConfig(dataset='synthetic'); "
        "print(sorted(m for m in ('flax', 'grain', 'orbax', 'PIL', 'sklearn') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_defaults_and_runs():
    config = ct.TrainConfig(dataset="synthetic", lr=(0.1, 0.2), seeds=(0, 1))
    assert config.runs() == [(0.1, 0), (0.1, 1), (0.2, 0), (0.2, 1)]
    assert config.run_name(0.1, 1) == "sgd-lr0.1-seed1"
    clr = ct.TrainConfig(dataset="synthetic", optimizer="clr", seeds=(0, 1, 2))
    assert clr.runs() == [(None, 0), (None, 1), (None, 2)]
    assert clr.run_name(None, 2) == "clr-seed2"


def test_automatic_cadence_keeps_measurements_cheap():
    # 65 gradient evaluations on 256 examples per measurement, ≤ 5% of training.
    paper = ct.TrainConfig(dataset="synthetic", batch_size=4096)
    assert paper.cadence() == (100, 500)
    small = ct.TrainConfig(dataset="synthetic", batch_size=128)
    measure_every, sharpness_every = small.cadence()
    assert 65 * 256 / 128 / measure_every <= 0.05
    assert sharpness_every == 5 * measure_every
    # On XLA:CPU a convolutional model's measurement costs ~600 gradients, not 65.
    assert paper.cadence("cpu") == (1000, 5000)
    assert ct.TrainConfig(dataset="synthetic", model="mlp", batch_size=4096).cadence(
        "cpu"
    ) == (100, 500)
    explicit = ct.TrainConfig(dataset="synthetic", measure_every=10, sharpness_every=0)
    assert explicit.cadence() == (10, 0)


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"model": "resnet19"}, "`model` must be one of"),
        ({"batch_size": 0}, "`batch_size` must be ≥ 1"),
        ({"lr": (0.1, -1.0)}, "`lr` must hold learning rates > 0"),
        ({"optimizer": "clr", "lr": (0.1, 0.2)}, "sweeps apply to sgd, momentum, adam"),
        ({"optimizer": "sgd", "b2": 0.9}, "`b2` applies to adam, adamw, lion"),
        ({"optimizer": "adam", "b1": 1.0}, "`b1` must lie in [0, 1)"),
        ({"optimizer": "lion", "eps": 1e-8}, "`eps` applies to adam, adamw"),
        ({"optimizer": "adam", "decoupled_weight_decay": 0.1}, "applies to adamw"),
        ({"optimizer": "sgd", "nesterov": True}, "`nesterov` needs momentum"),
        ({"optimizer": "sps_max"}, "`max_lr` is required by sps_max"),
        ({"optimizer": "chebyshev", "cycle": 4}, "`spectrum` must be m M"),
        ({"optimizer": "silver", "smoothness": 2.0}, "`cycle`"),
        ({"measure_every": 10, "sharpness_every": 15}, "multiple of measure_every"),
        (
            {"measure_batch": 10, "measure_microbatches": 4},
            "divisible by measure_micro",
        ),
        ({"momentum": 1.0}, "`momentum` must lie in [0, 1)"),
        ({"precision": "float16"}, "`precision` must be one of"),
        ({"batch_size": "big"}, "`batch_size` must be int"),
        ({"synthetic_shape": (4, 4)}, "`synthetic_shape`"),
    ],
)
def test_bad_settings_name_the_setting(settings, complaint):
    with pytest.raises(ValueError) as info:
        ct.TrainConfig(**{"dataset": "synthetic", **settings})
    assert complaint in str(info.value)


def test_cifar_needs_a_data_dir():
    with pytest.raises(ValueError, match="`data_dir` is required"):
        ct.TrainConfig(dataset="cifar10")


def test_toml_round_trip_and_train_table(tmp_path):
    config = ct.TrainConfig(
        dataset="synthetic", lr=(0.05, 0.1), seeds=(1, 2), max_lr=10.0, quiet=True
    )
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert ct.TrainConfig.from_toml(path) == config
    adamw = ct.TrainConfig(
        dataset="synthetic", optimizer="adamw", lr=(1e-3, 3e-3), b1=0.8, b2=0.99,
        eps=1e-6, decoupled_weight_decay=0.01,
    )  # fmt: skip
    path.write_text(adamw.to_toml())
    assert ct.TrainConfig.from_toml(path) == adamw
    assert [adamw.run_name(*run) for run in adamw.runs()] == [
        "adamw-lr0.001-seed0", "adamw-lr0.003-seed0",
    ]  # fmt: skip
    table = tmp_path / "table.toml"
    table.write_text('[train]\ndataset = "synthetic"\nlr = 0.3\nbatch-size = 64\n')
    loaded = ct.TrainConfig.from_toml(table)
    assert loaded.lr == (0.3,) and loaded.batch_size == 64
    bad = tmp_path / "bad.toml"
    bad.write_text('dataset = "synthetic"\nbatchsize = 3\n')
    with pytest.raises(ValueError, match=r"unknown setting 'batchsize' in .*bad\.toml"):
        ct.TrainConfig.from_toml(bad)
    with pytest.raises(ValueError, match="not valid TOML"):
        (tmp_path / "broken.toml").write_text("lr = [")
        ct.TrainConfig.from_toml(tmp_path / "broken.toml")


def test_flags_override_the_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('dataset = "synthetic"\nbatch_size = 64\nseeds = [0, 1]\n')
    config = ct.TrainConfig.from_args(
        [
            "--config",
            str(path),
            "--lr",
            "0.1",
            "0.2",
            "--no-augment",
            "--quiet",
            "--max-lr",
            "10",
            "--synthetic-shape",
            "8",
            "8",
            "1",
        ]
    )
    assert config.batch_size == 64 and config.seeds == (0, 1)
    assert config.lr == (0.1, 0.2) and config.augment is False and config.quiet
    assert config.max_lr == 10.0 and config.synthetic_shape == (8, 8, 1)
    parser = ct.add_train_arguments(argparse.ArgumentParser())
    assert "--measure-every" in parser.format_help()
    with pytest.raises(SystemExit):
        ct.TrainConfig.from_args(["--batch-size", "x"])


def test_metrics_lines_are_atomic_and_torn_lines_ignored(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with ct.MetricsWriter(path) as writer:
        writer.write({"kind": "train", "step": 1, "loss": 0.5})
        writer.write({"kind": "train", "step": 2, "loss": float("nan")})
    data = path.read_bytes()
    assert data.count(b"\n") == 2 and data.endswith(b"\n")
    # A crash in the middle of a write leaves a torn last line: ignored.
    with open(path, "ab") as file:
        file.write(b'{"kind": "measure", "step": 3, "dri')
    records = ct.read_metrics(path)
    assert records == [
        {"kind": "train", "step": 1, "loss": 0.5},
        {"kind": "train", "step": 2, "loss": None},
    ]
    assert ct.read_metrics(tmp_path, kind="measure") == []


def test_each_line_is_one_write_call(tmp_path, monkeypatch):
    calls = []
    real_write = os.write

    def spy(fd, data):
        calls.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    writer = ct.MetricsWriter(tmp_path / "m.jsonl")
    writer.write({"step": 1, "text": "x" * 10_000})
    writer.close()
    assert len(calls) == 1 and calls[0].endswith(b"\n")
