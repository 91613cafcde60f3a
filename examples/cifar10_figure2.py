"""The paper's Figure 2: ResNet-18 on CIFAR-10 at batch 4096, CLR against a sweep of
fixed SGD learning rates, 3 seeds each.

Trains every run with `corridors.train` (corridor score, drift, predicted drift,
sharpness and RSI/EB measured along the way), then writes the figures with
`corridors.train.plot_runs` into `--out/figures/`: training loss (mean ± std over
seeds), the CLR value, test accuracy, corridor score, drift vs predicted drift and
sharpness with the 2/lr lines.

Defaults are sized for a GPU (one H100: roughly 10 s per epoch per run in bfloat16).
The learning-rate grid is ours: the linear-scaling rule puts SGD's best lr near
0.1·4096/128 = 3.2, and the grid brackets it by factors of 2.

Run:  python examples/cifar10_figure2.py --data-dir DATA/cifar-10-batches-bin --out runs/figure2
      (add --resume to continue after an interruption)
CORRIDORS_EXAMPLE_SMALL=1: a tiny MLP on synthetic data, a few seconds, same outputs.
"""

import argparse
import os
import pathlib

import corridors.train as ct

SMALL = os.environ.get("CORRIDORS_EXAMPLE_SMALL") == "1"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="CIFAR-10 binary or python release")
    parser.add_argument("--out", default="examples/out/figure2")
    parser.add_argument("--epochs", type=float, default=100)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.8, 1.6, 3.2, 6.4])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--precision", default="bfloat16", choices=["float32", "bfloat16"]
    )
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    if not SMALL and not args.data_dir:
        parser.error("--data-dir is required (or set CORRIDORS_EXAMPLE_SMALL=1)")
    return args


def base_settings(args) -> dict:
    if SMALL:
        return {
            "model": "mlp",
            "width": 16,
            "dataset": "synthetic",
            "synthetic_shape": (8, 8, 3),
            "synthetic_size": 256,
            "batch_size": 64,
            "steps": 8,
            "measure_every": 4,
            "sharpness_every": 8,
            "measure_batch": 32,
            "snapshots": 4,
            "log_every": 2,
            "checkpoint_every": 0,
            "seeds": (0, 1),
            "precision": "float32",
            "quiet": True,
            "resume": args.resume,
        }
    return {
        "model": "resnet18",
        "dataset": "cifar10",
        "data_dir": args.data_dir,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "seeds": tuple(args.seeds),
        "precision": args.precision,
        "log_every": 5,
        "checkpoint_every": 200,
        "quiet": args.quiet,
        "resume": args.resume,
    }


def main() -> None:
    args = parse()
    out = pathlib.Path(args.out)
    settings = base_settings(args)
    lrs = (0.05, 0.5) if SMALL else tuple(args.lrs)
    experiments = {
        "clr": ct.TrainConfig(optimizer="clr", out=str(out / "clr"), **settings),
        "sgd": ct.TrainConfig(
            optimizer="sgd", lr=lrs, out=str(out / "sgd"), **settings
        ),
    }
    for name, config in experiments.items():
        summaries = ct.run(config)
        for summary in summaries:
            accuracy = summary.eval_accuracy
            print(
                f"{name}: {summary.run_dir.name}: final loss {summary.final_loss:.4g}, "
                f"test accuracy {'n/a' if accuracy is None else f'{accuracy:.2%}'}"
            )
    written = ct.plot_runs([out / "clr", out / "sgd"], out / "figures")
    print("figures:", ", ".join(str(path) for path in written))


if __name__ == "__main__":
    main()
