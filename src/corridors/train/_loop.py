"""`run(config)`: train with corridor measurements, checkpoints and resume."""

import math
import os
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import InvalidInputError
from ._config import TrainConfig
from ._data import Dataset, digits, synthetic
from ._measure import MeasureOptions, Measurer, make_measure_loss
from ._network import make_network
from ._optim import make_optimizer
from ._pipeline import EvalBatches, eval_iterator, measurement_batch
from ._run import NonFiniteLossError, RunSummary, _Run
from ._sharding import (
    batch_sharding,
    data_mesh,
    global_batch,
    initialize_distributed,
    replicated,
)
from ._steps import make_eval_step, make_train_step

__all__ = ["NonFiniteLossError", "RunSummary", "Trainer", "load_dataset", "run"]


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
    return [trainer.run_one(lr, seed, on_step=on_step) for lr, seed in config.runs()]


class Trainer:
    """Everything shared by the runs of one config: data, model, compiled steps."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.dataset = load_dataset(config)
        self.mesh = data_mesh()
        self.process_index = jax.process_index()
        self.process_count = jax.process_count()
        self.is_main = self.process_index == 0
        devices = self.mesh.size
        self.measure_every, self.sharpness_every = config.cadence(jax.default_backend())
        eval_batch = config.eval_batch or config.batch_size
        for name, size in (
            ("batch_size", config.batch_size),
            (
                "measure_batch",
                config.measure_batch if self.measure_every else devices,
            ),
            ("eval_batch", eval_batch),
        ):
            if size % devices or size % self.process_count:
                raise InvalidInputError(
                    f"TrainConfig: `{name}` ({size}) must be divisible by the "
                    f"{devices} devices and {self.process_count} processes."
                )
        self.eval_batch = eval_batch
        n_train = len(self.dataset.train)
        self.steps_per_epoch = n_train // config.batch_size
        if self.steps_per_epoch < 1:
            raise InvalidInputError(
                f"TrainConfig: `batch_size` {config.batch_size} exceeds the {n_train} "
                "training examples."
            )
        if config.steps is not None:
            self.total_steps = config.steps
        else:
            self.total_steps = max(
                1, math.ceil((config.epochs or 1.0) * self.steps_per_epoch)
            )
        self.eval_every = (
            self.steps_per_epoch if config.eval_every is None else config.eval_every
        )
        self.workers = config.data_workers
        if self.workers is None:
            self.workers = (
                min(8, os.cpu_count() or 1) if config.dataset == "imagenet" else 0
            )
        dtype = jnp.bfloat16 if config.precision == "bfloat16" else None
        self.network = make_network(
            config.model,
            num_classes=self.dataset.num_classes,
            image_shape=self.dataset.image_shape,
            width=config.width,
            variant=config.variant,
            dtype=dtype,
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
        self.measure_loss = make_measure_loss(
            self.network, mean, std, config.weight_decay
        )
        self.measurer = Measurer(
            self.measure_loss,
            self.optimizer,
            MeasureOptions(
                microbatches=config.measure_microbatches,
                flow_tol=config.flow_tol,
                flow_max_steps=config.flow_max_steps,
                flow_solver=config.flow_solver,
                sharpness_tol=config.sharpness_tol,
                sharpness_iters=config.sharpness_iters,
            ),
        )
        self.measure_images = self.measure_labels = None
        self.measure_skipped = 0
        if self.measure_every or config.snapshots:
            images, labels, skipped = measurement_batch(
                self.dataset.train,
                config.measure_batch,
                seed=config.measure_seed,
                process_index=self.process_index,
                process_count=self.process_count,
            )
            batch = global_batch({"image": images, "label": labels}, self.mesh)
            self.measure_images, self.measure_labels = batch["image"], batch["label"]
            self.measure_skipped = skipped
        self._zero_f32 = jax.device_put(np.float32(0), replicated_sharding)
        self._zero_i32 = jax.device_put(np.int32(0), replicated_sharding)

    # ------------------------------------------------------------------------------
    def run_one(self, lr, seed, *, on_step=None) -> RunSummary:
        return _Run(self, lr, seed, on_step).execute()

    def evaluate(self, params, batch_stats) -> tuple[dict, int]:
        """Accuracy and loss on the test split; (record, unreadable images)."""
        batches = EvalBatches(
            self.dataset.test,
            global_batch=self.eval_batch,
            process_index=self.process_index,
            process_count=self.process_count,
        )
        correct = loss = count = 0.0
        skipped = 0
        iterator = eval_iterator(batches, workers=self.workers)
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
