"""`TrainConfig`: every setting of a training run, from Python, flags or a TOML file."""

import argparse
import dataclasses
import pathlib
import sys
import types
import typing
from typing import Any

from .._checks import InvalidInputError
from ._names import DATASETS, MODELS, OPTIMIZERS, VARIANTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PRECISIONS = ("float32", "bfloat16")
DISTRIBUTED = ("auto", "on", "off")
FLOW_SOLVERS = ("bosh3", "tsit5", "dopri8")
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


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of `corridors.train.run`. Every field is also a flag
    (`--batch-size`) and a TOML key (`batch_size`); see `add_train_arguments`.

    Runs: one per (learning rate, seed) in `lr` × `seeds` (one per seed for the
    optimizers that choose their own step), in `out/<optimizer>[-lr<lr>]-seed<seed>/`.
    """

    model: str = "resnet18"
    width: int | None = None
    variant: str = "auto"
    dataset: str = "cifar10"
    data_dir: str | None = None
    image_size: int = 224
    synthetic_shape: tuple[int, ...] = (32, 32, 3)
    synthetic_classes: int = 10
    synthetic_size: int = 4096
    augment: bool = True
    batch_size: int = 128
    steps: int | None = None
    epochs: float | None = None
    optimizer: str = "sgd"
    lr: tuple[float, ...] = (0.1,)
    momentum: float = 0.9
    max_lr: float | None = None
    f_min: float = 0.0
    sps_c: float = 0.5
    spectrum: tuple[float, ...] | None = None
    cycle: int | None = None
    smoothness: float | None = None
    weight_decay: float = 0.0
    seeds: tuple[int, ...] = (0,)
    precision: str = "float32"
    measure_every: int | None = None
    measure_batch: int = 256
    measure_microbatches: int = 4
    measure_seed: int = 0
    sharpness_every: int | None = None
    sharpness_iters: int = 30
    sharpness_tol: float = 1e-2
    flow_tol: float = 1e-3
    flow_max_steps: int = 256
    flow_solver: str = "bosh3"
    snapshots: int = 16
    log_every: int = 50
    eval_every: int | None = None
    eval_batch: int | None = None
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    async_checkpoints: bool = True
    data_workers: int | None = None
    out: str = "runs/train"
    resume: bool = False
    quiet: bool = False
    distributed: str = "auto"

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(
                self, field.name, _coerce(field, getattr(self, field.name))
            )
        self._validate()

    # -- validation -----------------------------------------------------------
    def _validate(self) -> None:
        def refuse(name, message):
            raise InvalidInputError(f"TrainConfig: `{name}` {message}")

        for name, allowed in (
            ("model", MODELS),
            ("variant", ("auto", *VARIANTS)),
            ("dataset", DATASETS),
            ("optimizer", OPTIMIZERS),
            ("precision", PRECISIONS),
            ("distributed", DISTRIBUTED),
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
        for name in ("eval_every", "data_workers", "measure_every", "sharpness_every"):
            value = getattr(self, name)
            if value is not None and value < 0:
                refuse(name, f"must be ≥ 0, got {value}.")
        if self.epochs is not None and not self.epochs > 0:
            refuse("epochs", f"must be > 0, got {self.epochs}.")
        if not self.lr or any(not value > 0 for value in self.lr):
            refuse("lr", f"must hold learning rates > 0, got {list(self.lr)}.")
        if not self.seeds:
            refuse("seeds", "must hold at least one seed.")
        if len(set(self.lr)) != len(self.lr) or len(set(self.seeds)) != len(self.seeds):
            refuse("lr", "and `seeds` must not repeat values.")
        if not 0 <= self.momentum < 1:
            refuse("momentum", f"must lie in [0, 1), got {self.momentum}.")
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
        if self.optimizer not in ("sgd", "momentum") and len(self.lr) > 1:
            refuse(
                "lr",
                f"sweeps apply to sgd and momentum; {self.optimizer} chooses its own "
                "steps (drop the extra learning rates).",
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
        if self.flow_solver not in FLOW_SOLVERS:
            refuse(
                "flow_solver",
                f"must be one of {list(FLOW_SOLVERS)}, got {self.flow_solver!r}.",
            )
        measure_every, sharpness_every = self.cadence()
        if sharpness_every and (not measure_every or sharpness_every % measure_every):
            refuse(
                "sharpness_every",
                f"({sharpness_every}) must be a multiple of measure_every "
                f"({measure_every}); sharpness is reported with the measurements.",
            )
        if self.dataset in ("cifar10", "imagenet") and not self.data_dir:
            refuse("data_dir", f"is required for dataset {self.dataset!r}.")

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
        """Whether `lr` matters (sgd and momentum)."""
        return self.optimizer in ("sgd", "momentum")

    def runs(self) -> list[tuple[float | None, int]]:
        """The (lr, seed) pairs this configuration trains, lr None where unused."""
        lrs = self.lr if self.uses_lr else (None,)
        return [(lr, seed) for lr in lrs for seed in self.seeds]

    def run_name(self, lr: float | None, seed: int) -> str:
        """The sub-folder of one run: e.g. `sgd-lr0.1-seed0`, `clr-seed2`."""
        middle = f"-lr{lr:g}" if lr is not None else ""
        return f"{self.optimizer}{middle}-seed{seed}"

    # -- TOML and flags -------------------------------------------------------
    def to_dict(self) -> dict:
        """The settings as a dict of TOML-compatible values (None values omitted)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_toml(self) -> str:
        """The settings as TOML text that `from_toml` reads back."""
        return "".join(
            f"{key} = {_toml_value(value)}\n" for key, value in self.to_dict().items()
        )

    @classmethod
    def from_dict(cls, values: dict, *, source: str = "dict") -> "TrainConfig":
        """A config from a mapping of field names (dashes or underscores)."""
        names = {field.name for field in dataclasses.fields(cls)}
        clean = {}
        for key, value in values.items():
            name = key.replace("-", "_")
            if name not in names:
                raise InvalidInputError(
                    f"TrainConfig: unknown setting {key!r} in {source}; known settings: "
                    f"{', '.join(sorted(names))}."
                )
            clean[name] = value
        return cls(**clean)

    @classmethod
    def from_toml(cls, path: str | pathlib.Path) -> "TrainConfig":
        """Read a TOML file: settings at the top level or in a `[train]` table."""
        return cls.from_dict(_read_toml(path), source=str(path))

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace) -> "TrainConfig":
        """A config from arguments parsed with `add_train_arguments`: the `--config`
        TOML file (if given) overridden by every flag given on the command line."""
        values = vars(namespace)
        config_file = values.get("config")
        settings = _read_toml(config_file) if config_file else {}
        names = {field.name for field in dataclasses.fields(cls)}
        # Merged before validation: a flag may supply what the file lacks (data_dir).
        settings.update(
            {k: v for k, v in values.items() if k in names and v is not None}
        )
        return cls.from_dict(settings, source=config_file or "the flags")

    @classmethod
    def from_args(cls, argv: list[str] | None = None) -> "TrainConfig":
        """Parse command-line flags (default `sys.argv[1:]`) into a config."""
        from ._flags import add_train_arguments

        parser = argparse.ArgumentParser(
            prog="corridors train", description="Train with corridor measurements."
        )
        add_train_arguments(parser)
        return cls.from_namespace(parser.parse_args(argv))


def _read_toml(path: str | pathlib.Path) -> dict:
    """The settings of a TOML file (a `[train]` table merged into the top level)."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as file:
            values = tomllib.load(file)
    except FileNotFoundError as error:
        raise InvalidInputError(f"TrainConfig: no config file {path}.") from error
    except tomllib.TOMLDecodeError as error:
        raise InvalidInputError(
            f"TrainConfig: {path} is not valid TOML: {error}"
        ) from error
    if isinstance(values.get("train"), dict):
        values = {
            **{k: v for k, v in values.items() if k != "train"},
            **values["train"],
        }
    return values


def _unpack(hint) -> tuple[type, bool, bool]:
    """(element type, is a tuple, optional) of a field annotation."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = True
        hint = args[0]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True, optional
    return hint, False, optional


def _coerce(field: dataclasses.Field, value: Any) -> Any:
    hint = typing.get_type_hints(TrainConfig)[field.name]
    base, many, optional = _unpack(hint)
    if value is None:
        if optional:
            return None
        raise InvalidInputError(f"TrainConfig: `{field.name}` must not be None.")
    try:
        if many:
            items = value if isinstance(value, (list, tuple)) else [value]
            return tuple(_scalar(base, item) for item in items)
        return _scalar(base, value)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(
            f"TrainConfig: `{field.name}` must be {'a list of ' if many else ''}"
            f"{base.__name__}, got {value!r}."
        ) from error


def _scalar(base: type, value: Any) -> Any:
    if base is bool:
        if not isinstance(value, bool):
            raise TypeError(value)
        return value
    if base is int:
        if isinstance(value, bool) or (
            isinstance(value, float) and not value.is_integer()
        ):
            raise TypeError(value)
        return int(value)
    if base is float:
        if isinstance(value, bool):
            raise TypeError(value)
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    return base(value)  # pragma: no cover


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")  # pragma: no cover
