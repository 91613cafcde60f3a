"""`add_train_arguments`: one command-line flag per `TrainConfig` field."""

import argparse
import typing
from typing import Any

from ._config import TrainConfig, _unpack
from ._names import DATASETS, MODELS, OPTIMIZERS

_HELP = {
    "model": f"model: {', '.join(MODELS)}",
    "width": "base width (ResNet/VGG 64, CNN 32, MLP 256 by default); smaller is faster",
    "variant": "ResNet stem: auto (ImageNet stem for inputs ≥ 64 px), cifar, imagenet",
    "dataset": f"data set: {', '.join(DATASETS)}",
    "data_dir": "folder of the CIFAR-10 release or of ImageNet's train/ and val/",
    "image_size": "ImageNet crop size",
    "synthetic_shape": "H W C of the synthetic images",
    "synthetic_classes": "classes of the synthetic data set",
    "synthetic_size": "training examples of the synthetic data set",
    "augment": "standard augmentation (CIFAR crop+flip, ImageNet random-resized crop+flip)",
    "batch_size": "global batch size (all devices and hosts together)",
    "steps": "training steps (overrides --epochs)",
    "epochs": "training epochs (default 1 when --steps is not given)",
    "optimizer": f"optimizer: {', '.join(OPTIMIZERS)}",
    "lr": "learning rate(s) for sgd/momentum; several values run a sweep",
    "momentum": "heavy-ball β for --optimizer momentum",
    "max_lr": "cap on the Polyak-type steps (the paper caps ImageNet CLR at 10)",
    "f_min": "target loss of --optimizer polyak",
    "sps_c": "constant c of sps_max",
    "spectrum": "m M: Hessian spectrum bounds for --optimizer chebyshev",
    "cycle": "schedule length T for chebyshev / silver",
    "smoothness": "L for --optimizer silver",
    "weight_decay": "L2 coefficient: (wd/2)·Σ‖kernel‖² is added to the loss",
    "seeds": "seeds (initialization and data order); several values repeat the runs",
    "precision": "float32, or bfloat16 (bfloat16 compute, float32 parameters)",
    "measure_every": "steps between corridor measurements (0: none; default: ≤ 5%% overhead, see TrainConfig.cadence)",
    "measure_batch": "size of the fixed measurement batch",
    "measure_microbatches": "micro-batches for the SGD regularizer terms (0: skip)",
    "measure_seed": "seed choosing the measurement batch",
    "sharpness_every": "steps between sharpness estimates (a multiple of --measure-every; 0: none; default 5 × measure-every)",
    "sharpness_iters": "Lanczos iterations of a sharpness estimate",
    "sharpness_tol": "relative residual tolerance of the sharpness estimate",
    "flow_tol": "relative accuracy of the drift's gradient-flow solve",
    "flow_max_steps": "cap on the solver steps of one drift solve",
    "flow_solver": "diffrax solver of the drift's flow: bosh3, tsit5, dopri8",
    "snapshots": "parameter snapshots kept for the post-hoc RSI/EB (0: none)",
    "log_every": "steps between training-loss lines and progress updates",
    "eval_every": "steps between evaluations (default: one epoch; 0: only at the end)",
    "eval_batch": "evaluation batch size (default: --batch-size)",
    "checkpoint_every": "steps between orbax checkpoints (0: only the final one)",
    "keep_checkpoints": "checkpoints kept per run",
    "async_checkpoints": "write checkpoints in the background",
    "data_workers": "grain worker processes (default: 0 for in-memory data, 8 for ImageNet)",
    "out": "output folder (one sub-folder per learning rate and seed)",
    "resume": "continue the runs in --out from their last checkpoints",
    "quiet": "no progress bar or report",
    "distributed": "jax.distributed.initialize(): auto (when a cluster is detected), on, off",
}


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add `--config FILE` and one flag per `TrainConfig` field to `parser`.

    Flags default to `None` (not given), so `TrainConfig.from_namespace` can lay
    them over the TOML file. Returns `parser`.
    """
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML file of settings (flags override it)",
    )
    hints = typing.get_type_hints(TrainConfig)
    defaults = TrainConfig.__dataclass_fields__
    for name, hint in hints.items():
        flag = "--" + name.replace("_", "-")
        base, many, _ = _unpack(hint)
        default = defaults[name].default
        shown = f" (default: {_show(default)})"
        help_text = _HELP.get(name, name) + shown
        if base is bool:
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif many:
            parser.add_argument(
                flag,
                type=base,
                nargs="+",
                default=None,
                metavar=name.upper(),
                help=help_text,
            )
        else:
            parser.add_argument(
                flag, type=base, default=None, metavar=name.upper(), help=help_text
            )
    return parser


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return str(value)
