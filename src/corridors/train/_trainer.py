"""`Trainer`: what the runs of one config share (data, model, compiled steps, the
measurement batch and the `Plan`), and the pieces of a run that need them."""

import os

import jax
import jax.numpy as jnp
import numpy as np

from ._config import TrainConfig
from ._datasets import Dataset, digits, synthetic
from ._measure import Measurer, make_measure_loss
from ._network import make_network
from ._optim import make_optimizer
from ._pipeline import EvalBatches, eval_iterator, measurement_batch
from ._plan import Plan, plan
from ._sharding import (
    batch_sharding,
    data_mesh,
    global_batch,
    replicate,
    replicated,
    to_host,
)
from ._snapshots import load_snapshot, rsi_eb, snapshot_steps
from ._steps import TrainState, make_eval_step, make_train_step


def load_dataset(config: TrainConfig) -> Dataset:
    """The data set a config names.

    **Example:**

    ```python
    import corridors.train as ct
    config = ct.TrainConfig(dataset="synthetic", synthetic_shape=(4, 4, 1),
                            synthetic_classes=3, synthetic_size=64)
    data = ct.load_dataset(config)
    print(data.name, len(data.train), data.image_shape)  # synthetic 64 (4, 4, 1)
    ```
    """
    if config.dataset == "cifar10":
        from ._cifar import cifar10

        return cifar10(config.data_dir)
    if config.dataset == "imagenet":
        from ._imagenet import imagenet

        return imagenet(config.data_dir, image_size=config.image_size)
    if config.dataset == "digits":
        return digits(split=config.digits_split)
    return synthetic(
        config.synthetic_shape, config.synthetic_classes, size=config.synthetic_size
    )


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
            nesterov=config.nesterov,
            b1=config.b1,
            b2=config.b2,
            eps=config.eps,
            decoupled_weight_decay=config.decoupled_weight_decay,
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

    def gather(self, count: int) -> list[int]:
        """`count` of every process, in process order."""
        if self.plan.processes == 1:
            return [count]
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(np.int64(count)).tolist()

    def path_geometry(self, run_dir, state: TrainState, writer) -> dict:
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

    def description(self, name: str, lr, seed: int) -> dict:
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
            "spectrum_every": plan.spectrum_every,
            "devices": plan.devices,
            "processes": plan.processes,
            "backend": plan.backend,
        }
