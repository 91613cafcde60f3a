"""One run of `corridors.train.run`: its files, its loop, its events, its end."""

import dataclasses
import json
import pathlib
import time
from typing import TYPE_CHECKING

import jax
import numpy as np

from .._checks import InvalidInputError
from ._checkpoint import Checkpoints
from ._metrics import MetricsWriter, read_metrics, rewrite_metrics
from ._pipeline import TrainBatches, train_iterator
from ._progress import TrainProgress
from ._sharding import global_batch, replicate, to_host
from ._snapshots import (
    load_snapshot,
    rsi_eb,
    save_snapshot,
    snapshot_interval,
    snapshot_steps,
)
from ._steps import init_state

if TYPE_CHECKING:  # pragma: no cover
    from ._loop import Trainer


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


class _Run:
    """One (lr, seed) run: its files, its loop and its events."""

    def __init__(self, trainer: "Trainer", lr, seed, on_step):
        self.t = trainer
        self.config = trainer.config
        self.lr, self.seed, self.on_step = lr, seed, on_step
        self.name = self.config.run_name(lr, seed)
        self.dir = pathlib.Path(self.config.out) / self.name
        self.metrics_path = self.dir / "metrics.jsonl"
        self.total = trainer.total_steps
        self.snapshot_every = snapshot_interval(self.total, self.config.snapshots)
        self.corrupt = 0
        self.last_loss = self.last_accuracy = None
        self.event_seconds = 0.0

    # -- setup ------------------------------------------------------------------------
    def _prepare(self):
        t, config = self.t, self.config
        if t.is_main:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.checkpoints = Checkpoints(
            self.dir / "checkpoints",
            keep=config.keep_checkpoints,
            asynchronous=config.async_checkpoints,
        )
        self.batches = TrainBatches(
            t.dataset.train,
            global_batch=config.batch_size,
            seed=self.seed,
            augment=config.augment,
            process_index=t.process_index,
            process_count=t.process_count,
        )
        self.iterator = train_iterator(self.batches, self.total, workers=t.workers)
        self.state = replicate(
            init_state(t.network, t.optimizer, self.seed, self.lr), t.mesh
        )
        latest = self.checkpoints.latest_step()
        existing = self.metrics_path.exists() and self.metrics_path.stat().st_size > 0
        if (latest is not None or existing) and not config.resume:
            raise InvalidInputError(
                f"run: {self.dir} already holds a run; pass resume=True (`--resume`) "
                "to continue it, or choose another `out`."
            )
        self.start = 0
        self.resumed_from = None
        if latest is not None:
            if latest == self.total and existing:
                done = read_metrics(self.metrics_path, kind="summary")
                if done:
                    return done[-1]
            self.state, iterator_state, extra = self.checkpoints.restore(
                latest, self.state
            )
            self.iterator.set_state(iterator_state)
            self.corrupt = int(extra["corrupt_per_process"][t.process_index])
            self.last_loss = extra.get("last_loss")
            self.last_accuracy = extra.get("last_accuracy")
            self.start = self.resumed_from = latest
        if t.is_main:
            # Keep what was logged up to the restored checkpoint; a fresh start
            # (also a resume that found no checkpoint) begins an empty file.
            keep_until = self.start
            rewrite_metrics(
                self.metrics_path,
                lambda r: (
                    keep_until > 0
                    and r.get("kind") in ("train", "measure", "eval")
                    and r.get("step", 0) <= keep_until
                ),
            )
            (self.dir / "run.json").write_text(
                json.dumps(self._description(), indent=2)
            )
        self.writer = MetricsWriter(self.metrics_path, enabled=t.is_main)
        return None

    def _description(self) -> dict:
        t, config = self.t, self.config
        return {
            "name": self.name,
            "optimizer": config.optimizer,
            "lr": self.lr,
            "seed": self.seed,
            "max_lr": config.max_lr,
            "model": config.model,
            "dataset": config.dataset,
            "data": t.dataset.description,
            "batch_size": config.batch_size,
            "steps": self.total,
            "steps_per_epoch": t.steps_per_epoch,
            "precision": config.precision,
            "weight_decay": config.weight_decay,
            "measure_batch": config.measure_batch,
            "measure_every": t.measure_every,
            "sharpness_every": t.sharpness_every,
            "devices": t.mesh.size,
            "processes": t.process_count,
            "backend": jax.default_backend(),
        }

    # -- the loop -----------------------------------------------------------------------
    def execute(self) -> RunSummary:
        finished = self._prepare()
        if finished is not None:  # resumed a run that had already ended
            self.checkpoints.close()
            self._close_iterator()
            return self._summary(finished)
        t = self.t
        self.progress = TrainProgress(
            self.name,
            self.total,
            start=self.start,
            enabled=t.is_main and not self.config.quiet,
        )
        self.window_start = time.perf_counter()
        self.window_images = 0
        started = time.perf_counter()
        try:
            if self.start == 0:
                self._events(0)
            for step in range(self.start, self.total):
                local = next(self.iterator)
                self.corrupt += int(local.pop("skipped"))
                batch = global_batch(local, t.mesh)
                self.state = t.train_step(self.state, batch["image"], batch["label"])
                self.window_images += self.config.batch_size
                self.progress.advance(step + 1)
                self._events(step + 1)
                if self.on_step is not None:
                    self.on_step(step + 1)
            self.checkpoints.wait()
            path = self._path_geometry()
            record = self._final_record(path, time.perf_counter() - started)
            self.writer.write(record)
            self._report(record)
            return self._summary(record)
        finally:
            self.progress.close()
            self.checkpoints.close()
            self.writer.close()
            self._close_iterator()

    def _close_iterator(self) -> None:
        close = getattr(self.iterator, "close", None)  # grain worker processes
        if close is not None:
            close()

    def _events(self, s: int) -> None:
        config, t = self.config, self.t
        end = s == self.total
        log = s > 0 and (s % config.log_every == 0 or end)
        measure = bool(t.measure_every) and (s % t.measure_every == 0 or end)
        sharp = (
            measure and bool(t.sharpness_every) and (s % t.sharpness_every == 0 or end)
        )
        evaluate = (
            t.dataset.test is not None
            and s > 0
            and ((self.t.eval_every and s % self.t.eval_every == 0) or end)
        )
        snapshot = (
            bool(self.snapshot_every) and s % self.snapshot_every == 0 and not end
        )
        checkpoint = s > 0 and (
            (config.checkpoint_every and s % config.checkpoint_every == 0) or end
        )
        if not (log or measure or evaluate or snapshot or checkpoint):
            return
        began = time.perf_counter()
        first_bad = int(self.state["first_nonfinite"])
        if first_bad >= 0:
            self._stop(first_bad)
        epoch = s / t.steps_per_epoch
        if log:
            self._log(s, epoch, began)
        if measure:
            key = jax.random.fold_in(self.state["rng"], s) if sharp else None
            record = t.measurer.measure(
                self.state["params"],
                self.state["batch_stats"],
                self.state["opt_state"],
                t.measure_images,
                t.measure_labels,
                sharpness_key=key,
            )
            self.writer.write({"kind": "measure", "step": s, "epoch": epoch, **record})
        if evaluate:
            record, skipped = t.evaluate(
                self.state["params"], self.state["batch_stats"]
            )
            self.corrupt += skipped
            self.last_accuracy = record["eval_accuracy"]
            self.writer.write({"kind": "eval", "step": s, "epoch": epoch, **record})
        if snapshot and t.is_main:
            save_snapshot(self.dir / "snapshots", s, to_host(self.state["params"]))
        if checkpoint:
            self._checkpoint(s)
        self.event_seconds += time.perf_counter() - began

    def _log(self, s: int, epoch: float, now: float) -> None:
        count = int(self.state["loss_count"])
        loss = float(self.state["loss_sum"]) / count if count else None
        lr = float(self.state["lr"])
        seconds = now - self.window_start - self.event_seconds
        speed = self.window_images / seconds if seconds > 0 else None
        self.last_loss = loss
        self.writer.write(
            {
                "kind": "train",
                "step": s,
                "epoch": epoch,
                "loss": loss,
                "lr": lr,
                "images_per_s": speed,
                "wall_time": time.time(),
            }
        )
        self.progress.show(loss=loss, lr=lr, speed=speed)
        self.state = {
            **self.state,
            "loss_sum": self.t._zero_f32,
            "loss_count": self.t._zero_i32,
        }
        self.window_start, self.window_images, self.event_seconds = now, 0, 0.0

    def _checkpoint(self, s: int) -> None:
        counts = [self.corrupt]
        if self.t.process_count > 1:
            from jax.experimental import multihost_utils

            counts = multihost_utils.process_allgather(np.int64(self.corrupt)).tolist()
        self.checkpoints.save(
            s,
            self.state,
            self.iterator.get_state(),
            {
                "corrupt_per_process": counts,
                "last_loss": self.last_loss,
                "last_accuracy": self.last_accuracy,
            },
        )

    def _stop(self, first_bad: int) -> None:
        self.checkpoints.wait()
        good = self.checkpoints.latest_step()
        kept = (
            f"the last good checkpoint is step {good} in {self.checkpoints.directory}"
            if good is not None
            else "no checkpoint had been saved yet"
        )
        message = (
            f"corridors.train: the training loss became non-finite (NaN or Inf) at step "
            f"{first_bad} of run {self.name}; training stopped and {kept}. "
            "Lower the learning rate (or cap it with max_lr) and rerun."
        )
        self.writer.write({"kind": "error", "step": first_bad, "message": message})
        self.progress.print(f"[red]{message}")
        raise NonFiniteLossError(message)

    # -- the end ------------------------------------------------------------------------
    def _path_geometry(self) -> dict:
        t = self.t
        steps = snapshot_steps(self.dir / "snapshots", self.total - 1)
        if not steps or t.measure_images is None:
            return {}
        final = self.state["params"]
        host_final = to_host(final)
        rsis, ebs = [], []
        for step in steps:
            params = replicate(
                load_snapshot(
                    self.dir / "snapshots" / f"step_{step:09d}.npz", host_final
                ),
                t.mesh,
            )
            grads = t.measurer.gradient(
                params, self.state["batch_stats"], t.measure_images, t.measure_labels
            )
            rsi, eb = rsi_eb(grads, params, final)
            rsis.append(rsi)
            ebs.append(eb)
            self.writer.write({"kind": "path", "step": step, "rsi": rsi, "eb": eb})
        mu, big_l = min(rsis), max(ebs)
        return {
            "rsi_min": mu,
            "eb_max": big_l,
            "rsi_eb_lr": mu / big_l**2 if mu > 0 and big_l > 0 else None,
        }

    def _final_record(self, path: dict, seconds: float) -> dict:
        corrupt = self.corrupt
        if self.t.process_count > 1:
            from jax.experimental import multihost_utils

            corrupt = int(np.sum(multihost_utils.process_allgather(np.int64(corrupt))))
        return {
            "kind": "summary",
            "step": self.total,
            "final_loss": self.last_loss,
            "eval_accuracy": self.last_accuracy,
            "corrupt_images": corrupt + self.t.measure_skipped,
            "resumed_from": self.resumed_from,
            "wall_time_s": seconds,
            **path,
        }

    def _report(self, record: dict) -> None:
        loss = record["final_loss"]
        accuracy = record["eval_accuracy"]
        self.progress.print(
            f"[bold]{self.name}[/]: {self.total} steps, final training loss "
            f"{'n/a' if loss is None else format(loss, '.4g')}, test accuracy "
            f"{'n/a' if accuracy is None else format(accuracy, '.2%')}, "
            f"{record['corrupt_images']} unreadable image(s) skipped → {self.dir}"
        )

    def _summary(self, record: dict) -> RunSummary:
        return RunSummary(
            run_dir=self.dir,
            optimizer=self.config.optimizer,
            lr=self.lr,
            seed=self.seed,
            steps=self.total,
            final_loss=record.get("final_loss"),
            eval_accuracy=record.get("eval_accuracy"),
            corrupt_images=int(record.get("corrupt_images") or 0),
            resumed_from=record.get("resumed_from"),
        )
