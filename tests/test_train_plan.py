"""`corridors.train.plan`: every derived setting of a run, resolved once, without flax."""

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import corridors.train as ct

MACHINE = {"devices": 1, "processes": 1, "backend": "gpu"}


def config(**settings) -> ct.TrainConfig:
    return ct.TrainConfig(**{"dataset": "synthetic", "model": "mlp", **settings})


def test_plan_needs_no_flax_nor_jax_devices():
    code = (
        "import sys, corridors.train as ct; "
        "p = ct.plan(ct.TrainConfig(dataset='synthetic'), n_train=1000, devices=8, "
        "processes=2, backend='tpu'); "
        "print(p.total_steps, p.per_device_batch, p.per_process_batch, "
        "sorted(m for m in ('flax', 'grain', 'orbax') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    # 1000 // 128 = 7 steps per epoch, one epoch by default; 128 over 8 devices.
    assert result.stdout.split() == ["7", "16", "64", "[]"]


def test_steps_from_epochs_round_up_and_steps_override_epochs():
    plan = ct.plan(config(batch_size=100, epochs=2.5), n_train=1050, **MACHINE)
    assert (plan.steps_per_epoch, plan.total_steps) == (10, 25)  # ⌈2.5 · 10⌉
    assert plan.epoch(15) == 1.5
    plan = ct.plan(config(batch_size=100, epochs=0.01), n_train=1050, **MACHINE)
    assert plan.total_steps == 1  # never zero steps
    plan = ct.plan(config(batch_size=100, epochs=3, steps=7), n_train=1050, **MACHINE)
    assert plan.total_steps == 7
    assert plan.eval_every == 10  # one epoch by default


def test_the_cadences_follow_the_backend():
    paper = config(model="resnet18", batch_size=4096)
    # 65 gradients on 256 examples ≤ 5% of training; ~600 for convolutions on CPU.
    assert ct.plan(paper, n_train=50_000, **MACHINE).measure_every == 100
    cpu = ct.plan(paper, n_train=50_000, **{**MACHINE, "backend": "cpu"})
    assert (cpu.measure_every, cpu.sharpness_every) == (1000, 5000)
    # An explicit sharpness cadence that fits the GPU default but not the CPU one.
    uneven = config(model="resnet18", batch_size=4096, sharpness_every=500)
    assert ct.plan(uneven, n_train=50_000, **MACHINE).sharpness_every == 500
    with pytest.raises(ValueError, match=r"`sharpness_every` .* multiple .* on cpu"):
        ct.plan(uneven, n_train=50_000, **{**MACHINE, "backend": "cpu"})


def test_the_events_of_a_run():
    plan = ct.plan(
        config(batch_size=10, steps=23, measure_every=5, sharpness_every=10,
               snapshots=4, log_every=4, eval_every=0, checkpoint_every=8),
        n_train=100, **MACHINE,
    )  # fmt: skip
    steps = range(plan.total_steps + 1)

    def when(name):
        return [s for s in steps if getattr(plan.due(s), name)]

    assert when("measure") == [0, 5, 10, 15, 20, 23]  # and always at the end
    assert when("sharpness") == [0, 10, 20, 23]
    assert when("log") == [4, 8, 12, 16, 20, 23]  # nothing to log before a step
    assert when("checkpoint") == [8, 16, 23]
    assert when("evaluate") == [23]  # eval_every 0: only at the end
    assert plan.snapshot_every == 5  # 23 // 4
    assert when("snapshot") == [0, 5, 10, 15, 20]  # θ* (step 23) is not a snapshot
    assert not plan.due(3) and plan.due(4)


@given(
    total=st.integers(1, 60),
    every=st.integers(0, 12),
    multiple=st.integers(0, 3),
)
def test_measurements_are_evenly_spaced_and_end_the_run(total, every, multiple):
    settings = {"measure_every": every, "sharpness_every": every * multiple}
    plan = ct.plan(config(batch_size=1, steps=total, **settings), n_train=4, **MACHINE)
    measured = [s for s in range(total + 1) if plan.due(s).measure]
    sharp = [s for s in range(total + 1) if plan.due(s).sharpness]
    if every == 0:
        assert measured == sharp == []
        return
    assert measured[-1] == total
    assert len(measured) == total // every + 1 + (total % every != 0)
    assert set(sharp) <= set(measured)
    if multiple:
        assert len(sharp) == total // (every * multiple) + 1 + (
            total % (every * multiple) != 0
        )
    else:
        assert sharp == []


@pytest.mark.parametrize(
    ("settings", "machine", "complaint"),
    [
        ({"batch_size": 12}, {"devices": 8}, "`batch_size` (12) must be divisible"),
        ({"batch_size": 16, "measure_batch": 20}, {"devices": 8}, "`measure_batch`"),
        ({"batch_size": 16, "eval_batch": 6}, {"processes": 4}, "`eval_batch`"),
        ({"batch_size": 200}, {}, "`batch_size` 200 exceeds the 100 training"),
    ],
)
def test_batches_must_split_over_the_machine(settings, machine, complaint):
    with pytest.raises(ValueError) as info:
        ct.plan(config(**settings), n_train=100, **{**MACHINE, **machine})
    assert complaint in str(info.value)


def test_the_measurement_batch_is_checked_only_when_used():
    unused = config(batch_size=16, measure_batch=20, measure_every=0, snapshots=0)
    plan = ct.plan(unused, n_train=100, **{**MACHINE, "devices": 8})
    assert not plan.uses_measure_batch and plan.per_device_batch == 2


def test_workers_default_to_threads_except_for_imagenet():
    assert ct.plan(config(), n_train=1000, **MACHINE).workers == 0
    imagenet = config(dataset="imagenet", data_dir="/data", model="resnet50")
    assert ct.plan(imagenet, n_train=10_000, **MACHINE, cpus=4).workers == 4
    assert ct.plan(imagenet, n_train=10_000, **MACHINE, cpus=64).workers == 8
    explicit = config(dataset="imagenet", data_dir="/data", data_workers=2)
    assert ct.plan(explicit, n_train=10_000, **MACHINE).workers == 2


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"config": {"batch_size": 8}}, "`config` must be a TrainConfig"),
        ({"n_train": 0}, "`n_train` must be an int ≥ 1"),
        ({"devices": 2.0}, "`devices` must be an int ≥ 1"),
    ],
)
def test_bad_arguments_name_plan(arguments, complaint):
    values = {"config": config(), "n_train": 100, **MACHINE, **arguments}
    with pytest.raises(ValueError, match="plan: " + complaint.replace("`", ".")):
        ct.plan(values.pop("config"), **values)


def test_one_default_per_setting():
    defaults = ct.MeasureOptions()
    train = ct.TrainConfig(dataset="synthetic")
    assert train.measure_options() == defaults
