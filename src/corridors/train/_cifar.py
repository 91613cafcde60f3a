"""CIFAR-10 from its binary or python release, read without trusting pickle.

Binary release (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` and
`test_batch.bin`, each a sequence of 3,073-byte records (one label byte, then 1,024
red, 1,024 green and 1,024 blue bytes of a 32×32 image, row-major).

Python release (`cifar-10-batches-py/`): `data_batch_1` … `data_batch_5` and
`test_batch`, each a pickled dict with keys `batch_label` (str), `labels` (list of
int), `data` (a uint8 numpy array of shape (N, 3072), same byte layout) and
`filenames` (list of str). Pickle can run arbitrary code, so these files are never
given to `pickle`: a bounded opcode interpreter (`_safe_pickle`) rebuilds exactly this
structure, recognizes the few numpy globals by name without calling them, and refuses
everything else.

Every file is treated as hostile: at most `MAX_FILE_BYTES` are read (a real batch is
~30 MB), nesting, memo indices and the number of opcodes are bounded, an array must
hold exactly the bytes its shape declares, labels must lie in 0…9, and every error
names the file.
"""

import pathlib

import numpy as np

from . import _safe_pickle
from ._datasets import ArraySplit, DataFormatError, Dataset

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
# A real batch is 30,730,000 bytes (binary) or ~31 MB pickled; Python 3's protocol 2
# writes the pixels as UTF-8 text (up to 2 bytes per pixel byte), ~62 MB.
MAX_FILE_BYTES = 96 * 2**20


class RefusedPickleError(DataFormatError):
    """A pickle referenced a global or a construct outside the CIFAR-10 python format."""


def _read_bounded(path: pathlib.Path) -> bytes:
    """The bytes of `path`, refused before reading if there are more than
    `MAX_FILE_BYTES` (checked on the size and again on what is read)."""
    try:
        size = path.stat().st_size
        if size <= MAX_FILE_BYTES:
            with open(path, "rb") as file:
                data = file.read(MAX_FILE_BYTES + 1)
            size = len(data)
    except OSError as error:
        raise DataFormatError(
            f"{path}: cannot be read ({error.strerror or error})."
        ) from None
    if size > MAX_FILE_BYTES:
        raise DataFormatError(
            f"{path}: {size:,} bytes is larger than any CIFAR-10 batch (a real one "
            f"is about 30 MB; the limit is {MAX_FILE_BYTES:,}); refused unread."
        )
    return data


def safe_load_python_batch(path: pathlib.Path) -> dict:
    """Read one CIFAR-10 python batch with the bounded pickle interpreter.

    **Returns:** the raw object (for the original release a dict with bytes keys).

    **Raises:** `RefusedPickleError` for a global or construct outside the format;
    `DataFormatError` for a truncated, malformed or oversized file. Nothing in the
    file is executed.
    """
    data = _read_bounded(path)
    try:
        return _safe_pickle.load(data)
    except _safe_pickle.RefusedGlobal as error:
        raise RefusedPickleError(
            f"{path}: refused to unpickle the global {error}; a CIFAR-10 python "
            "batch holds only a dict of bytes, ints, lists and a numpy uint8 array, "
            "so this file is not one (it may be malicious). Nothing in it was "
            "executed. Use the binary release (cifar-10-binary.tar.gz) or a trusted "
            "copy."
        ) from None
    except _safe_pickle.Refused as error:
        raise RefusedPickleError(
            f"{path}: refused: {error}, which a CIFAR-10 python batch never has "
            "(the file may be malicious). Nothing in it was executed."
        ) from None
    except EOFError as error:
        raise DataFormatError(
            f"{path}: truncated pickle ({len(data):,} bytes; ended before the batch "
            f"was complete: {error})."
        ) from None
    except (MemoryError, RecursionError):
        raise DataFormatError(
            f"{path}: pickle too large to rebuild; not a CIFAR-10 python batch."
        ) from None
    except Exception as error:  # any other rule broken: malformed
        raise DataFormatError(
            f"{path}: malformed pickle, not a CIFAR-10 python batch "
            f"({type(error).__name__}: {str(error)[:200]})."
        ) from None


def _key(batch: dict, name: str, path: pathlib.Path):
    for key in (name.encode(), name):
        if key in batch:
            return batch[key]
    found = sorted(repr(key)[:40] for key in list(batch)[:8])
    raise DataFormatError(
        f"{path}: malformed CIFAR-10 python batch: no {name!r} key (found "
        f"{found}{' …' if len(batch) > 8 else ''})."
    )


def _check_labels(labels: np.ndarray, n: int, path: pathlib.Path) -> np.ndarray:
    if labels.shape != (n,):
        raise DataFormatError(
            f"{path}: {n} images but {labels.size} labels; the file is malformed."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= 10):
        raise DataFormatError(
            f"{path}: labels must lie in 0…9, found {int(labels.min())}…"
            f"{int(labels.max())}; the file is malformed."
        )
    return labels.astype(np.int32)


def _planar_to_nhwc(data: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def read_python_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) int32) of one python-release file."""
    batch = safe_load_python_batch(path)
    if not isinstance(batch, dict):
        raise DataFormatError(
            f"{path}: malformed CIFAR-10 python batch: expected a dict, got "
            f"{type(batch).__name__}."
        )
    data = _key(batch, "data", path)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8):
        raise DataFormatError(
            f"{path}: malformed CIFAR-10 python batch: 'data' must be a uint8 numpy "
            f"array, got {type(data).__name__} {getattr(data, 'dtype', '')}."
        )
    if data.ndim != 2 or data.shape[1] != RECORD - 1 or data.shape[0] == 0:
        raise DataFormatError(
            f"{path}: malformed CIFAR-10 python batch: 'data' must have shape "
            f"(N, 3072) with N ≥ 1, got {data.shape}."
        )
    raw_labels = _key(batch, "labels", path)
    if not isinstance(raw_labels, (list, tuple)):
        raise DataFormatError(
            f"{path}: malformed CIFAR-10 python batch: 'labels' must be a list of int."
        )
    if len(raw_labels) != data.shape[0]:
        raise DataFormatError(
            f"{path}: {data.shape[0]} images but {len(raw_labels)} labels; the file "
            "is malformed."
        )
    if not all(type(label) is int for label in raw_labels):
        raise DataFormatError(
            f"{path}: malformed CIFAR-10 python batch: 'labels' must be a list of int."
        )
    # Range-checked as Python ints: a label of 2**70 must not overflow int64 first.
    if raw_labels and (min(raw_labels) < 0 or max(raw_labels) >= 10):
        raise DataFormatError(
            f"{path}: labels must lie in 0…9, found {min(raw_labels)}…"
            f"{max(raw_labels)}"[:200]
            + "; the file is malformed."
        )
    labels = _check_labels(np.asarray(raw_labels, np.int64), data.shape[0], path)
    return _planar_to_nhwc(data), labels


def read_binary_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) int32) of one binary-release file."""
    raw = np.frombuffer(_read_bounded(path), dtype=np.uint8)
    if raw.size == 0:
        raise DataFormatError(f"{path}: empty file; expected 3,073-byte records.")
    if raw.size % RECORD:
        raise DataFormatError(
            f"{path}: {raw.size} bytes is not a whole number of 3,073-byte records "
            f"({raw.size // RECORD} records and {raw.size % RECORD} bytes left over); "
            "the file is truncated or not a CIFAR-10 binary batch."
        )
    records = raw.reshape(-1, RECORD)
    labels = _check_labels(records[:, 0].astype(np.int64), len(records), path)
    return _planar_to_nhwc(records[:, 1:]), labels


def _locate(data_dir: pathlib.Path) -> tuple[pathlib.Path, str]:
    """The folder holding the batches and the release ("binary" or "python")."""
    candidates = (
        data_dir,
        data_dir / "cifar-10-batches-bin",
        data_dir / "cifar-10-batches-py",
    )
    for folder in candidates:
        if (folder / "data_batch_1.bin").exists():
            return folder, "binary"
    for folder in candidates:
        if (folder / "data_batch_1").exists():
            return folder, "python"
    raise DataFormatError(
        f"cifar10: no CIFAR-10 batches under {data_dir}: expected data_batch_1.bin … "
        "data_batch_5.bin and test_batch.bin (binary release) or data_batch_1 … "
        "data_batch_5 and test_batch (python release), directly there or in "
        "cifar-10-batches-bin/ or cifar-10-batches-py/."
    )


def cifar10(data_dir: str | pathlib.Path) -> Dataset:
    """CIFAR-10 from the binary release or, if there is none, the python release.

    Looks in `data_dir`, `data_dir/cifar-10-batches-bin` and
    `data_dir/cifar-10-batches-py`. The python release is read with a restricted
    unpickler (see the module docstring): a file that would run code is refused and
    nothing in it is executed. The training split gets the standard augmentation
    (random crop of the 4-pixel zero-padded image, horizontal flip).

    **Arguments:**

    - `data_dir`: the folder holding the release.

    **Returns:**

    A `Dataset` with 32×32×3 uint8 images, 10 classes.

    **Raises:**

    `DataFormatError` (a `ValueError`) naming the file for a missing, truncated,
    malformed or refused file.

    **Example:**

    ```python
    import pathlib
    import tempfile
    import numpy as np
    import corridors.train as ct
    record = np.zeros(3073, np.uint8)  # a label byte, then 3 × 1,024 pixel bytes
    record[0] = 7
    with tempfile.TemporaryDirectory() as folder:  # one image per batch file
        for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
            (pathlib.Path(folder) / f"{name}.bin").write_bytes(record.tobytes())
        data = ct.cifar10(folder)
    print(len(data.train), len(data.test), data.image_shape)  # 5 1 (32, 32, 3)
    print(data.test.labels)  # [7]
    ```
    """
    data_dir = pathlib.Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise DataFormatError(f"cifar10: `data_dir` {data_dir} is not a directory.")
    folder, release = _locate(data_dir)
    suffix, reader = (
        (".bin", read_binary_batch) if release == "binary" else ("", read_python_batch)
    )
    splits = []
    for names in (TRAIN_FILES, (TEST_FILE,)):
        images, labels = [], []
        for name in names:
            path = folder / f"{name}{suffix}"
            if not path.is_file():
                raise DataFormatError(
                    f"cifar10: missing {path} (the {release} release has "
                    f"{', '.join(n + suffix for n in (*TRAIN_FILES, TEST_FILE))})."
                )
            batch_images, batch_labels = reader(path)
            images.append(batch_images)
            labels.append(batch_labels)
        splits.append((np.concatenate(images), np.concatenate(labels)))
    (train_images, train_labels), (test_images, test_labels) = splits
    return Dataset(
        name="cifar10",
        train=ArraySplit(train_images, train_labels, crop_padding=4),
        test=ArraySplit(test_images, test_labels),
        image_shape=(32, 32, 3),
        num_classes=10,
        mean=MEAN,
        std=STD,
        description=f"CIFAR-10 {release} release in {folder}",
    )
