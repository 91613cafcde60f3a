"""CIFAR-10 from its binary or python release, read without trusting pickle.

Binary release (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` and
`test_batch.bin`, each a sequence of 3,073-byte records (one label byte, then 1,024
red, 1,024 green and 1,024 blue bytes of a 32×32 image, row-major).

Python release (`cifar-10-batches-py/`): `data_batch_1` … `data_batch_5` and
`test_batch`, each a pickled dict with keys `batch_label` (str), `labels` (list of
int), `data` (a uint8 numpy array of shape (N, 3072), same byte layout) and
`filenames` (list of str). Pickle can run arbitrary code, so these files are read with
an unpickler that resolves exactly the three globals numpy needs to rebuild an array
(`_reconstruct`, `ndarray`, `dtype`) and refuses every other global before anything is
called.
"""

import io
import pathlib
import pickle

import numpy as np

from ._datasets import ArraySplit, DataFormatError, Dataset

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

try:  # numpy ≥ 2
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

# Everything a CIFAR-10 python batch may reference. numpy 1.x pickles name the module
# numpy.core.multiarray, numpy 2.x numpy._core.multiarray; both map to the same function.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RefusedPickleError(DataFormatError):
    """A pickle referenced a global outside the CIFAR-10 python format."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: pathlib.Path):
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedPickleError(
                f"{self._path}: refused to unpickle the global {module}.{name}; a "
                "CIFAR-10 python batch holds only a dict of bytes, ints, lists and a "
                "numpy uint8 array, so this file is not one (it may be malicious). "
                "Nothing in it was executed. Use the binary release "
                "(cifar-10-binary.tar.gz) or a trusted copy."
            ) from None

    def persistent_load(self, pid):
        raise RefusedPickleError(
            f"{self._path}: refused a persistent id in the pickle; not a CIFAR-10 "
            "python batch."
        )


def safe_load_python_batch(path: pathlib.Path) -> dict:
    """Unpickle one CIFAR-10 python batch with the restricted unpickler.

    **Returns:** the raw dict (keys as stored: bytes for the original release).

    **Raises:** `RefusedPickleError` for a disallowed global; `DataFormatError` for a
    truncated or malformed pickle.
    """
    data = path.read_bytes()
    try:
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except RefusedPickleError:
        raise
    except EOFError as error:
        raise DataFormatError(
            f"{path}: truncated pickle ({len(data)} bytes; ended before the batch "
            f"was complete: {error})."
        ) from error
    except Exception as error:  # any other unpickling failure: malformed
        raise DataFormatError(
            f"{path}: malformed pickle, not a CIFAR-10 python batch "
            f"({type(error).__name__}: {error})."
        ) from error


def _key(batch: dict, name: str, path: pathlib.Path):
    for key in (name.encode(), name):
        if key in batch:
            return batch[key]
    raise DataFormatError(
        f"{path}: malformed CIFAR-10 python batch: no {name!r} key (found "
        f"{sorted(map(repr, batch))})."
    )


def _check_labels(labels: np.ndarray, n: int, path: pathlib.Path) -> np.ndarray:
    if labels.shape != (n,):
        raise DataFormatError(
            f"{path}: {n} images but {labels.size} labels; the file is malformed."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
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
    if not isinstance(raw_labels, (list, tuple)) or not all(
        isinstance(label, int) and not isinstance(label, bool) for label in raw_labels
    ):
        raise DataFormatError(
            f"{path}: malformed CIFAR-10 python batch: 'labels' must be a list of int."
        )
    labels = _check_labels(np.asarray(raw_labels, np.int64), data.shape[0], path)
    return _planar_to_nhwc(data), labels


def read_binary_batch(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) int32) of one binary-release file."""
    raw = np.fromfile(path, dtype=np.uint8)
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
