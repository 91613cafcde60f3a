"""`corridors train`: train a network (ResNet/VGG on CIFAR-10 or ImageNet, a CNN or MLP
on digits or synthetic data) with corridor measurements along the way. Each
(lr, seed) run writes metrics.jsonl, run.json, checkpoints/ and snapshots/ in its own
folder under --out; `corridors plot OUT` draws the paper's figures from them.

Every setting is a `corridors.train.TrainConfig` field, settable from a TOML file
(--config) and overridden by the flags given."""

import argparse
import dataclasses

NAME = "train"
HELP = "train with corridor measurements (CIFAR-10, ImageNet, digits, synthetic)"
EXAMPLE = """\
examples:
  corridors train --model mlp --dataset digits --steps 200 --optimizer clr
  corridors train --model resnet18 --dataset cifar10 --data-dir data/cifar10 \\
      --batch-size 4096 --optimizer clr --epochs 100 --seeds 0 1 2 --out runs/clr
  corridors train --model resnet18 --dataset cifar10 --data-dir data/cifar10 \\
      --batch-size 4096 --optimizer sgd --lr 0.8 1.6 3.2 6.4 --seeds 0 1 2 \\
      --epochs 100 --out runs/sgd
  corridors train --config figure2.toml --resume   # continue a killed run
  corridors plot runs                              # the figures of every run"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Cheap: corridors.train loads flax and grain only when a run starts.
    from corridors.train import add_train_arguments

    add_train_arguments(parser)  # includes --out, --quiet and --seeds (--seed N)
    parser.add_argument(
        "--json", action="store_true", help="print the run summaries as JSON on stdout"
    )


def run(options: argparse.Namespace) -> int:
    import corridors.train as ct

    from ._terminal import Terminal

    config = ct.TrainConfig.from_namespace(options)
    terminal = Terminal(quiet=config.quiet, json_mode=options.json)
    try:
        summaries = ct.run(config)
    except ct.NonFiniteLossError as error:  # a diverged run: say where, exit 1
        terminal.err.print(f"corridors train: {error}", highlight=False)
        return 1
    rows = [dataclasses.asdict(summary) for summary in summaries]
    for row in rows:
        row["run_dir"] = str(row["run_dir"])
    terminal.table(
        f"corridors train: {len(rows)} run(s) in {config.out}",
        ["run", "optimizer", "lr", "seed", "steps", "final loss", "test accuracy"],
        [
            [
                row["run_dir"],
                row["optimizer"],
                "chosen per step" if row["lr"] is None else f"{row['lr']:g}",
                row["seed"],
                row["steps"],
                "–" if row["final_loss"] is None else f"{row['final_loss']:.4g}",
                "–"
                if row["eval_accuracy"] is None
                else f"{100 * row['eval_accuracy']:.2f}%",
            ]
            for row in rows
        ],
        right=["lr", "seed", "steps", "final loss", "test accuracy"],
    )
    corrupt = sum(row["corrupt_images"] for row in rows)
    if corrupt:
        terminal.warning(f"{corrupt} unreadable image(s) were skipped.")
    terminal.message(
        f"Report: {config.out}/report.md (figures in {config.out}/figures; "
        f"redraw as PDF, SVG or panels: corridors plot {config.out} --format pdf)"
    )
    terminal.emit_json({"runs": rows})
    return 0
