"""Checkpoints that fall back: the newest one damaged in 8 ways (the previous one
intact), none intact, a full disk and an unwritable folder; and a training run that
resumes from the older checkpoint and still ends bit for bit where an undisturbed
run ends.

The damage cases run in one child process under a memory limit, as `nobody` when
the tests run as root (so that an unwritable folder is unwritable).
"""

import os
import pathlib
import shutil
import tempfile

import numpy as np
import pytest

pytest.importorskip("orbax.checkpoint")

from .limited import run_cases

PRELUDE = """
import json, pathlib, resource, shutil, signal
import jax, jax.numpy as jnp
from corridors.train._checkpoint import Checkpoints, CheckpointError

def state(k):
    return {"w": jnp.arange(6.0).reshape(2, 3) * k, "step": jnp.int32(k)}

def two(root):
    root = pathlib.Path(root)
    shutil.rmtree(root, ignore_errors=True)
    checkpoints = Checkpoints(root, keep=3, asynchronous=True)
    for k in (1, 2):
        checkpoints.save(k, state(k), {"position": k}, {"corrupt_per_process": [k]})
    checkpoints.close()
    return root

def damage(folder, kind):
    data = sorted((folder / "state").rglob("d/*"))[0]
    if kind == "truncated data file":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif kind == "flipped byte in a data file":
        raw = bytearray(data.read_bytes()); raw[len(raw) // 2] ^= 1; data.write_bytes(raw)
    elif kind == "deleted manifest":
        (folder / "state" / "manifest.ocdbt").unlink()
    elif kind == "garbage checkpoint metadata":
        (folder / "_CHECKPOINT_METADATA").write_text("{not json")
    elif kind == "garbage state metadata":
        (folder / "state" / "_METADATA").write_text("\\x00garbage")
    elif kind == "garbage iterator JSON":
        (folder / "data" / "metadata").write_text('{"position": ')
    elif kind == "garbage extra JSON":
        (folder / "extra" / "metadata").write_text("[[[")
    elif kind == "emptied state":
        shutil.rmtree(folder / "state"); (folder / "state").mkdir()
    elif kind == "deleted checksums, garbage JSON":
        (folder / "checksums.json").unlink()
        (folder / "data" / "metadata").write_text("{")
    else:
        raise ValueError(kind)

def fallback(root, kind):
    root = two(root)
    damage(root / "2", kind)
    checkpoints = Checkpoints(root, keep=3, asynchronous=True)
    step = checkpoints.latest_step()
    restored, position, extra = checkpoints.restore(step, state(0))
    # The run goes on: step 2 is written again next to the damaged one moved aside.
    checkpoints.save(2, state(5), {"position": 5}, {"corrupt_per_process": [5]})
    checkpoints.close()
    again = Checkpoints(root, keep=3, asynchronous=True)
    newest = again.latest_step()
    again.close()
    return [step, restored["w"].tolist(), position, extra, checkpoints.skipped,
            newest, sorted(p.name for p in root.iterdir())]

def none_intact(root):
    root = two(root)
    damage(root / "1", "deleted manifest")
    damage(root / "2", "truncated data file")
    Checkpoints(root, keep=3, asynchronous=True).latest_step()

def full_disk(root, asynchronous):
    root = two(root)
    checkpoints = Checkpoints(root, keep=3, asynchronous=asynchronous)
    checkpoints.latest_step()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit: EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.RLIM_INFINITY))
    try:
        checkpoints.save(3, state(3), {"position": 3}, {"corrupt_per_process": [3]})
        checkpoints.close()
        return "written"
    except CheckpointError as error:
        return [str(error), Checkpoints(root, keep=3, asynchronous=True).latest_step()]
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        try:
            checkpoints.close()
        except CheckpointError:
            pass

def unwritable(root):
    root = two(root)
    checkpoints = Checkpoints(root, keep=3, asynchronous=True)
    root.chmod(0o555)
    try:
        checkpoints.save(3, state(3), {"position": 3}, {"corrupt_per_process": [3]})
        checkpoints.wait()
        return "written"
    except CheckpointError as error:
        try:
            checkpoints.close()  # as the run does; must not hang on orbax's threads
        except CheckpointError:
            pass
        return [str(error), Checkpoints(root, keep=3, asynchronous=True).latest_step()]
    finally:
        root.chmod(0o755)
"""

KINDS = [
    "truncated data file",
    "flipped byte in a data file",
    "deleted manifest",
    "garbage checkpoint metadata",
    "garbage state metadata",
    "garbage iterator JSON",
    "garbage extra JSON",
    "emptied state",
    "deleted checksums, garbage JSON",
]


@pytest.fixture(scope="module")
def damaged():
    root = pathlib.Path(tempfile.mkdtemp(prefix="corridors-checkpoints-"))
    root.chmod(0o777)  # the child works here as `nobody`
    locked = root / "locked"  # … but not here
    locked.mkdir(mode=0o755)
    cases = [
        (kind, f"fallback({str(root / str(i))!r}, {kind!r})")
        for i, kind in enumerate(KINDS)
    ]
    cases += [
        ("none intact", f"none_intact({str(root / 'none')!r})"),
        ("full disk async", f"full_disk({str(root / 'full-a')!r}, True)"),
        ("full disk sync", f"full_disk({str(root / 'full-s')!r}, False)"),
        ("unwritable", f"unwritable({str(root / 'ro')!r})"),
        (
            "unwritable new",
            f"Checkpoints(pathlib.Path({str(locked / 'run')!r}), keep=1, asynchronous=True)",
        ),
    ]
    try:
        outcomes, stderr = run_cases(
            PRELUDE, cases, headroom=2 << 30, drop_to_nobody=True, timeout=300
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return root, outcomes, stderr


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_newest_checkpoint_falls_back_to_the_previous(damaged, kind):
    root, outcomes, stderr = damaged
    outcome = outcomes[kind]
    assert outcome["ok"], outcome
    step, w, position, extra, skipped, newest, names = outcome["value"]
    assert step == 1
    np.testing.assert_array_equal(w, np.arange(6.0).reshape(2, 3) * 1)
    assert position == {"position": 1} and extra == {"corrupt_per_process": [1]}
    assert list(skipped) == ["2"]
    # One line on stderr names the damaged step, its folder and what was wrong.
    folder = root / str(KINDS.index(kind))
    (line,) = [
        line for line in stderr.splitlines() if f"in {folder} is damaged" in line
    ]
    assert "checkpoint step 2" in line and skipped["2"] in line
    # The damaged one was moved aside; the step written after the fallback is intact.
    assert names == ["1", "2", "2.damaged"] and newest == 2


def test_no_intact_checkpoint_says_so(damaged):
    _, outcomes, _ = damaged
    outcome = outcomes["none intact"]
    assert not outcome["ok"] and outcome["type"] == "CheckpointError"
    message = outcome["message"]
    assert "no intact checkpoint" in message
    assert "step 1: state/manifest.ocdbt is missing" in message
    assert "step 2: state/" in message


CHAINED = (
    "\n\nDuring handling of the above exception, another exception occurred:\n\n"
    "Traceback (most recent call last):"
)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_full_disk_is_one_line_and_resumable(damaged, mode):
    _, outcomes, stderr = damaged
    outcome = outcomes[f"full disk {mode}"]
    assert outcome["ok"], outcome
    message, latest = outcome["value"]
    assert "could not write step 3" in message and "File too large" in message
    assert "the last intact checkpoint is step 2" in message and "\n" not in message
    assert latest == 2  # the run resumes from the last good checkpoint
    # orbax's per-thread tracebacks (~400 lines on main) are not printed.
    # Under heavy load an orbax background thread can still post to asyncio's loop
    # after it closed at interpreter exit ("Event loop is closed", once, after the run
    # has ended): a known shutdown race, left out here and reported in the issue note.
    # Its report may chain the write error the thread met before it ("During handling
    # of the above exception"), so a chain counts as one report. Every other traceback
    # still fails the test.
    reports = stderr.replace(CHAINED, "\n").split("Traceback (most recent call last):")
    tracebacks = [block for block in reports[1:] if "Event loop is closed" not in block]
    assert not tracebacks and "ERROR:absl" not in stderr


def test_unwritable_folder_is_one_line_and_resumable(damaged):
    _, outcomes, _ = damaged
    if os.geteuid() == 0 and outcomes["unwritable"]["value"] == "written":
        pytest.skip("cannot drop root privileges here")
    message, latest = outcomes["unwritable"]["value"]
    assert "could not write step 3" in message and "Permission denied" in message
    assert latest == 2
    new = outcomes["unwritable new"]
    assert not new["ok"] and new["type"] == "CheckpointError"
    assert "cannot use" in new["message"] and "Permission denied" in new["message"]


@pytest.mark.slow  # two training runs: ~25 s
def test_training_resumes_from_the_previous_checkpoint_bit_for_bit(tmp_path, capfd):
    pytest.importorskip("flax")
    import dataclasses

    import corridors.train as ct

    config = ct.TrainConfig(
        model="mlp", width=8, dataset="synthetic", synthetic_shape=(4, 4, 1),
        synthetic_classes=3, synthetic_size=64, batch_size=16, steps=6, lr=(0.5,),
        measure_every=0, log_every=2, checkpoint_every=3, snapshots=0, quiet=True,
        out=str(tmp_path / "out"),
    )  # fmt: skip
    (summary,) = ct.run(config)
    folder = summary.run_dir / "checkpoints"

    def final_params():
        import jax
        import orbax.checkpoint as ocp

        with ocp.CheckpointManager(folder) as manager:
            step = manager.latest_step()
            state = manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore())
            )["state"]
        return step, [np.asarray(leaf) for leaf in jax.tree.leaves(state)]

    step, reference = final_params()
    assert step == 6
    data = sorted((folder / "6" / "state").rglob("d/*"))[0]
    data.write_bytes(data.read_bytes()[:10])
    capfd.readouterr()
    (resumed,) = ct.run(dataclasses.replace(config, resume=True))
    err = capfd.readouterr().err
    assert f"checkpoint step 6 in {folder} is damaged" in err
    assert resumed.resumed_from == 3
    step, leaves = final_params()
    assert step == 6 and len(leaves) == len(reference)
    for a, b in zip(reference, leaves, strict=True):
        np.testing.assert_array_equal(a, b)  # bit for bit
