"""Generators of tiny data sets in the on-disk formats `corridors.train` reads.

- CIFAR-10 binary release: 3,073-byte records (label, 1,024 R, 1,024 G, 1,024 B).
- CIFAR-10 python release: pickled dicts, written the way the original Python 2
  release was (protocol 2, byte strings as BINSTRING opcodes, arrays rebuilt by
  `numpy.core.multiarray._reconstruct`), or with protocol 3 and bytes keys.
- ImageNet layout: `train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`, optionally with a
  corrupt file.

Every writer returns what a correct loader must give back.
"""

import io
import pathlib
import pickle
import struct

import numpy as np

TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"


def random_cifar(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n random images (n, 32, 32, 3) uint8 and labels in 0…9."""
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    return images, labels


def planar(images: np.ndarray) -> np.ndarray:
    """(n, 32, 32, 3) → (n, 3072) in the release's channel-planar byte order."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def write_cifar_binary(folder: pathlib.Path, per_file: int = 8, seed: int = 0) -> dict:
    """Write data_batch_1..5.bin and test_batch.bin; returns {name: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for name in [*TRAIN_FILES, TEST_FILE]:
        images, labels = random_cifar(per_file, rng)
        records = np.concatenate(
            [labels.astype(np.uint8)[:, None], planar(images)], axis=1
        )
        (folder / f"{name}.bin").write_bytes(records.tobytes())
        written[name] = (images, labels)
    return written


class Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote it: `str` (here: bytes) values as
    BINSTRING opcodes and numpy's globals under `numpy.core`."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file):
        super().__init__(file, protocol=2)

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        name = name or obj.__qualname__
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


def python_batch_bytes(images: np.ndarray, labels: np.ndarray, *, style: str) -> bytes:
    """A pickled CIFAR-10 python batch: style "python2" or "protocol3"."""
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [int(label) for label in labels],
        b"data": planar(images),
        b"filenames": [f"image_{i}.png".encode() for i in range(len(labels))],
    }
    if style == "protocol3":
        return pickle.dumps(batch, protocol=3)
    buffer = io.BytesIO()
    Python2Pickler(buffer).dump(batch)
    return buffer.getvalue()


def write_cifar_python(
    folder: pathlib.Path, per_file: int = 8, seed: int = 0, *, style: str = "python2"
) -> dict:
    """Write data_batch_1..5 and test_batch; returns {name: (images, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for name in [*TRAIN_FILES, TEST_FILE]:
        images, labels = random_cifar(per_file, rng)
        (folder / name).write_bytes(python_batch_bytes(images, labels, style=style))
        written[name] = (images, labels)
    return written


class RunsCommand:
    """Unpickling this calls os.system(command): a malicious "CIFAR batch"."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def malicious_batch_bytes(command: str) -> bytes:
    """A dict that looks like a CIFAR batch but runs `command` when unpickled."""
    return pickle.dumps(
        {b"batch_label": b"evil", b"labels": [0], b"data": RunsCommand(command)},
        protocol=3,
    )


def write_jpeg_folder(
    root: pathlib.Path,
    *,
    classes=("n01440764", "n01443537"),
    per_class: int = 3,
    size=(40, 30),
    corrupt: dict | None = None,
    seed: int = 0,
) -> dict:
    """train/ and val/ folders of small random JPEGs.

    `corrupt` maps a split ("train"/"val") to how many undecodable `.JPEG` files to
    add to its first class (a truncated JPEG and, beyond one, random bytes). Returns
    {split: [paths of the good files]}.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    corrupt = corrupt or {}
    good = {}
    for split in ("train", "val"):
        good[split] = []
        for index, wnid in enumerate(classes):
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                path = folder / f"{wnid}_{i}.JPEG"
                Image.fromarray(pixels).save(path, format="JPEG", quality=90)
                good[split].append(path)
            if index == 0:
                for k in range(corrupt.get(split, 0)):
                    path = folder / f"{wnid}_corrupt_{k}.JPEG"
                    if k == 0:  # a JPEG cut in half
                        data = good[split][0].read_bytes()
                        path.write_bytes(data[: len(data) // 2])
                    else:
                        path.write_bytes(rng.integers(0, 256, 500, np.uint8).tobytes())
    return good
