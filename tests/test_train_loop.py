"""corridors.train.run end to end: CIFAR files in both releases, the metrics schema,
measurements against the core, non-finite losses, resume after SIGKILL, 4 devices
against 1, ImageNet folders with a corrupt JPEG, sweeps and plots."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("grain")
pytest.importorskip("orbax.checkpoint")

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

import corridors as cr
import corridors.train as ct
from corridors.train._measure import block_names, make_measure_loss
from corridors.train._pipeline import measurement_batch
from corridors.train._snapshots import load_snapshot

from . import train_data as td

TIMING_KEYS = {"images_per_s", "wall_time", "wall_time_s", "resumed_from"}
MEASURE_KEYS = {
    "step", "epoch", "loss", "lr", "grad_norm", "corridor_score", "drift",
    "relative_drift", "drift_time", "gd_drift", "predicted_drift", "flow_steps",
    "flow_evaluations",
    "sgd_full_batch", "sgd_per_batch", "sgd_per_batch_grad_norm",
}  # fmt: skip


def small(tmp_path, **settings):
    """A fast configuration: MLP on 4×4×1 synthetic images."""
    base = {
        "model": "mlp",
        "width": 8,
        "dataset": "synthetic",
        "synthetic_shape": (4, 4, 1),
        "synthetic_classes": 3,
        "synthetic_size": 64,
        "batch_size": 16,
        "steps": 6,
        "lr": (0.5,),
        "measure_every": 3,
        "sharpness_every": 6,
        "measure_batch": 16,
        "measure_microbatches": 2,
        "log_every": 2,
        "checkpoint_every": 3,
        "snapshots": 6,
        "quiet": True,
        "out": str(tmp_path / "out"),
    }
    return ct.TrainConfig(**{**base, **settings})


@pytest.mark.parametrize("release", ["binary", "python"])
def test_tiny_resnet18_trains_three_steps_on_cifar_files(tmp_path, release):
    data = tmp_path / "cifar"
    if release == "binary":
        td.write_cifar_binary(data, per_file=4)
    else:
        td.write_cifar_python(data, per_file=4)
    config = ct.TrainConfig(
        model="resnet18",
        width=2,
        dataset="cifar10",
        data_dir=str(data),
        batch_size=4,
        steps=3,
        measure_every=0,
        snapshots=0,
        log_every=1,
        eval_batch=8,
        quiet=True,
        out=str(tmp_path / "out"),
    )
    (summary,) = ct.run(config)
    assert summary.steps == 3 and summary.corrupt_images == 0
    records = ct.read_metrics(summary.run_dir)
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) and r["lr"] == pytest.approx(0.1) for r in train)
    (evaluation,) = [r for r in records if r["kind"] == "eval"]
    assert evaluation["eval_examples"] == 4 and 0 <= evaluation["eval_accuracy"] <= 1
    description = json.loads((summary.run_dir / "run.json").read_text())
    assert release in description["data"] and description["steps"] == 3


@pytest.fixture(scope="module")
def measured_run(tmp_path_factory):
    config = small(tmp_path_factory.mktemp("measured"), spectrum_every=6)
    (summary,) = ct.run(config)
    return config, summary


def test_metrics_schema(measured_run):
    _, summary = measured_run
    records = ct.read_metrics(summary.run_dir)
    kinds = [r["kind"] for r in records]
    assert set(kinds) == {"train", "measure", "eval", "path", "summary"}
    assert kinds[-1] == "summary"
    measures = [r for r in records if r["kind"] == "measure"]
    assert [r["step"] for r in measures] == [0, 3, 6]
    for record in measures:
        assert MEASURE_KEYS <= set(record)
        assert all(record[key] is not None for key in MEASURE_KEYS)
    for name in ("sharpness", "hessian_trace", "block_sharpness"):
        assert name in measures[0] and name in measures[2]
        assert name not in measures[1]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6]
    assert {"step", "epoch", "loss", "lr", "images_per_s"} <= set(train[0])
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [4, 6]  # one epoch = 64 // 16 steps
    paths = [r for r in records if r["kind"] == "path"]
    assert [r["step"] for r in paths] == [0, 1, 2, 3, 4, 5]
    final = records[-1]
    assert final["eval_accuracy"] == evals[-1]["eval_accuracy"]
    assert final["rsi_min"] == min(r["rsi"] for r in paths)


def test_measurements_agree_with_the_core_on_the_snapshots(measured_run):
    config, summary = measured_run
    dataset = ct.synthetic(config.synthetic_shape, 3, size=config.synthetic_size)
    network = ct.make_network("mlp", num_classes=3, image_shape=(4, 4, 1), width=8)
    like, stats = network.init(0)
    loss = make_measure_loss(network, dataset.mean, dataset.std, 0.0)
    images, labels, _ = measurement_batch(dataset.train, 16, seed=0)
    args = (images, labels, stats)
    measures = {r["step"]: r for r in ct.read_metrics(summary.run_dir, kind="measure")}
    for step in (0, 3):
        params = load_snapshot(
            summary.run_dir / "snapshots" / f"step_{step:09d}.npz", like
        )
        assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves(params))
        record = measures[step]
        assert record["loss"] == pytest.approx(float(loss(params, *args)), rel=1e-5)
        assert record["corridor_score"] == pytest.approx(
            float(cr.corridor_score(loss, params, args)), rel=1e-4
        )
        assert record["predicted_drift"] == pytest.approx(
            float(cr.predicted_step_drift(loss, params, record["lr"], args)), rel=1e-4
        )
        # The drift against measure_drift in float64 (ReLU kinks: about 1% apart at
        # the default flow_tol=1e-3).
        params64 = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), params)
        reference = cr.measure_drift(
            loss, params64, record["lr"], 1, args, rtol=1e-5, atol=1e-7
        ).distance[-1]
        assert record["drift"] == pytest.approx(float(reference), rel=0.05)
    # The spectrum at step 0 against dense linear algebra (float64): each block's top
    # eigenvalue to the Lanczos tolerance sharpness_tol = 1e-2 (a residual bound, so
    # the eigenvalue is closer), the Hutch++ trace within 3 of its standard errors
    # (plus float32 round-off).
    params = load_snapshot(summary.run_dir / "snapshots" / f"step_{0:09d}.npz", like)
    params64 = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), params)
    flat, unravel = ravel_pytree(params64)
    hessian = np.asarray(jax.hessian(lambda f: loss(unravel(f), *args))(flat))
    record = measures[0]
    assert record["hessian_trace"] == pytest.approx(
        np.trace(hessian), abs=3 * record["hessian_trace_stderr"] + 1e-4
    )
    offsets = np.cumsum([0] + [leaf.size for leaf in jax.tree.leaves(params64)])
    names = block_names(params64)
    assert set(record["block_sharpness"]) == set(names)
    for name, start, stop in zip(names, offsets[:-1], offsets[1:], strict=True):
        top = np.linalg.eigvalsh(hessian[start:stop, start:stop])[-1]
        assert record["block_sharpness"][name] == pytest.approx(top, rel=1e-2)


def test_plots_are_written(measured_run, tmp_path):
    _, summary = measured_run
    written = ct.plot_runs([summary.run_dir.parent], tmp_path / "figures")
    names = {path.name for path in written}
    assert {"loss.png", "lr.png", "accuracy.png", "corridor_score.png", "drift.png",
            "sharpness.png", "rsi_eb.png"} <= names  # fmt: skip
    assert all(path.stat().st_size > 1000 for path in written)


def test_existing_run_needs_resume_and_a_finished_run_is_skipped(tmp_path):
    config = small(tmp_path, steps=2, measure_every=0, snapshots=0)
    (summary,) = ct.run(config)
    with pytest.raises(ValueError, match="already holds a run; pass resume=True"):
        ct.run(config)
    before = (summary.run_dir / "metrics.jsonl").read_bytes()
    (again,) = ct.run(dataclasses.replace(config, resume=True))
    assert again.final_loss == summary.final_loss
    assert (summary.run_dir / "metrics.jsonl").read_bytes() == before


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = small(
        tmp_path,
        lr=(1e10,),
        steps=30,
        checkpoint_every=1,
        log_every=1,
        measure_every=0,
        snapshots=0,
    )
    with pytest.raises(ct.NonFiniteLossError) as info:
        ct.run(config)
    message = str(info.value)
    assert "non-finite" in message and "last good checkpoint is step" in message
    run_dir = tmp_path / "out" / "sgd-lr1e+10-seed0"
    (error,) = ct.read_metrics(run_dir, kind="error")
    bad_step = error["step"]
    checkpoints = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints and checkpoints[-1] == bad_step
    assert f"step {bad_step} in" in message
    state, _ = final_state(run_dir)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state["params"]))
    assert int(state["first_nonfinite"]) == -1


@pytest.mark.parametrize("name", ["clr", "momentum", "chebyshev", "silver", "sps_max"])
def test_every_optimizer_runs_and_logs_the_lr_it_used(tmp_path, name):
    settings = {"clr": {"max_lr": 2.0}, "sps_max": {"max_lr": 2.0}, "momentum": {},
                "chebyshev": {"spectrum": (0.5, 8.0), "cycle": 4},
                "silver": {"smoothness": 4.0, "cycle": 3}}[name]  # fmt: skip
    config = small(
        tmp_path, optimizer=name, steps=4, log_every=1, measure_every=0, snapshots=0,
        lr=(0.05,) if name == "momentum" else (0.1,), **settings,
    )  # fmt: skip
    (summary,) = ct.run(config)
    lrs = [r["lr"] for r in ct.read_metrics(summary.run_dir, kind="train")]
    if name == "chebyshev":
        np.testing.assert_allclose(lrs, cr.lr.chebyshev_steps(0.5, 8.0, 4), rtol=1e-6)
    elif name == "silver":
        expected = np.resize(cr.lr.silver_steps(3, 4.0), 4)
        np.testing.assert_allclose(lrs, expected, rtol=1e-6)
    elif name == "momentum":
        np.testing.assert_allclose(lrs, 0.05, rtol=1e-6)
    else:
        assert all(0 < lr <= 2.0 for lr in lrs)


class _Stop(Exception):
    """Raised from `on_step` to interrupt a run after a checkpoint."""


def _stop_at(step_to_stop: int):
    def hook(step):
        if step == step_to_stop:
            raise _Stop

    return hook


def test_nesterov_momentum_measures_its_own_step_and_resumes_bit_identically(tmp_path):
    beta, lr = 0.5, 0.05
    settings = dict(
        dataset="digits", optimizer="momentum", momentum=beta, nesterov=True,
        lr=(lr,), steps=6, measure_every=3, sharpness_every=0,
        measure_microbatches=0, checkpoint_every=2, snapshots=0, eval_every=0,
        async_checkpoints=False,
    )  # fmt: skip
    (whole,) = ct.run(small(tmp_path, **settings, out=str(tmp_path / "a")))
    interrupted = small(tmp_path, **settings, out=str(tmp_path / "b"))
    with pytest.raises(_Stop):
        ct.run(interrupted, on_step=_stop_at(4))
    (resumed,) = ct.run(dataclasses.replace(interrupted, resume=True))
    assert resumed.run_dir.name == "momentum-lr0.05-seed0"
    state_a, step_a = final_state(whole.run_dir)
    state_b, step_b = final_state(resumed.run_dir)
    assert step_a == step_b == 6
    for a, b in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b), strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit
    assert comparable(whole.run_dir) == comparable(resumed.run_dir)
    (summary,) = ct.read_metrics(resumed.run_dir, kind="summary")
    assert summary["resumed_from"] == 4
    measures = ct.read_metrics(whole.run_dir, kind="measure")
    assert [r["step"] for r in measures] == [0, 3, 6]
    # From rest, Nesterov's first update is −h(1 + β)∇L: a GD step of time h(1 + β)
    # (a straight step along −∇L, so its drift and GD's differ only by that time).
    first = measures[0]
    assert first["drift_time"] == pytest.approx(lr * (1 + beta), rel=1e-5)
    assert first["lr"] == pytest.approx(lr, rel=1e-7)
    assert first["drift"] > first["gd_drift"] > 0
    assert all(r["drift"] is not None and r["gd_drift"] > 0 for r in measures)


def test_sweep_over_lrs_and_seeds_and_mean_std_plot(tmp_path):
    config = small(
        tmp_path, lr=(0.1, 0.3), seeds=(0, 1), steps=2, log_every=1, measure_every=0,
        snapshots=0, checkpoint_every=0,
    )  # fmt: skip
    summaries = ct.run(config)
    assert [s.run_dir.name for s in summaries] == [
        "sgd-lr0.1-seed0", "sgd-lr0.1-seed1", "sgd-lr0.3-seed0", "sgd-lr0.3-seed1",
    ]  # fmt: skip
    assert summaries[0].final_loss != summaries[1].final_loss  # seeds differ
    assert ct.TrainConfig.from_toml(tmp_path / "out" / "config.toml") == config
    written = ct.plot_runs([tmp_path / "out"], tmp_path / "figures")
    assert {p.name for p in written} >= {"loss.png", "lr.png"}


def test_imagenet_folder_with_a_corrupt_jpeg_trains_and_reports_it(tmp_path):
    td.write_jpeg_folder(tmp_path / "imagenet", corrupt={"train": 1, "val": 1})
    config = ct.TrainConfig(
        model="cnn", width=4, dataset="imagenet", data_dir=str(tmp_path / "imagenet"),
        image_size=16, batch_size=7, steps=2, measure_every=0, snapshots=0,
        data_workers=0, quiet=True, out=str(tmp_path / "out"),
    )  # fmt: skip
    (summary,) = ct.run(config)
    # Each of the 2 steps (epochs of 7 images) meets the corrupt training JPEG once;
    # each of the 2 evaluations (one per epoch) meets the corrupt val JPEG once and
    # evaluates the 6 others.
    assert summary.corrupt_images == 2 + 2
    evaluations = ct.read_metrics(summary.run_dir, kind="eval")
    assert [e["eval_examples"] for e in evaluations] == [6, 6]


@pytest.mark.slow
def test_imagenet_pipeline_with_worker_processes(tmp_path):
    td.write_jpeg_folder(tmp_path / "imagenet", corrupt={"train": 1})
    config = ct.TrainConfig(
        model="mlp", width=4, dataset="imagenet", data_dir=str(tmp_path / "imagenet"),
        image_size=8, batch_size=7, steps=3, measure_every=0, snapshots=0,
        data_workers=2, checkpoint_every=2, quiet=True, out=str(tmp_path / "out"),
    )  # fmt: skip
    (summary,) = ct.run(config)
    assert summary.corrupt_images == 3


# -- subprocess tests: SIGKILL + resume, and 4 devices against 1 --------------------------

SCRIPT = textwrap.dedent(
    """
    import json, os, pathlib, signal, sys, time
    import corridors.train as ct
    settings = json.loads(sys.argv[1])
    kill_at = settings.pop("kill_at", None)
    wait_for = settings.pop("wait_for", None)
    config = ct.TrainConfig(**settings)

    def hook(step):
        if step == kill_at:
            done = pathlib.Path(config.out) / config.run_name(*config.runs()[0]) / "checkpoints" / str(wait_for)
            deadline = time.time() + 60
            while not done.exists() and time.time() < deadline:
                time.sleep(0.02)
            os.kill(os.getpid(), signal.SIGKILL)

    (summary,) = ct.run(config, on_step=hook)

    # The final training state, restored here (on this process's devices) and saved
    # flat, for the test process to compare.
    import jax, numpy as np, orbax.checkpoint as ocp
    folder = summary.run_dir / "checkpoints"
    with ocp.CheckpointManager(folder) as manager:
        step = manager.latest_step()
        state = manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore())
        )["state"]
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(state)]
    np.savez(summary.run_dir / "final_state.npz", *leaves)
    print(json.dumps({"run_dir": str(summary.run_dir), "devices": len(jax.devices()),
                      "step": step}))
    """
)


def launch(settings: dict, *, devices: int = 1) -> subprocess.Popen:
    # The environment carries conftest.py's compilation cache: the runs of every test
    # here share their compiled programs.
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "")  # conftest.py's, kept
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}"
    env.pop("JAX_ENABLE_X64", None)
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(settings)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def saved_leaves(run_dir: pathlib.Path) -> list[np.ndarray]:
    with np.load(run_dir / "final_state.npz") as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def final_state(run_dir: pathlib.Path) -> dict:
    import orbax.checkpoint as ocp

    steps = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir())
    with ocp.CheckpointManager(run_dir / "checkpoints") as manager:
        restored = manager.restore(
            steps[-1], args=ocp.args.Composite(state=ocp.args.StandardRestore())
        )
    return restored["state"], steps[-1]


def comparable(run_dir: pathlib.Path) -> list[dict]:
    return [
        {k: v for k, v in record.items() if k not in TIMING_KEYS}
        for record in ct.read_metrics(run_dir)
    ]


SETTINGS = {
    "dataset": "synthetic", "synthetic_shape": [8, 8, 3], "synthetic_size": 96,
    "synthetic_classes": 4, "batch_size": 16, "steps": 9, "lr": [0.05],
    "momentum": 0.9, "optimizer": "momentum", "measure_every": 3,
    "sharpness_every": 0, "measure_batch": 16, "measure_microbatches": 0,
    "log_every": 1, "checkpoint_every": 3, "snapshots": 3, "eval_every": 6,
    "quiet": True,
}  # fmt: skip
# The light model runs in the default suite; the batch-norm model (running averages in
# the checkpoint, statistics reduced across devices) with the slow tests.
MODELS = [
    pytest.param({"model": "mlp", "width": 16}, id="mlp"),
    pytest.param(
        {"model": "vgg11_bn", "width": 4}, id="vgg11_bn", marks=pytest.mark.slow
    ),
]


@pytest.mark.parametrize("model", MODELS)
def test_resume_after_sigkill_is_bit_identical(tmp_path, model):
    settings = {**SETTINGS, **model}
    if model["model"] != "mlp":
        # What batch norm adds to a resume is its running averages in the checkpoint;
        # that measurements and snapshots resume is the MLP case's to test. Measuring
        # the VGG in each of the three runs cost 5 of the test's 6 minutes.
        settings.update(measure_every=0, snapshots=0)
    reference = finish(launch({**settings, "out": str(tmp_path / "a")}))
    killed = launch(
        {**settings, "out": str(tmp_path / "b"), "kill_at": 7, "wait_for": 6}
    )
    killed.communicate(timeout=600)
    assert killed.returncode == -9  # SIGKILL
    run_b = tmp_path / "b" / "momentum-lr0.05-seed0"
    assert (run_b / "checkpoints" / "6").exists()
    assert not (run_b / "checkpoints" / "9").exists()
    resumed = finish(launch({**settings, "out": str(tmp_path / "b"), "resume": True}))
    assert reference["step"] == resumed["step"] == 9
    leaves_a = saved_leaves(pathlib.Path(reference["run_dir"]))
    leaves_b = saved_leaves(run_b)
    assert len(leaves_a) == len(leaves_b) > 10
    for a, b in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit
    assert comparable(pathlib.Path(reference["run_dir"])) == comparable(run_b)
    (summary,) = ct.read_metrics(run_b, kind="summary")
    assert summary["resumed_from"] == 6


@pytest.mark.parametrize("model", MODELS)
def test_four_devices_equal_one_device(tmp_path, model):
    # The MLP also measures the sharpness: its Krylov solve runs on the params replicated
    # over the four devices and must give the single-device value (on the batch-norm
    # model, which tests the cross-device statistics, it would add ~80 s).
    sharpness_every = 4 if model["model"] == "mlp" else 0
    settings = {**SETTINGS, **model, "steps": 4, "measure_every": 2, "snapshots": 0,
                "checkpoint_every": 0, "eval_every": 4,
                "sharpness_every": sharpness_every}  # fmt: skip
    one = launch({**settings, "out": str(tmp_path / "one")}, devices=1)
    four = launch({**settings, "out": str(tmp_path / "four")}, devices=4)
    one, four = finish(one), finish(four)
    assert (one["devices"], four["devices"]) == (1, 4)
    leaves_1 = saved_leaves(pathlib.Path(one["run_dir"]))
    leaves_4 = saved_leaves(pathlib.Path(four["run_dir"]))
    for a, b in zip(leaves_1, leaves_4, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    records_1 = comparable(pathlib.Path(one["run_dir"]))
    records_4 = comparable(pathlib.Path(four["run_dir"]))
    assert [r["kind"] for r in records_1] == [r["kind"] for r in records_4]
    measured = [r for r in records_1 if r["kind"] == "measure"]
    due = bool(sharpness_every)
    assert ["sharpness" in r for r in measured] == [due, False, due]  # steps 0, 2, 4
    for a, b in zip(records_1, records_4, strict=True):
        for key, value in a.items():
            if isinstance(value, float) and key not in (
                "flow_steps",
                "flow_evaluations",
            ):
                # The adaptive drift solve amplifies reassociation differences up to
                # about flow_tol (1e-3) of the step; everything else agrees closely.
                rel = 2e-2 if "drift" in key and "predicted" not in key else 1e-3
                assert b[key] == pytest.approx(value, rel=rel, abs=1e-6), key
