"""orbax checkpoints of a run: the training state, the data-iterator position and a
little JSON (unreadable-image counts), each verified before it is trusted.

The training state is one pytree: step, parameters, batch-norm statistics, optimizer
state, the run's PRNG key and the loss accumulators of the current logging window.
orbax writes each checkpoint into a temporary folder and renames it when complete, so
a run killed mid-save leaves the previous checkpoint as the latest one.

Once orbax has finished a checkpoint, the size and CRC-32 of every file in it go to
`<step>/checksums.json`. On resume, `latest_step` returns the newest checkpoint whose
files all match (or, for one without checksums, whose metadata parse and whose
required files exist); newer damaged ones are named in one line on stderr and moved
aside to `<step>.damaged` when an older one is restored. A write that fails (a full
disk, a folder that cannot be written) raises one `CheckpointError` naming the
step, the folder and the reason, the previous checkpoints intact.
"""

import json
import logging
import os
import pathlib
import shutil
import sys
import zlib
from typing import Any

import jax
import orbax.checkpoint as ocp

logging.getLogger("absl").setLevel(logging.WARNING)


class _QuietOrbax(logging.Filter):
    """Drop orbax's own error logs (a traceback per background thread: ~400 lines
    for one full disk); every failure they describe is raised here as one
    `CheckpointError`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and "orbax" in record.pathname)


logging.getLogger("absl").addFilter(_QuietOrbax())

CHECKSUMS = "checksums.json"
# What every checkpoint holds besides the files of the state: JSON that must parse,
# and the OCDBT manifest of the state.
_JSON_FILES = (
    "_CHECKPOINT_METADATA",
    "state/_METADATA",
    "data/metadata",
    "extra/metadata",
)
_REQUIRED = ("state/manifest.ocdbt",)


class CheckpointError(OSError):
    """A checkpoint could not be written or read back (an `OSError`)."""


def _crc(path: pathlib.Path) -> int:
    crc = 0
    with open(path, "rb") as file:
        while chunk := file.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def _files(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def _reason(error: BaseException) -> str:
    """One line for an error from orbax, the file system or a background thread:
    the first OS error in its chain of causes, else its own first line."""
    cause, seen = error, 0
    while cause is not None and seen < 20:
        if isinstance(cause, OSError) and cause.strerror:
            where = f": {cause.filename}" if cause.filename else ""
            return f"{cause.strerror}{where}"
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


_PROBE_BYTES = 1 << 20


def _write_failure(folder: pathlib.Path, error: BaseException) -> str:
    """Why a write into `folder` failed, asked of the file system itself: orbax's
    background writers (tensorstore) report an OS error only as text, so write a
    probe file of 1 MiB and take the `OSError` it meets; if it meets none, orbax's
    own reason and the free space."""
    probe = folder / f".write-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as file:
            file.write(bytes(_PROBE_BYTES))
            file.flush()
            os.fsync(file.fileno())
    except OSError as failure:
        return f"{failure.strerror} (errno {failure.errno})"
    finally:
        probe.unlink(missing_ok=True)
    free = shutil.disk_usage(folder).free
    return f"{_reason(error)}; {free / 2**20:.0f} MiB free"


def verify(folder: pathlib.Path) -> str | None:
    """Why the checkpoint in `folder` cannot be trusted, or None if it can."""
    checksums = folder / CHECKSUMS
    try:
        if checksums.exists():
            recorded = json.loads(checksums.read_text())
            if not isinstance(recorded, dict) or not recorded:
                return f"{CHECKSUMS} is malformed"
            for name, entry in recorded.items():
                path = folder / name
                if not path.is_file():
                    return f"{name} is missing"
                size, crc = entry
                if path.stat().st_size != size:
                    return (
                        f"{name} has {path.stat().st_size} bytes, {size} were written"
                    )
                if _crc(path) != crc:
                    return f"{name} does not match its checksum"
            return None
        for name in _REQUIRED:
            if not (folder / name).is_file():
                return f"{name} is missing"
        for name in _JSON_FILES:
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            json.loads(path.read_text())
    except (OSError, ValueError, TypeError) as error:
        return f"unreadable ({_reason(error)})"
    return None


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
        self.skipped: dict[int, str] = {}  # damaged step → why, found by latest_step
        self._unsealed: list[int] = []  # saved, checksums not yet written
        self._last_saved = -1
        self._primary = jax.process_index() == 0
        try:
            self._manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=keep,
                    create=True,
                    cleanup_tmp_directories=True,
                    enable_async_checkpointing=asynchronous,
                ),
            )
        except Exception as error:  # orbax raises many kinds
            raise CheckpointError(
                f"checkpoints: cannot use {self.directory} ({_reason(error)})."
            ) from None

    def _steps(self) -> list[int]:
        """Every finished step folder, newest first (orbax's temporaries excluded)."""
        if not self.directory.is_dir():
            return []
        return sorted(
            (
                int(p.name)
                for p in self.directory.iterdir()
                if p.name.isascii() and p.name.isdigit()
            ),
            reverse=True,
        )

    def latest_step(self) -> int | None:
        """The step of the newest intact checkpoint, or None.

        Newer damaged checkpoints are skipped, named once on stderr and listed in
        `skipped`; if none is intact, the error says so.
        """
        self.wait()
        steps = self._steps()
        for step in steps:
            reason = verify(self.directory / str(step))
            if reason is None:
                return step
            if step not in self.skipped:
                self.skipped[step] = reason
                older = [s for s in steps if s < step]
                print(
                    f"corridors.train: warning: checkpoint step {step} in "
                    f"{self.directory} is damaged ({reason}); "
                    + ("trying the one before it." if older else "no older one."),
                    file=sys.stderr,
                )
        if steps:
            raise CheckpointError(
                f"checkpoints: no intact checkpoint in {self.directory} (damaged: "
                + ", ".join(f"step {s}: {self.skipped[s]}" for s in steps)
                + "); remove that folder to start the run again."
            )
        return None

    def save(self, step: int, state: Any, iterator_state: dict, extra: dict) -> None:
        """Save `state`, the iterator position and `extra` (JSON) at `step`."""
        self.wait()
        self._last_saved = step
        try:
            # orbax's first act is a folder; if that fails inside orbax, its
            # background threads wait (~10 min) for a signal that never comes and
            # hold the process open, so find out here first.
            probe = self.directory / f".write-probe-{os.getpid()}"
            probe.mkdir()
            probe.rmdir()
        except OSError as error:  # the folder itself is named in the message
            error = OSError(error.errno, error.strerror)
            raise self._write_error(step, error) from None
        try:
            self._manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state),
                    data=ocp.args.JsonSave(iterator_state),
                    extra=ocp.args.JsonSave(extra),
                ),
                force=True,
            )
        except Exception as error:
            raise self._write_error(step, error) from None
        self._unsealed.append(step)

    def _write_error(self, step: int, error: BaseException) -> CheckpointError:
        intact = [
            s
            for s in self._steps()
            if s != step and verify(self.directory / str(s)) is None
        ]
        kept = (
            f"the last intact checkpoint is step {intact[0]}; resume from it"
            if intact
            else "no checkpoint was kept"
        )
        return CheckpointError(
            f"checkpoints: could not write step {step} to {self.directory} "
            f"({_write_failure(self.directory, error)}); {kept} once the folder "
            "can be written."
        )

    def restore(self, step: int, like: Any) -> tuple[Any, dict, dict]:
        """(state, iterator state, extra) of checkpoint `step`; `like` gives the
        structure, shapes, dtypes and shardings of the state. Damaged checkpoints
        newer than `step` are moved aside first, so new saves do not meet them."""
        newer = [s for s in self.skipped if s > step]
        if newer:
            for s in newer if self._primary else ():
                source = self.directory / str(s)
                if source.exists():
                    os.replace(source, self.directory / f"{s}.damaged")
            self._manager.reload()
        abstract = jax.tree.map(
            lambda leaf: jax.ShapeDtypeStruct(
                leaf.shape, leaf.dtype, sharding=leaf.sharding
            ),
            like,
        )
        try:
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract),
                    data=ocp.args.JsonRestore(),
                    extra=ocp.args.JsonRestore(),
                ),
            )
        except Exception as error:
            raise CheckpointError(
                f"checkpoints: step {step} in {self.directory} cannot be restored "
                f"({_reason(error)}); move that folder aside to resume from the one "
                "before it."
            ) from None
        return restored["state"], restored["data"], restored["extra"]

    def wait(self) -> None:
        """Block until every checkpoint in flight is written, then record checksums."""
        try:
            self._manager.wait_until_finished()
            self._manager.check_for_errors()
        except Exception as error:
            self._unsealed.clear()
            raise self._write_error(self._last_saved, error) from None
        while self._unsealed:
            self._seal(self._unsealed.pop(0))

    def _seal(self, step: int) -> None:
        folder = self.directory / str(step)
        if not (self._primary and folder.is_dir()):
            return  # removed by max_to_keep already, or another host's job
        try:
            recorded = {
                str(p.relative_to(folder)): [p.stat().st_size, _crc(p)]
                for p in _files(folder)
            }
            temporary = folder / f".{CHECKSUMS}.tmp"
            temporary.write_text(json.dumps(recorded))
            os.replace(temporary, folder / CHECKSUMS)
        except OSError as error:
            raise self._write_error(step, error) from None

    def close(self) -> None:
        try:
            self.wait()
        finally:
            try:
                self._manager.close()
            except Exception as error:  # a write that failed in the background
                raise self._write_error(self._last_saved, error) from None
