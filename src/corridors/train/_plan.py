"""`plan`: every setting of a run that follows from the config and the machine,
resolved once (pure: no JAX, no data, no files)."""

import dataclasses
import math
from typing import NamedTuple

from .._checks import InvalidInputError
from ._config import MAX_COUNT, TrainConfig


class Due(NamedTuple):
    """What happens after a step (`Plan.due`)."""

    log: bool
    measure: bool
    sharpness: bool
    spectrum: bool
    evaluate: bool
    snapshot: bool
    checkpoint: bool

    def __bool__(self) -> bool:
        return any(self)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The derived settings of the runs of one config on one machine.

    **Fields:**

    - `total_steps`, `steps_per_epoch`: training steps of a run, and per epoch (the
      last `n_train mod batch_size` examples of each epoch are dropped).
    - `measure_every`, `sharpness_every`: measurement cadences (0: never; see
      `TrainConfig.cadence`); `spectrum_every`: of the Hessian trace and per-block
      sharpness (0: never).
    - `eval_every`: steps between evaluations (0: only at the end).
    - `snapshot_every`: steps between parameter snapshots (0: none).
    - `checkpoint_every`, `log_every`: as in the config (0: only the final one).
    - `batch_size`, `eval_batch`, `measure_batch`: global batch sizes.
    - `per_device_batch`, `per_process_batch`: this machine's share of a batch.
    - `workers`: grain worker processes (0: a thread pool).
    - `devices`, `processes`, `backend`: the machine the plan is for.
    """

    total_steps: int
    steps_per_epoch: int
    measure_every: int
    sharpness_every: int
    spectrum_every: int
    eval_every: int
    snapshot_every: int
    checkpoint_every: int
    log_every: int
    batch_size: int
    eval_batch: int
    measure_batch: int
    per_device_batch: int
    per_process_batch: int
    workers: int
    devices: int
    processes: int
    backend: str

    @property
    def uses_measure_batch(self) -> bool:
        """Whether the fixed measurement batch is needed (measurements, RSI/EB)."""
        return bool(self.measure_every or self.snapshot_every)

    def epoch(self, step: int) -> float:
        """Epochs done after `step` steps."""
        return step / self.steps_per_epoch

    def due(self, step: int) -> Due:
        """What runs after `step` updates (step 0: before the first). The last step
        logs, measures, evaluates and checkpoints whatever the cadences; snapshots
        stop before it (the final parameters are θ* of the RSI/EB)."""
        end = step == self.total_steps

        def every(period: int) -> bool:
            return bool(period) and step % period == 0

        started = step > 0
        measure = bool(self.measure_every) and (every(self.measure_every) or end)
        return Due(
            log=started and (every(self.log_every) or end),
            measure=measure,
            sharpness=measure
            and bool(self.sharpness_every)
            and (every(self.sharpness_every) or end),
            spectrum=measure
            and bool(self.spectrum_every)
            and (every(self.spectrum_every) or end),
            evaluate=started and (every(self.eval_every) or end),
            snapshot=every(self.snapshot_every) and not end,
            checkpoint=started and (every(self.checkpoint_every) or end),
        )


def plan(
    config: TrainConfig,
    *,
    n_train: int,
    devices: int,
    processes: int,
    backend: str,
    cpus: int | None = None,
) -> Plan:
    """Resolve the derived settings of `config` for a data set and a machine.

    **Arguments:**

    - `config`: a `TrainConfig`.
    - `n_train`: training examples.
    - `devices`, `processes`: devices of the data mesh (all hosts) and processes.
    - `backend`: `jax.default_backend()` ("cpu", "gpu", "tpu"); sets the automatic
      measurement cadence.
    - `cpus`: CPU cores of this host (for the ImageNet decoding workers; default 8).

    **Returns:**

    A `Plan`.

    **Raises:**

    `InvalidInputError` when a batch does not split over the devices and processes,
    or the batch size exceeds the training examples.

    **Example:**

    ```python
    import corridors.train as ct
    config = ct.TrainConfig(dataset="synthetic", batch_size=128, epochs=2,
                            measure_every=10, sharpness_every=50)
    p = ct.plan(config, n_train=1000, devices=4, processes=1, backend="cpu")
    print(p.total_steps, p.steps_per_epoch, p.per_device_batch)  # 14 7 32
    print(p.measure_every, p.sharpness_every, p.eval_every)  # 10 50 7
    print(p.due(10).measure, p.due(10).sharpness)  # True False
    ```
    """
    where = "TrainConfig"
    if not isinstance(config, TrainConfig):
        raise InvalidInputError(
            f"plan: `config` must be a TrainConfig, got {type(config).__name__}."
        )
    for name, value in (("n_train", n_train), ("devices", devices),
                        ("processes", processes)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(
                f"plan: `{name}` must be an int ≥ 1, got {value!r}."
            )
    steps_per_epoch = n_train // config.batch_size
    if steps_per_epoch < 1:
        raise InvalidInputError(
            f"{where}: `batch_size` {config.batch_size} exceeds the {n_train} "
            "training examples."
        )
    if config.steps is not None:
        total_steps = config.steps
    else:
        total_steps = max(1, math.ceil((config.epochs or 1.0) * steps_per_epoch))
        if total_steps > MAX_COUNT:
            raise InvalidInputError(
                f"{where}: `epochs` {config.epochs:g} makes {total_steps:.3g} steps "
                f"of {steps_per_epoch:,} per epoch, more than {MAX_COUNT:,}."
            )
    measure_every, sharpness_every = config.cadence(backend)
    if sharpness_every and sharpness_every % measure_every:  # a CPU default cadence
        raise InvalidInputError(
            f"{where}: `sharpness_every` ({sharpness_every}) must be a multiple of "
            f"measure_every ({measure_every}) on {backend}; sharpness is reported "
            "with the measurements."
        )
    snapshot_every = (
        max(1, total_steps // config.snapshots) if config.snapshots > 0 else 0
    )
    eval_batch = config.eval_batch or config.batch_size
    checked = [("batch_size", config.batch_size), ("eval_batch", eval_batch)]
    if measure_every or snapshot_every:
        checked.insert(1, ("measure_batch", config.measure_batch))
    for name, size in checked:
        if size % devices or size % processes:
            raise InvalidInputError(
                f"{where}: `{name}` ({size}) must be divisible by the {devices} "
                f"devices and {processes} processes."
            )
    workers = config.data_workers
    if workers is None:
        workers = min(8, cpus or 8) if config.dataset == "imagenet" else 0
    return Plan(
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        measure_every=measure_every,
        sharpness_every=sharpness_every,
        spectrum_every=config.spectrum_every,
        eval_every=steps_per_epoch if config.eval_every is None else config.eval_every,
        snapshot_every=snapshot_every,
        checkpoint_every=config.checkpoint_every,
        log_every=config.log_every,
        batch_size=config.batch_size,
        eval_batch=eval_batch,
        measure_batch=config.measure_batch,
        per_device_batch=config.batch_size // devices,
        per_process_batch=config.batch_size // processes,
        workers=workers,
        devices=devices,
        processes=processes,
        backend=backend,
    )
