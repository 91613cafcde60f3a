"""Bounded parameter snapshots and the post-hoc RSI/EB along the training path.

At most `count` + 1 snapshots are kept, at steps 0, k, 2k, … with
k = max(1, total_steps // count), as `.npz` files of the flattened parameters.
After training, RSI_k = ⟨g_k, θ_k − θ*⟩/‖θ_k − θ*‖² and EB_k = ‖g_k‖/‖θ_k − θ*‖ are
computed with `corridors.path_geometry` against the final parameters θ*, where g_k
is the gradient of the measured loss at snapshot k; one snapshot at a time, so the
memory is that of two parameter copies whatever the number of snapshots.
"""

import pathlib

import jax
import numpy as np

from .._paths import path_geometry


def snapshot_interval(total_steps: int, count: int) -> int:
    """Steps between snapshots (0: snapshots off)."""
    if count <= 0:
        return 0
    return max(1, total_steps // count)


def _flat(params: dict) -> dict[str, np.ndarray]:
    flat, _ = jax.tree_util.tree_flatten_with_path(params)
    return {
        "/".join(str(getattr(key, "key", key)) for key in path): np.asarray(leaf)
        for path, leaf in flat
    }


def save_snapshot(folder: pathlib.Path, step: int, params: dict) -> pathlib.Path:
    """Write `params` (host arrays) to `folder/step_<step>.npz`, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:09d}.npz"
    temporary = folder / f".step_{step:09d}.tmp.npz"
    np.savez(temporary, **_flat(params))
    temporary.replace(path)
    return path


def load_snapshot(path: pathlib.Path, like: dict) -> dict:
    """Read a snapshot into the structure of `like`."""
    with np.load(path) as data:
        arrays = dict(data)
    flat, treedef = jax.tree_util.tree_flatten_with_path(like)
    leaves = [
        arrays["/".join(str(getattr(key, "key", key)) for key in p)] for p, _ in flat
    ]
    return jax.tree.unflatten(treedef, leaves)


def snapshot_steps(folder: pathlib.Path, up_to: int) -> list[int]:
    """Steps of the snapshots in `folder` at or before `up_to`, in order."""
    if not folder.is_dir():
        return []
    steps = sorted(int(path.stem.split("_")[1]) for path in folder.glob("step_*.npz"))
    return [step for step in steps if step <= up_to]


def rsi_eb(gradients, snapshots, final) -> tuple[float, float]:
    """RSI and EB of one snapshot with gradient `gradients` against `final`."""
    add_axis = lambda tree: jax.tree.map(lambda leaf: leaf[None], tree)  # noqa: E731
    rsi, eb = path_geometry(add_axis(snapshots), add_axis(gradients), final)
    return float(rsi[0]), float(eb[0])
