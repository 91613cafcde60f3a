"""orbax checkpoints of a run: the training state, the data-iterator position and a
little JSON (unreadable-image counts).

The training state is one pytree: step, parameters, batch-norm statistics, optimizer
state, the run's PRNG key and the loss accumulators of the current logging window.
orbax writes each checkpoint into a temporary folder and renames it when complete, so
a run killed mid-save leaves the previous checkpoint as the latest one.
"""

import logging
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

logging.getLogger("absl").setLevel(logging.WARNING)


class Checkpoints:
    """Save and restore the checkpoints of one run.

    **Arguments:**

    - `directory`: where the step folders go.
    - `keep`: how many of the latest checkpoints to keep.
    - `asynchronous`: write in a background thread (the state is copied to host
      memory before `save` returns, so training may go on at once).
    """

    def __init__(self, directory: pathlib.Path, *, keep: int, asynchronous: bool):
        self.directory = pathlib.Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep,
                create=True,
                cleanup_tmp_directories=True,
                enable_async_checkpointing=asynchronous,
            ),
        )

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        return self._manager.latest_step()

    def save(self, step: int, state: Any, iterator_state: dict, extra: dict) -> None:
        """Save `state`, the iterator position and `extra` (JSON) at `step`."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                data=ocp.args.JsonSave(iterator_state),
                extra=ocp.args.JsonSave(extra),
            ),
            force=True,
        )

    def restore(self, step: int, like: Any) -> tuple[Any, dict, dict]:
        """(state, iterator state, extra) of checkpoint `step`; `like` gives the
        structure, shapes, dtypes and shardings of the state."""
        abstract = jax.tree.map(
            lambda leaf: jax.ShapeDtypeStruct(
                leaf.shape, leaf.dtype, sharding=leaf.sharding
            ),
            like,
        )
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract),
                data=ocp.args.JsonRestore(),
                extra=ocp.args.JsonRestore(),
            ),
        )
        return restored["state"], restored["data"], restored["extra"]

    def wait(self) -> None:
        """Block until every checkpoint in flight is written."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
