"""What every benchmark script shares: its command line, the machine line, the table."""

import argparse
import os
import platform

import jax
from rich.console import Console
from rich.table import Table

console = Console(width=max(Console().width, 120))


def parse_args(description: str) -> argparse.Namespace:
    """`--quick` (fewer repeats, for a smoke run) and `--repeats N`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats (a smoke run, noisier)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="repeats per timing (min is kept)"
    )
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 3 if args.quick else 10
    return args


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (falls back to `platform.processor()`)."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line: OS, CPU model and count, JAX version, backend and devices."""
    devices = jax.devices()
    kinds = sorted({device.device_kind for device in devices})
    return (
        f"{platform.system()} {platform.machine()} · {cpu_model()} · "
        f"{os.cpu_count()} CPUs · python {platform.python_version()} · "
        f"jax {jax.__version__} backend={jax.default_backend()} "
        f"({len(devices)} × {', '.join(kinds)}) · x64={jax.config.jax_enable_x64}"
    )


def print_header(title: str, args: argparse.Namespace) -> None:
    console.rule(f"[bold]{title}")
    console.print(f"machine: {machine()}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load is not None:
        console.print(
            f"load average (1 min): {load[0]:.2f} — ratios on a loaded machine are "
            "unreliable"
        )
    console.print(
        f"repeats: {args.repeats} (min kept){' · --quick' if args.quick else ''}"
    )


def seconds(value: float) -> str:
    """A duration with a readable unit."""
    if value < 1e-3:
        return f"{value * 1e6:.1f} µs"
    if value < 1.0:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.3f} s"


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def verdict(
    ratio: float, target: float, *, at_most: bool, percent: bool = False
) -> str:
    """'met' / 'MISSED' for a ratio against its target (≤ target if `at_most`)."""
    ok = ratio <= target if at_most else ratio >= target
    sign = "≤" if at_most else "≥"
    shown = f"{target:.0%}" if percent else f"{target:g}"
    return f"{'met' if ok else 'MISSED'} (target {sign} {shown})"
