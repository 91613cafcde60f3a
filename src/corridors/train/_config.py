"""`TrainConfig`: every setting of a training run, from Python, flags or a TOML file;
`MeasureOptions`: the knobs of the corridor measurements (whose defaults the config's
`flow_*`, `sharpness_*` and `measure_microbatches` fields take)."""

import argparse
import dataclasses
import math
import os
import pathlib

from .._checks import InvalidInputError
from . import _settings
from ._names import (
    ADAPTIVE,
    DATASETS,
    FLOW_SOLVERS,
    LR_OPTIMIZERS,
    MODELS,
    OPTIMIZERS,
    VARIANTS,
)

PRECISIONS = ("float32", "bfloat16")
DISTRIBUTED = ("auto", "on", "off")
DIGITS_SPLITS = ("fixed", "random")
# Bounds on sizes, checked before anything is allocated: a count (steps, batch) past
# 2**31 overflows XLA's int32 loop counters; a width past 2**16 makes an MLP weight
# of 2**32 entries (16 GiB); an image side past 8192 is no data set's.
MAX_COUNT = 2**31 - 1
MAX_WIDTH = 2**16
MAX_IMAGE_SIZE = 8192
MEASURE_COST = 65  # gradient evaluations of one measurement (see TrainConfig.cadence)
# XLA:CPU runs convolutions inside while loops (the drift's ODE solve, Lanczos) about
# 25 times slower than outside (jax-ml/jax#12868): there a measurement of a convolutional
# network costs about 600 gradient evaluations (benchmarks/measure_overhead.py).
MEASURE_COST_CPU_CONV = 600


def _nice_ceil(value: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, … that is ≥ value."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def _field(default, help_text: str):
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class MeasureOptions:
    """Cost and accuracy knobs of the measurements.

    **Fields:**

    - `microbatches`: micro-batches m for the SGD regularizer terms (0: skip them).
    - `flow_tol`: relative accuracy of the drift's flow solve (w.r.t. the step's
      displacement h‖∇L‖); the absolute error of `drift` is about
      `flow_tol`·h‖∇L‖.
    - `flow_max_steps`: cap on the solver steps of one drift solve.
    - `flow_solver`: "bosh3" (Bogacki–Shampine 3(2), 3 gradients per step), "tsit5"
      (Tsitouras 5(4), 6 per step) or "dopri8".
    - `sharpness_tol`, `sharpness_iters`: relative residual tolerance and Krylov
      dimension of the Lanczos sharpness estimate (and of each per-block one).
    - `trace_samples`: Hessian-vector products of the Hutch++ trace estimate.
    """

    microbatches: int = 4
    flow_tol: float = 1e-3
    flow_max_steps: int = 256
    flow_solver: str = "bosh3"
    sharpness_tol: float = 1e-2
    sharpness_iters: int = 30
    trace_samples: int = 30


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of `corridors.train.run`. Every field is also a flag
    (`--batch-size`) and a TOML key (`batch_size`); see `add_train_arguments`.

    Runs: one per (learning rate, seed) in `lr` × `seeds` (one per seed for the
    optimizers that choose their own step), in `out/<optimizer>[-lr<lr>]-seed<seed>/`.
    """

    model: str = _field("resnet18", f"model: {', '.join(MODELS)}")
    width: int | None = _field(
        None,
        "base width (ResNet/VGG 64, CNN 32, MLP 256 by default); smaller is faster",
    )
    variant: str = _field(
        "auto", "ResNet stem: auto (ImageNet stem for inputs ≥ 64 px), cifar, imagenet"
    )
    dataset: str = _field("cifar10", f"data set: {', '.join(DATASETS)}")
    data_dir: str | None = _field(
        None, "folder of the CIFAR-10 release or of ImageNet's train/ and val/"
    )
    image_size: int = _field(224, "ImageNet crop size")
    digits_split: str = _field(
        "fixed",
        "digits test split: fixed (the last 297 images, writers disjoint from "
        "training) or random (297 images drawn with seed 0, writers shared)",
    )
    synthetic_shape: tuple[int, ...] = _field(
        (32, 32, 3), "H W C of the synthetic images"
    )
    synthetic_classes: int = _field(10, "classes of the synthetic data set")
    synthetic_size: int = _field(4096, "training examples of the synthetic data set")
    augment: bool = _field(
        True,
        "standard augmentation (CIFAR crop+flip, ImageNet random-resized crop+flip)",
    )
    batch_size: int = _field(128, "global batch size (all devices and hosts together)")
    steps: int | None = _field(None, "training steps (overrides --epochs)")
    epochs: float | None = _field(
        None, "training epochs (default 1 when --steps is not given)"
    )
    optimizer: str = _field("sgd", f"optimizer: {', '.join(OPTIMIZERS)}")
    lr: tuple[float, ...] = _field(
        (0.1,),
        f"learning rate(s) for {'/'.join(LR_OPTIMIZERS)}; several values run a sweep",
    )
    momentum: float | None = _field(
        None,
        "heavy-ball β for --optimizer momentum (default 0.9) and sgd (default none)",
    )
    nesterov: bool = _field(
        False, "Nesterov momentum for --optimizer momentum, or sgd with --momentum"
    )
    b1: float | None = _field(None, "β1 of adam/adamw/lion (default: optax's, 0.9)")
    b2: float | None = _field(
        None, "β2 of adam/adamw/lion (default: optax's, 0.999; lion 0.99)"
    )
    eps: float | None = _field(None, "ε of adam/adamw (default: optax's, 1e-8)")
    decoupled_weight_decay: float | None = _field(
        None,
        "decoupled weight decay of adamw/lion (default: optax's, 1e-4 / 1e-3); "
        "--weight-decay is the L2 term of the loss",
    )
    max_lr: float | None = _field(
        None, "cap on the Polyak-type steps (the paper caps ImageNet CLR at 10)"
    )
    f_min: float = _field(0.0, "target loss of --optimizer polyak")
    sps_c: float = _field(0.5, "constant c of sps_max")
    spectrum: tuple[float, ...] | None = _field(
        None, "m M: Hessian spectrum bounds for --optimizer chebyshev"
    )
    cycle: int | None = _field(None, "schedule length T for chebyshev / silver")
    smoothness: float | None = _field(None, "L for --optimizer silver")
    weight_decay: float = _field(
        0.0, "L2 coefficient: (wd/2)·Σ‖kernel‖² is added to the loss"
    )
    seeds: tuple[int, ...] = _field(
        (0,), "seeds (initialization and data order); several values repeat the runs"
    )
    precision: str = _field(
        "float32", "float32, or bfloat16 (bfloat16 compute, float32 parameters)"
    )
    measure_every: int | None = _field(
        None,
        "steps between corridor measurements (0: none; default: ≤ 5%% overhead, see TrainConfig.cadence)",
    )
    measure_batch: int = _field(256, "size of the fixed measurement batch")
    measure_microbatches: int = _field(
        MeasureOptions.microbatches,
        "micro-batches for the SGD regularizer terms (0: skip)",
    )
    measure_seed: int = _field(0, "seed choosing the measurement batch")
    sharpness_every: int | None = _field(
        None,
        "steps between sharpness estimates (a multiple of --measure-every; 0: none; default 5 × measure-every)",
    )
    sharpness_iters: int = _field(
        MeasureOptions.sharpness_iters, "Lanczos iterations of a sharpness estimate"
    )
    sharpness_tol: float = _field(
        MeasureOptions.sharpness_tol,
        "relative residual tolerance of the sharpness estimate",
    )
    spectrum_every: int = _field(
        0,
        "steps between the Hessian trace and per-block sharpness (a multiple of --measure-every; 0: none)",
    )
    trace_samples: int = _field(
        MeasureOptions.trace_samples,
        "Hessian-vector products of the Hutch++ trace estimate",
    )
    flow_tol: float = _field(
        MeasureOptions.flow_tol, "relative accuracy of the drift's gradient-flow solve"
    )
    flow_max_steps: int = _field(
        MeasureOptions.flow_max_steps, "cap on the solver steps of one drift solve"
    )
    flow_solver: str = _field(
        MeasureOptions.flow_solver,
        "diffrax solver of the drift's flow: bosh3, tsit5, dopri8",
    )
    snapshots: int = _field(
        16, "parameter snapshots kept for the post-hoc RSI/EB (0: none)"
    )
    log_every: int = _field(
        50, "steps between training-loss lines and progress updates"
    )
    eval_every: int | None = _field(
        None, "steps between evaluations (default: one epoch; 0: only at the end)"
    )
    eval_batch: int | None = _field(
        None, "evaluation batch size (default: --batch-size)"
    )
    checkpoint_every: int = _field(
        1000, "steps between orbax checkpoints (0: only the final one)"
    )
    keep_checkpoints: int = _field(2, "checkpoints kept per run")
    async_checkpoints: bool = _field(True, "write checkpoints in the background")
    data_workers: int | None = _field(
        None, "grain worker processes (default: 0 for in-memory data, 8 for ImageNet)"
    )
    out: str = _field(
        "runs/train", "output folder (one sub-folder per learning rate and seed)"
    )
    resume: bool = _field(
        False, "continue the runs in --out from their last checkpoints"
    )
    quiet: bool = _field(False, "no progress bar or report")
    distributed: str = _field(
        "auto",
        "jax.distributed.initialize(): auto (when a cluster is detected), on, off",
    )

    def __post_init__(self):
        _settings.coerce_fields(self)
        self._validate()

    # -- validation -----------------------------------------------------------
    def _validate(self) -> None:
        def refuse(name, message):
            raise InvalidInputError(f"TrainConfig: `{name}` {message}")

        self._validate_numbers(refuse)
        for name, allowed in (
            ("model", MODELS),
            ("variant", ("auto", *VARIANTS)),
            ("dataset", DATASETS),
            ("digits_split", DIGITS_SPLITS),
            ("optimizer", OPTIMIZERS),
            ("precision", PRECISIONS),
            ("distributed", DISTRIBUTED),
            ("flow_solver", FLOW_SOLVERS),
        ):
            if getattr(self, name) not in allowed:
                refuse(
                    name,
                    f"must be one of {list(allowed)}, got {getattr(self, name)!r}.",
                )
        for name in ("batch_size", "measure_batch", "sharpness_iters", "log_every",
                     "keep_checkpoints", "flow_max_steps", "image_size",
                     "synthetic_classes", "synthetic_size"):  # fmt: skip
            if getattr(self, name) < 1:
                refuse(name, f"must be ≥ 1, got {getattr(self, name)}.")
        for name in ("snapshots", "checkpoint_every", "measure_microbatches"):
            if getattr(self, name) < 0:
                refuse(name, f"must be ≥ 0, got {getattr(self, name)}.")
        for name in ("steps", "width", "eval_batch", "cycle"):
            value = getattr(self, name)
            if value is not None and value < 1:
                refuse(name, f"must be ≥ 1, got {value}.")
        for name in ("eval_every", "data_workers", "measure_every", "sharpness_every",
                     "spectrum_every"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value < 0:
                refuse(name, f"must be ≥ 0, got {value}.")
        if self.epochs is not None and not self.epochs > 0:
            refuse("epochs", f"must be > 0, got {self.epochs}.")
        if not self.lr or any(not value > 0 for value in self.lr):
            refuse("lr", f"must hold learning rates > 0, got {list(self.lr)}.")
        if not self.seeds:
            refuse("seeds", "must hold at least one seed.")
        if min(self.seeds) < 0:
            refuse("seeds", f"must be ≥ 0, got {list(self.seeds)}.")
        if len(set(self.lr)) != len(self.lr) or len(set(self.seeds)) != len(self.seeds):
            refuse("lr", "and `seeds` must not repeat values.")
        for name in ("momentum", "b1", "b2"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                refuse(name, f"must lie in [0, 1), got {value}.")
        for name in ("eps", "decoupled_weight_decay"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                refuse(name, f"must be ≥ 0, got {value}.")
        if self.nesterov and not (
            self.optimizer == "momentum"
            or (self.optimizer == "sgd" and self.momentum is not None)
        ):
            refuse(
                "nesterov",
                "needs momentum: --optimizer momentum, or sgd with --momentum.",
            )
        allowed = {"b1": ADAPTIVE, "b2": ADAPTIVE, "eps": ("adam", "adamw"),
                   "decoupled_weight_decay": ("adamw", "lion")}  # fmt: skip
        for name, optimizers in allowed.items():
            if getattr(self, name) is not None and self.optimizer not in optimizers:
                refuse(
                    name,
                    f"applies to {', '.join(optimizers)}, not {self.optimizer}.",
                )
        if self.max_lr is not None and not self.max_lr > 0:
            refuse("max_lr", f"must be > 0, got {self.max_lr}.")
        if not self.sps_c > 0:
            refuse("sps_c", f"must be > 0, got {self.sps_c}.")
        if self.weight_decay < 0:
            refuse("weight_decay", f"must be ≥ 0, got {self.weight_decay}.")
        for name in ("flow_tol", "sharpness_tol"):
            if not 0 < getattr(self, name) < 1:
                refuse(name, f"must lie in (0, 1), got {getattr(self, name)}.")
        if len(self.synthetic_shape) != 3 or min(self.synthetic_shape) < 1:
            refuse("synthetic_shape", f"must be H W C ≥ 1, got {self.synthetic_shape}.")
        if self.optimizer == "sps_max" and self.max_lr is None:
            refuse("max_lr", "is required by sps_max (its cap γ_b).")
        if self.optimizer == "chebyshev":
            if (
                self.spectrum is None
                or len(self.spectrum) != 2
                or not 0 < self.spectrum[0] <= self.spectrum[1]
            ):
                refuse(
                    "spectrum",
                    f"must be m M with 0 < m ≤ M for chebyshev, got {self.spectrum}.",
                )
            if self.cycle is None:
                refuse("cycle", "(the schedule length T) is required by chebyshev.")
        if self.optimizer == "silver":
            if self.smoothness is None or not self.smoothness > 0:
                refuse(
                    "smoothness", f"must be L > 0 for silver, got {self.smoothness}."
                )
            if self.cycle is None:
                refuse("cycle", "(the schedule length T) is required by silver.")
        if self.optimizer not in LR_OPTIMIZERS and len(self.lr) > 1:
            refuse(
                "lr",
                f"sweeps apply to {', '.join(LR_OPTIMIZERS[:-1])} and "
                f"{LR_OPTIMIZERS[-1]}; {self.optimizer} chooses its own steps (drop "
                "the extra learning rates).",
            )
        if (
            self.measure_microbatches > 1
            and self.measure_batch % self.measure_microbatches
        ):
            refuse(
                "measure_batch",
                f"({self.measure_batch}) must be divisible by measure_microbatches "
                f"({self.measure_microbatches}).",
            )
        measure_every, sharpness_every = self.cadence()
        for name, every in (
            ("sharpness_every", sharpness_every),
            ("spectrum_every", self.spectrum_every),
        ):
            if every and (not measure_every or every % measure_every):
                refuse(
                    name,
                    f"({every}) must be a multiple of measure_every "
                    f"({measure_every}); it is reported with the measurements.",
                )
        if self.trace_samples < 3:
            refuse("trace_samples", f"must be ≥ 3 (Hutch++), got {self.trace_samples}.")
        if self.dataset in ("cifar10", "imagenet") and not self.data_dir:
            refuse("data_dir", f"is required for dataset {self.dataset!r}.")

    def _validate_numbers(self, refuse) -> None:
        """Every number finite and every count of a size that can be allocated:
        refused here, before JAX or numpy would fail deep inside (an XLA abort, a
        126 TiB array)."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, bool) or not isinstance(item, (int, float)):
                    continue
                if isinstance(item, float) and not math.isfinite(item):
                    refuse(field.name, f"must be finite, got {item}.")
                if isinstance(item, int) and abs(item) > MAX_COUNT:
                    refuse(
                        field.name, f"must be at most {MAX_COUNT:,}, got {item:.3g}."
                    )
        for name, cap in (("width", MAX_WIDTH), ("image_size", MAX_IMAGE_SIZE)):
            value = getattr(self, name)
            if value is not None and value > cap:
                refuse(name, f"must be at most {cap:,}, got {value:,}.")
        if self.dataset == "synthetic" and hasattr(os, "sysconf"):  # not on Windows
            size = self.synthetic_size * math.prod(self.synthetic_shape)
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            if size > memory // 2:
                refuse(
                    "synthetic_size",
                    f"× synthetic_shape is {size:.3g} bytes of images, more than "
                    f"half of this machine's memory ({memory:.3g} bytes).",
                )

    def cadence(self, backend: str | None = None) -> tuple[int, int]:
        """(measure_every, sharpness_every), resolving the automatic defaults.

        One measurement costs about `MEASURE_COST` = 65 gradient evaluations on the
        measurement batch (value, gradient and H∇L: 4; the drift's flow solve: about 50
        with bosh3 at flow_tol 1e-3; the SGD regularizer terms: about 10), i.e.
        65·measure_batch/batch_size training steps; on the CPU `backend` a
        convolutional model's measurement costs about 600 (XLA:CPU runs convolutions
        inside loops slowly). The default `measure_every` is the smallest 1-2-5 number
        keeping that under 5% of the training time; the default `sharpness_every` (up
        to 30 Lanczos iterations) is 5 times it.
        """
        measure_every = self.measure_every
        if measure_every is None:
            per_measurement = MEASURE_COST
            if backend == "cpu" and self.model != "mlp":
                per_measurement = MEASURE_COST_CPU_CONV
            cost = per_measurement * self.measure_batch / self.batch_size
            measure_every = _nice_ceil(cost / 0.05)
        sharpness_every = self.sharpness_every
        if measure_every == 0:  # no measurements, no sharpness
            return 0, 0
        if sharpness_every is None:
            sharpness_every = 5 * measure_every
        return measure_every, sharpness_every

    # -- runs -----------------------------------------------------------------
    @property
    def uses_lr(self) -> bool:
        """Whether `lr` matters (sgd, momentum, adam, adamw, lion)."""
        return self.optimizer in LR_OPTIMIZERS

    def runs(self) -> list[tuple[float | None, int]]:
        """The (lr, seed) pairs this configuration trains, lr None where unused."""
        lrs = self.lr if self.uses_lr else (None,)
        return [(lr, seed) for lr in lrs for seed in self.seeds]

    def run_name(self, lr: float | None, seed: int) -> str:
        """The sub-folder of one run: e.g. `sgd-lr0.1-seed0`, `clr-seed2`."""
        middle = f"-lr{lr:g}" if lr is not None else ""
        return f"{self.optimizer}{middle}-seed{seed}"

    def measure_options(self) -> MeasureOptions:
        """The measurement knobs of this config."""
        return MeasureOptions(
            microbatches=self.measure_microbatches,
            flow_tol=self.flow_tol,
            flow_max_steps=self.flow_max_steps,
            flow_solver=self.flow_solver,
            sharpness_tol=self.sharpness_tol,
            sharpness_iters=self.sharpness_iters,
            trace_samples=self.trace_samples,
        )

    # -- TOML and flags -------------------------------------------------------
    def to_dict(self) -> dict:
        """The settings as a dict of TOML-compatible values (None values omitted)."""
        return _settings.to_dict(self)

    def to_toml(self) -> str:
        """The settings as TOML text that `from_toml` reads back."""
        return _settings.to_toml(self)

    @classmethod
    def from_dict(cls, values: dict, *, source: str = "dict") -> "TrainConfig":
        """A config from a mapping of field names (dashes or underscores)."""
        return _settings.from_dict(cls, values, source=source)

    @classmethod
    def from_toml(cls, path: str | pathlib.Path) -> "TrainConfig":
        """Read a TOML file: settings at the top level or in a `[train]` table."""
        return cls.from_dict(_settings.read_toml(cls, path), source=str(path))

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace) -> "TrainConfig":
        """A config from arguments parsed with `add_train_arguments`: the `--config`
        TOML file (if given) overridden by every flag given on the command line."""
        return _settings.from_namespace(cls, namespace)

    @classmethod
    def from_args(cls, argv: list[str] | None = None) -> "TrainConfig":
        """Parse command-line flags (default `sys.argv[1:]`) into a config."""
        parser = argparse.ArgumentParser(
            prog="corridors train", description="Train with corridor measurements."
        )
        return cls.from_namespace(add_train_arguments(parser).parse_args(argv))


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add `--config FILE` and one flag per `TrainConfig` field to `parser`.

    Flags default to `None` (not given), so `TrainConfig.from_namespace` can lay
    them over the TOML file. Returns `parser`.

    **Example:**

    ```python
    import argparse
    import corridors.train as ct
    parser = ct.add_train_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--dataset", "digits", "--batch-size", "32"])
    print(args.batch_size, args.optimizer)  # 32 None: not given
    config = ct.TrainConfig.from_namespace(args)
    print(config.dataset, config.batch_size, config.optimizer)  # digits 32 sgd
    ```
    """
    _settings.add_arguments(TrainConfig, parser)
    return parser
