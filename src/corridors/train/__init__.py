"""Training backend: corridor measurements on ResNets, CIFAR-10 and ImageNet.

Flax NNX models, grain input pipelines, optax optimizers (including the corridor
learning rate), orbax checkpoints and data parallelism with `jax.sharding`.

```python
import corridors.train as ct

config = ct.TrainConfig(model="resnet18", dataset="cifar10", data_dir="data/cifar10",
                        batch_size=4096, optimizer="clr", epochs=100, seeds=(0, 1, 2))
ct.run(config)                       # writes runs/train/clr-seed*/metrics.jsonl
ct.plot_runs(["runs/train"], "figures")
```

Importing this package is cheap: the heavy dependencies of the `train` extra (flax,
grain, orbax-checkpoint, Pillow, scikit-learn) load on first use of a name below.
"""

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    # configuration and entry points
    "TrainConfig": "._config",
    "add_train_arguments": "._config",
    "MeasureOptions": "._config",
    "Plan": "._plan",
    "plan": "._plan",
    "TrainState": "._steps",
    "run": "._loop",
    "RunSummary": "._loop",
    "NonFiniteLossError": "._loop",
    "load_dataset": "._trainer",
    "plot_runs": "._run_plots",
    # metrics files
    "read_metrics": "._metrics",
    "MetricsWriter": "._metrics",
    # data
    "Dataset": "._datasets",
    "DataFormatError": "._datasets",
    "ArraySplit": "._datasets",
    "digits": "._datasets",
    "synthetic": "._datasets",
    "cifar10": "._cifar",
    "RefusedPickleError": "._cifar",
    "imagenet": "._imagenet",
    # a small classifier as pure JAX functions
    "Features": "._classifier",
    "load_features": "._classifier",
    "init_mlp": "._classifier",
    "mlp_logits": "._classifier",
    "mlp_loss": "._classifier",
    "mlp_accuracy": "._classifier",
    "mlp_sizes": "._classifier",
    "fit_minibatches": "._classifier",
    # models
    "build_model": "._models",
    "count_parameters": "._models",
    "MODELS": "._names",
    "Network": "._network",
    "make_network": "._network",
    # optimizers and measurements
    "Optimizer": "._optim",
    "make_optimizer": "._optim",
    "OPTIMIZERS": "._names",
    "Measurer": "._measure",
    "make_measure_loss": "._measure",
    # distribution
    "data_mesh": "._sharding",
}

__all__ = [
    "MODELS",
    "OPTIMIZERS",
    "ArraySplit",
    "DataFormatError",
    "Dataset",
    "Features",
    "MeasureOptions",
    "Measurer",
    "MetricsWriter",
    "Network",
    "NonFiniteLossError",
    "Optimizer",
    "Plan",
    "RefusedPickleError",
    "RunSummary",
    "TrainConfig",
    "TrainState",
    "add_train_arguments",
    "build_model",
    "cifar10",
    "count_parameters",
    "data_mesh",
    "digits",
    "fit_minibatches",
    "imagenet",
    "init_mlp",
    "load_dataset",
    "load_features",
    "make_measure_loss",
    "make_network",
    "make_optimizer",
    "mlp_accuracy",
    "mlp_logits",
    "mlp_loss",
    "mlp_sizes",
    "plan",
    "plot_runs",
    "read_metrics",
    "run",
    "synthetic",
]

_MISSING_EXTRA = (
    "corridors.train needs the `train` extra (flax, grain, orbax-checkpoint, pillow, "
    "scikit-learn): pip install 'corridors[train]'"
)


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'corridors.train' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name, __name__)
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in (
            "flax",
            "grain",
            "orbax",
            "PIL",
            "sklearn",
        ):
            raise ImportError(f"{_MISSING_EXTRA} (missing: {error.name})") from error
        raise
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from ._cifar import RefusedPickleError, cifar10
    from ._classifier import (
        Features,
        fit_minibatches,
        init_mlp,
        load_features,
        mlp_accuracy,
        mlp_logits,
        mlp_loss,
        mlp_sizes,
    )
    from ._config import MeasureOptions, TrainConfig, add_train_arguments
    from ._datasets import ArraySplit, DataFormatError, Dataset, digits, synthetic
    from ._imagenet import imagenet
    from ._loop import NonFiniteLossError, RunSummary, run
    from ._measure import Measurer, make_measure_loss
    from ._metrics import MetricsWriter, read_metrics
    from ._models import build_model, count_parameters
    from ._names import MODELS, OPTIMIZERS
    from ._network import Network, make_network
    from ._optim import Optimizer, make_optimizer
    from ._plan import Plan, plan
    from ._run_plots import plot_runs
    from ._sharding import data_mesh
    from ._steps import TrainState
    from ._trainer import load_dataset
