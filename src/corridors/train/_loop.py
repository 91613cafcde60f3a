"""`run(config)`: train with corridor measurements, checkpoints and resume.

One `Trainer` per config holds what its runs share (data, model, compiled steps and
the `Plan`); `train` is the loop of one (lr, seed) run: restore or start,
then for each step one update and whatever the plan says is due, then the post-hoc
path geometry and the summary.
"""

import dataclasses
import json
import pathlib
import time
from collections.abc import Callable

import jax

from .._checks import InvalidInputError
from ._checkpoint import Checkpoints
from ._config import TrainConfig
from ._metrics import MetricsWriter, read_metrics, rewrite_metrics
from ._pipeline import TrainBatches, train_iterator
from ._progress_bar import TrainProgress
from ._run_report import write_report
from ._sharding import global_batch, initialize_distributed, to_host
from ._snapshots import save_snapshot
from ._steps import TrainState
from ._trainer import Trainer

__all__ = ["NonFiniteLossError", "RunSummary", "run", "train"]


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


def run(
    config: TrainConfig, *, on_step: Callable[[int], None] | None = None
) -> list[RunSummary]:
    """Train every (learning rate, seed) run of `config`, with measurements.

    Each run writes `metrics.jsonl`, `run.json`, `checkpoints/` and `snapshots/`
    into `config.out/<run name>/` (see `TrainConfig.run_name`); `config.out` gets the
    resolved `config.toml` and, at the end, `report.md` with `figures/`. One
    compiled step serves all runs.

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

    **Example:**

    A sweep of two learning rates of a tiny MLP on synthetic data; `ct.run(config)`
    trains it in a few seconds on a CPU (most of it compiling the step and drawing
    the report's figures), so this block only shows the runs it would write.

    ```python
    import corridors.train as ct
    config = ct.TrainConfig(model="mlp", width=4, dataset="synthetic",
                            synthetic_shape=(4, 4, 1), synthetic_classes=3,
                            synthetic_size=16, batch_size=8, steps=2, lr=(0.1, 0.3),
                            measure_every=0, snapshots=0, quiet=True, out="runs/tiny")
    print([config.run_name(lr, seed) for lr, seed in config.runs()])  # ['sgd-lr0.1-seed0', 'sgd-lr0.3-seed0']
    # summaries = ct.run(config)  # [RunSummary(steps=2, ...), RunSummary(steps=2, ...)]
    ```
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
    summaries = [
        train(trainer, lr, seed, on_step=on_step) for lr, seed in config.runs()
    ]
    if trainer.is_main:  # the sweep's one page: configuration, table, figures
        write_report(out)
    return summaries


@dataclasses.dataclass
class _Tally:
    """What a run accumulates besides its state (checkpointed as JSON)."""

    corrupt: int = 0
    last_loss: float | None = None
    last_accuracy: float | None = None
    resumed_from: int | None = None


def train(trainer: Trainer, lr, seed, *, on_step=None) -> RunSummary:
    """Train the (lr, seed) run of `trainer`'s config, resuming it if asked."""
    config, plan = trainer.config, trainer.plan
    name = config.run_name(lr, seed)
    run_dir = pathlib.Path(config.out) / name
    metrics_path = run_dir / "metrics.jsonl"
    if trainer.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = Checkpoints(
        run_dir / "checkpoints",
        keep=config.keep_checkpoints,
        asynchronous=config.async_checkpoints,
    )
    batches = TrainBatches(
        trainer.dataset.train,
        global_batch=plan.batch_size,
        seed=seed,
        augment=config.augment,
        process_index=trainer.process_index,
        process_count=plan.processes,
    )
    iterator = train_iterator(batches, plan.total_steps, workers=plan.workers)
    writer = progress = None
    try:
        state = trainer.initial_state(seed, lr)
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
                return _summary(trainer, run_dir, lr, seed, done[-1])
            state, iterator_state, extra = checkpoints.restore(latest, state)
            iterator.set_state(iterator_state)
            tally = _Tally(
                corrupt=int(extra["corrupt_per_process"][trainer.process_index]),
                last_loss=extra.get("last_loss"),
                last_accuracy=extra.get("last_accuracy"),
                resumed_from=latest,
            )
        start = tally.resumed_from or 0
        if trainer.is_main:
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
                json.dumps(trainer.description(name, lr, seed), indent=2)
            )
        writer = MetricsWriter(metrics_path, enabled=trainer.is_main)
        progress = TrainProgress(
            name,
            plan.total_steps,
            start=start,
            enabled=trainer.is_main and not config.quiet,
        )
        window = _Window()
        began = time.perf_counter()

        def after(step: int, state: TrainState) -> TrainState:
            due = plan.due(step)
            if trainer.dataset.test is None:
                due = due._replace(evaluate=False)
            if not due:
                return state
            started = time.perf_counter()
            first_bad = int(state.first_nonfinite)
            if first_bad >= 0:
                _stop(first_bad, name, checkpoints, writer, progress)
            epoch = plan.epoch(step)
            if due.log:
                tally.last_loss = state.window_loss()
                record = window.record(state, started)
                writer.write({"kind": "train", "step": step, "epoch": epoch,
                              "loss": tally.last_loss, **record})  # fmt: skip
                progress.show(loss=tally.last_loss, lr=record["lr"],
                              speed=record["images_per_s"])  # fmt: skip
                state = state.replace(
                    loss_sum=trainer._zero_f32, loss_count=trainer._zero_i32
                )
            if due.measure:
                key = jax.random.fold_in(state.rng, step)
                record = trainer.measurer.measure(
                    state.params,
                    state.batch_stats,
                    state.opt_state,
                    trainer.measure_images,
                    trainer.measure_labels,
                    sharpness_key=key if due.sharpness else None,
                    spectrum_key=jax.random.fold_in(key, 1) if due.spectrum else None,
                )
                writer.write(
                    {"kind": "measure", "step": step, "epoch": epoch, **record}
                )
            if due.evaluate:
                record, skipped = trainer.evaluate(state.params, state.batch_stats)
                tally.corrupt += skipped
                tally.last_accuracy = record["eval_accuracy"]
                writer.write({"kind": "eval", "step": step, "epoch": epoch, **record})
            if due.snapshot and trainer.is_main:
                save_snapshot(run_dir / "snapshots", step, to_host(state.params))
            if due.checkpoint:
                extra = {
                    "corrupt_per_process": trainer.gather(tally.corrupt),
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
            batch = global_batch(local, trainer.mesh)
            state = trainer.train_step(state, batch["image"], batch["label"])
            window.images += plan.batch_size
            progress.advance(step)
            state = after(step, state)
            if on_step is not None:
                on_step(step)
        checkpoints.wait()
        path = trainer.path_geometry(run_dir, state, writer)
        record = {
            "kind": "summary",
            "step": plan.total_steps,
            "final_loss": tally.last_loss,
            "eval_accuracy": tally.last_accuracy,
            "corrupt_images": sum(trainer.gather(tally.corrupt))
            + trainer.measure_skipped,
            "resumed_from": tally.resumed_from,
            "wall_time_s": time.perf_counter() - began,
            **path,
        }
        writer.write(record)
        loss, accuracy = record["final_loss"], record["eval_accuracy"]
        # Only ImageNet decodes files that can be unreadable.
        skipped = record["corrupt_images"]
        skipped = (
            f", {skipped} unreadable image(s) skipped"
            if skipped or config.dataset == "imagenet"
            else ""
        )
        progress.print(
            f"[bold]{name}[/]: {plan.total_steps} steps, final training loss "
            f"{'n/a' if loss is None else format(loss, '.4g')}, test accuracy "
            f"{'n/a' if accuracy is None else format(accuracy, '.2%')}"
            f"{skipped} → {run_dir}"
        )
        return _summary(trainer, run_dir, lr, seed, record)
    finally:
        if progress is not None:
            progress.close()
        checkpoints.close()
        if writer is not None:
            writer.close()
        close = getattr(iterator, "close", None)  # grain worker processes
        if close is not None:
            close()


def _stop(first_bad: int, name, checkpoints, writer, progress) -> None:
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


def _summary(trainer: Trainer, run_dir, lr, seed, record: dict) -> RunSummary:
    return RunSummary(
        run_dir=run_dir,
        optimizer=trainer.config.optimizer,
        lr=lr,
        seed=seed,
        steps=trainer.plan.total_steps,
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
