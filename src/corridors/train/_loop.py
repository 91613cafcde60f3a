"""`run(config)`: train with corridor measurements, checkpoints and resume.

One `Trainer` per config holds what its runs share (data, model, compiled steps and
the `Plan`); `Trainer.train` is the loop of one (lr, seed) run: restore or start,
then for each step one update and whatever the plan says is due, then the post-hoc
path geometry and the summary.
"""

import dataclasses
import json
import os
import pathlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import InvalidInputError
from ._checkpoint import Checkpoints
from ._config import TrainConfig
from ._datasets import Dataset, digits, synthetic
from ._measure import Measurer, make_measure_loss
from ._metrics import MetricsWriter, read_metrics, rewrite_metrics
from ._network import make_network
from ._optim import make_optimizer
from ._pipeline import (
    EvalBatches,
    TrainBatches,
    eval_iterator,
    measurement_batch,
    train_iterator,
)
from ._plan import Plan, plan
from ._progress_bar import TrainProgress
from ._sharding import (
    batch_sharding,
    data_mesh,
    global_batch,
    initialize_distributed,
    replicate,
    replicated,
    to_host,
)
from ._snapshots import load_snapshot, rsi_eb, save_snapshot, snapshot_steps
from ._steps import TrainState, make_eval_step, make_train_step

__all__ = ["NonFiniteLossError", "RunSummary", "Trainer", "load_dataset", "run"]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or Inf; the run stopped, its last good
    checkpoint kept."""


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """What one run of `run` produced.

    **Fields:** `run_dir`, `optimizer`, `lr` (None for optimizers that choose their
    own steps), `seed`, `steps`, `final_loss` (mean training loss of the last logging
    window), `eval_accuracy` (last evaluation, None without a test split),
    `corrupt_images` (unreadable images skipped), `resumed_from` (checkpoint step or
    None).
    """

    run_dir: pathlib.Path
    optimizer: str
    lr: float | None
    seed: int
    steps: int
    final_loss: float | None
    eval_accuracy: float | None
    corrupt_images: int
    resumed_from: int | None


def load_dataset(config: TrainConfig) -> Dataset:
    """The data set a config names."""
    if config.dataset == "cifar10":
        from ._cifar import cifar10

        return cifar10(config.data_dir)
    if config.dataset == "imagenet":
        from ._imagenet import imagenet

        return imagenet(config.data_dir, image_size=config.image_size)
    if config.dataset == "digits":
        return digits()
    return synthetic(
        config.synthetic_shape, config.synthetic_classes, size=config.synthetic_size
    )


def run(
    config: TrainConfig, *, on_step: Callable[[int], None] | None = None
) -> list[RunSummary]:
    """Train every (learning rate, seed) run of `config`, with measurements.

    Each run writes `metrics.jsonl`, `run.json`, `checkpoints/` and `snapshots/`
    into `config.out/<run name>/` (see `TrainConfig.run_name`); `config.out` gets the
    resolved `config.toml`. One compiled step serves all runs.

    **Arguments:**

    - `config`: a `TrainConfig`.
    - `on_step`: called with the step number after every update and its logging,
      measurement and checkpoint work (a hook for tests and custom monitoring).

    **Returns:**

    One `RunSummary` per run.

    **Raises:**

    `NonFiniteLossError` when a training loss is not finite (the last good
    checkpoint is kept); `InvalidInputError` for bad settings or an `out` folder
    that holds a run when `resume` is False; `DataFormatError` for bad data files.
    """
    if not isinstance(config, TrainConfig):
        raise InvalidInputError(
            f"run: `config` must be a TrainConfig, got {type(config).__name__}."
        )
    initialize_distributed(config.distributed)
    trainer = Trainer(config)
    out = pathlib.Path(config.out)
    if trainer.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.toml").write_text(config.to_toml())
    return [trainer.train(lr, seed, on_step=on_step) for lr, seed in config.runs()]


@dataclasses.dataclass
class _Tally:
    """What a run accumulates besides its state (checkpointed as JSON)."""

    corrupt: int = 0
    last_loss: float | None = None
    last_accuracy: float | None = None
    resumed_from: int | None = None


class Trainer:
    """Everything shared by the runs of one config: data, model, compiled steps and
    the `Plan` (`self.plan`), which every cadence and batch size is read from."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.dataset = load_dataset(config)
        self.mesh = data_mesh()
        self.process_index = jax.process_index()
        self.is_main = self.process_index == 0
        self.plan: Plan = plan(
            config,
            n_train=len(self.dataset.train),
            devices=self.mesh.size,
            processes=jax.process_count(),
            backend=jax.default_backend(),
            cpus=os.cpu_count(),
        )
        self.network = make_network(
            config.model,
            num_classes=self.dataset.num_classes,
            image_shape=self.dataset.image_shape,
            width=config.width,
            variant=config.variant,
            dtype=jnp.bfloat16 if config.precision == "bfloat16" else None,
        )
        self.optimizer = make_optimizer(
            config.optimizer,
            momentum=config.momentum,
            max_lr=config.max_lr,
            f_min=config.f_min,
            sps_c=config.sps_c,
            spectrum=config.spectrum,
            cycle=config.cycle,
            smoothness=config.smoothness,
        )
        mean, std = self.dataset.mean, self.dataset.std
        replicated_sharding = replicated(self.mesh)
        data_sharding = batch_sharding(self.mesh)
        self.train_step = jax.jit(
            make_train_step(
                self.network,
                self.optimizer,
                mean=mean,
                std=std,
                weight_decay=config.weight_decay,
            ),
            in_shardings=(replicated_sharding, data_sharding, data_sharding),
            out_shardings=replicated_sharding,
        )
        self.eval_step = jax.jit(make_eval_step(self.network, mean=mean, std=std))
        self.measurer = Measurer(
            make_measure_loss(self.network, mean, std, config.weight_decay),
            self.optimizer,
            config.measure_options(),
        )
        self.measure_images = self.measure_labels = None
        self.measure_skipped = 0
        if self.plan.uses_measure_batch:
            images, labels, self.measure_skipped = measurement_batch(
                self.dataset.train,
                config.measure_batch,
                seed=config.measure_seed,
                process_index=self.process_index,
                process_count=self.plan.processes,
            )
            batch = global_batch({"image": images, "label": labels}, self.mesh)
            self.measure_images, self.measure_labels = batch["image"], batch["label"]
        self._zero_f32 = jax.device_put(np.float32(0), replicated_sharding)
        self._zero_i32 = jax.device_put(np.int32(0), replicated_sharding)

    def initial_state(self, seed: int, lr: float | None) -> TrainState:
        """The replicated training state at step 0."""
        return replicate(
            TrainState.create(self.network, self.optimizer, seed, lr), self.mesh
        )

    # -- one run ------------------------------------------------------------------------
    def train(self, lr, seed, *, on_step=None) -> RunSummary:
        """Train the (lr, seed) run of the config, resuming it if asked."""
        config, plan = self.config, self.plan
        name = config.run_name(lr, seed)
        run_dir = pathlib.Path(config.out) / name
        metrics_path = run_dir / "metrics.jsonl"
        if self.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        checkpoints = Checkpoints(
            run_dir / "checkpoints",
            keep=config.keep_checkpoints,
            asynchronous=config.async_checkpoints,
        )
        batches = TrainBatches(
            self.dataset.train,
            global_batch=plan.batch_size,
            seed=seed,
            augment=config.augment,
            process_index=self.process_index,
            process_count=plan.processes,
        )
        iterator = train_iterator(batches, plan.total_steps, workers=plan.workers)
        writer = progress = None
        try:
            state = self.initial_state(seed, lr)
            latest = checkpoints.latest_step()
            existing = metrics_path.exists() and metrics_path.stat().st_size > 0
            if (latest is not None or existing) and not config.resume:
                raise InvalidInputError(
                    f"run: {run_dir} already holds a run; pass resume=True "
                    "(`--resume`) to continue it, or choose another `out`."
                )
            tally = _Tally()
            if latest is not None:
                done = read_metrics(metrics_path, kind="summary") if existing else []
                if latest == plan.total_steps and done:  # it had already ended
                    return self._summary(run_dir, lr, seed, done[-1])
                state, iterator_state, extra = checkpoints.restore(latest, state)
                iterator.set_state(iterator_state)
                tally = _Tally(
                    corrupt=int(extra["corrupt_per_process"][self.process_index]),
                    last_loss=extra.get("last_loss"),
                    last_accuracy=extra.get("last_accuracy"),
                    resumed_from=latest,
                )
            start = tally.resumed_from or 0
            if self.is_main:
                # Keep what was logged up to the restored checkpoint; a fresh start
                # (also a resume that found no checkpoint) begins an empty file.
                rewrite_metrics(
                    metrics_path,
                    lambda r: (
                        start > 0
                        and r.get("kind") in ("train", "measure", "eval")
                        and r.get("step", 0) <= start
                    ),
                )
                (run_dir / "run.json").write_text(
                    json.dumps(self._description(name, lr, seed), indent=2)
                )
            writer = MetricsWriter(metrics_path, enabled=self.is_main)
            progress = TrainProgress(
                name,
                plan.total_steps,
                start=start,
                enabled=self.is_main and not config.quiet,
            )
            window = _Window()
            began = time.perf_counter()

            def after(step: int, state: TrainState) -> TrainState:
                due = plan.due(step)
                if self.dataset.test is None:
                    due = due._replace(evaluate=False)
                if not due:
                    return state
                started = time.perf_counter()
                first_bad = int(state.first_nonfinite)
                if first_bad >= 0:
                    self._stop(first_bad, name, checkpoints, writer, progress)
                epoch = plan.epoch(step)
                if due.log:
                    tally.last_loss = state.window_loss()
                    record = window.record(state, started)
                    writer.write({"kind": "train", "step": step, "epoch": epoch,
                                  "loss": tally.last_loss, **record})  # fmt: skip
                    progress.show(loss=tally.last_loss, lr=record["lr"],
                                  speed=record["images_per_s"])  # fmt: skip
                    state = state.replace(
                        loss_sum=self._zero_f32, loss_count=self._zero_i32
                    )
                if due.measure:
                    key = jax.random.fold_in(state.rng, step) if due.sharpness else None
                    record = self.measurer.measure(
                        state.params,
                        state.batch_stats,
                        state.opt_state,
                        self.measure_images,
                        self.measure_labels,
                        sharpness_key=key,
                    )
                    writer.write(
                        {"kind": "measure", "step": step, "epoch": epoch, **record}
                    )
                if due.evaluate:
                    record, skipped = self.evaluate(state.params, state.batch_stats)
                    tally.corrupt += skipped
                    tally.last_accuracy = record["eval_accuracy"]
                    writer.write(
                        {"kind": "eval", "step": step, "epoch": epoch, **record}
                    )
                if due.snapshot and self.is_main:
                    save_snapshot(run_dir / "snapshots", step, to_host(state.params))
                if due.checkpoint:
                    extra = {
                        "corrupt_per_process": self._gather(tally.corrupt),
                        "last_loss": tally.last_loss,
                        "last_accuracy": tally.last_accuracy,
                    }
                    checkpoints.save(step, state, iterator.get_state(), extra)
                window.exclude(time.perf_counter() - started)
                return state

            if start == 0:
                state = after(0, state)
            for step in range(start + 1, plan.total_steps + 1):
                local = next(iterator)
                tally.corrupt += int(local.pop("skipped"))
                batch = global_batch(local, self.mesh)
                state = self.train_step(state, batch["image"], batch["label"])
                window.images += plan.batch_size
                progress.advance(step)
                state = after(step, state)
                if on_step is not None:
                    on_step(step)
            checkpoints.wait()
            path = self._path_geometry(run_dir, state, writer)
            record = {
                "kind": "summary",
                "step": plan.total_steps,
                "final_loss": tally.last_loss,
                "eval_accuracy": tally.last_accuracy,
                "corrupt_images": sum(self._gather(tally.corrupt))
                + self.measure_skipped,
                "resumed_from": tally.resumed_from,
                "wall_time_s": time.perf_counter() - began,
                **path,
            }
            writer.write(record)
            loss, accuracy = record["final_loss"], record["eval_accuracy"]
            progress.print(
                f"[bold]{name}[/]: {plan.total_steps} steps, final training loss "
                f"{'n/a' if loss is None else format(loss, '.4g')}, test accuracy "
                f"{'n/a' if accuracy is None else format(accuracy, '.2%')}, "
                f"{record['corrupt_images']} unreadable image(s) skipped → {run_dir}"
            )
            return self._summary(run_dir, lr, seed, record)
        finally:
            if progress is not None:
                progress.close()
            checkpoints.close()
            if writer is not None:
                writer.close()
            close = getattr(iterator, "close", None)  # grain worker processes
            if close is not None:
                close()

    # -- pieces of a run ------------------------------------------------------------------
    def evaluate(self, params, batch_stats) -> tuple[dict, int]:
        """Accuracy and loss on the test split; (record, unreadable images)."""
        batches = EvalBatches(
            self.dataset.test,
            global_batch=self.plan.eval_batch,
            process_index=self.process_index,
            process_count=self.plan.processes,
        )
        correct = loss = count = 0.0
        skipped = 0
        iterator = eval_iterator(batches, workers=self.plan.workers)
        try:
            for local in iterator:
                skipped += int(local.pop("skipped"))
                batch = global_batch(local, self.mesh)
                hits, losses, n = self.eval_step(
                    params, batch_stats, batch["image"], batch["label"], batch["weight"]
                )
                correct += float(hits)
                loss += float(losses)
                count += float(n)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        record = {
            "eval_accuracy": correct / count if count else None,
            "eval_loss": loss / count if count else None,
            "eval_examples": int(count),
        }
        return record, skipped

    def _gather(self, count: int) -> list[int]:
        """`count` of every process, in process order."""
        if self.plan.processes == 1:
            return [count]
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(np.int64(count)).tolist()

    def _stop(self, first_bad: int, name, checkpoints, writer, progress) -> None:
        checkpoints.wait()
        good = checkpoints.latest_step()
        kept = (
            f"the last good checkpoint is step {good} in {checkpoints.directory}"
            if good is not None
            else "no checkpoint had been saved yet"
        )
        message = (
            f"corridors.train: the training loss became non-finite (NaN or Inf) at step "
            f"{first_bad} of run {name}; training stopped and {kept}. "
            "Lower the learning rate (or cap it with max_lr) and rerun."
        )
        writer.write({"kind": "error", "step": first_bad, "message": message})
        progress.print(f"[red]{message}")
        raise NonFiniteLossError(message)

    def _path_geometry(self, run_dir, state: TrainState, writer) -> dict:
        """RSI/EB of each snapshot against the final parameters (and their bounds)."""
        folder = run_dir / "snapshots"
        steps = snapshot_steps(folder, self.plan.total_steps - 1)
        if not steps or self.measure_images is None:
            return {}
        host_final = to_host(state.params)
        rsis, ebs = [], []
        for step in steps:
            snapshot = load_snapshot(folder / f"step_{step:09d}.npz", host_final)
            params = replicate(snapshot, self.mesh)
            grads = self.measurer.gradient(
                params, state.batch_stats, self.measure_images, self.measure_labels
            )
            rsi, eb = rsi_eb(grads, params, state.params)
            rsis.append(rsi)
            ebs.append(eb)
            writer.write({"kind": "path", "step": step, "rsi": rsi, "eb": eb})
        mu, big_l = min(rsis), max(ebs)
        return {
            "rsi_min": mu,
            "eb_max": big_l,
            "rsi_eb_lr": mu / big_l**2 if mu > 0 and big_l > 0 else None,
        }

    def _description(self, name: str, lr, seed: int) -> dict:
        config, plan = self.config, self.plan
        return {
            "name": name,
            "optimizer": config.optimizer,
            "lr": lr,
            "seed": seed,
            "max_lr": config.max_lr,
            "model": config.model,
            "dataset": config.dataset,
            "data": self.dataset.description,
            "batch_size": plan.batch_size,
            "steps": plan.total_steps,
            "steps_per_epoch": plan.steps_per_epoch,
            "precision": config.precision,
            "weight_decay": config.weight_decay,
            "measure_batch": plan.measure_batch,
            "measure_every": plan.measure_every,
            "sharpness_every": plan.sharpness_every,
            "devices": plan.devices,
            "processes": plan.processes,
            "backend": plan.backend,
        }

    def _summary(self, run_dir, lr, seed, record: dict) -> RunSummary:
        return RunSummary(
            run_dir=run_dir,
            optimizer=self.config.optimizer,
            lr=lr,
            seed=seed,
            steps=self.plan.total_steps,
            final_loss=record.get("final_loss"),
            eval_accuracy=record.get("eval_accuracy"),
            corrupt_images=int(record.get("corrupt_images") or 0),
            resumed_from=record.get("resumed_from"),
        )


class _Window:
    """Throughput of a logging window: images trained over the time spent training
    (the time of measurements, evaluations and checkpoints excluded)."""

    def __init__(self):
        self.start, self.images, self.excluded = time.perf_counter(), 0, 0.0

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    def record(self, state: TrainState, now: float) -> dict:
        seconds = now - self.start - self.excluded
        speed = self.images / seconds if seconds > 0 else None
        self.start, self.images, self.excluded = now, 0, 0.0
        return {
            "lr": float(state.lr),
            "images_per_s": speed,
            "wall_time": time.time(),
        }
