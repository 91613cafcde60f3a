"""Data sets as random-access splits of uint8 images: the common interface, in-memory
arrays (CIFAR-10, digits, synthetic data) and their augmentation.

A split answers `load(indices, rng, augment)` with a batch of images (uint8, NHWC),
labels (int32) and a mask of the examples that could be read (a corrupt JPEG is
False). Splits are plain picklable objects so that grain can run them in worker
processes.
"""

import dataclasses
from typing import Any, Protocol

import numpy as np

from .._checks import InvalidInputError


class DataFormatError(InvalidInputError):
    """A data file is missing, truncated, malformed or refused (a `ValueError`)."""


class Split(Protocol):
    """What the pipelines need from a split of a data set."""

    def __len__(self) -> int: ...

    def load(
        self, indices: np.ndarray, rng: np.random.Generator | None, augment: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set.

    **Fields:**

    - `name`: "cifar10", "imagenet", "digits" or "synthetic".
    - `train`, `test`: the splits (`test` may be `None`).
    - `image_shape`: (height, width, channels) of one model input.
    - `num_classes`: number of classes.
    - `mean`, `std`: per-channel statistics of images scaled to [0, 1]; the
      training step feeds the model (x/255 − mean)/std.
    - `description`: where the data came from (files, release format).
    """

    name: str
    train: Any
    test: Any
    image_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    description: str = ""


class ArraySplit:
    """A split held in memory: uint8 images (N, H, W, C) and int labels (N,).

    With `augment=True` in `load`, images get the standard CIFAR augmentation when
    `crop_padding` > 0: a random crop of the image zero-padded by `crop_padding`
    pixels on each side, and a horizontal flip with probability 1/2.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, crop_padding=0):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise InvalidInputError(
                "ArraySplit: `images` must be a uint8 array of shape (N, H, W, C), "
                f"got {images.dtype} {images.shape}."
            )
        if labels.shape != (images.shape[0],):
            raise InvalidInputError(
                f"ArraySplit: `labels` must have shape ({images.shape[0]},), got "
                f"{labels.shape}."
            )
        self.images = images
        self.labels = labels.astype(np.int32)
        self.crop_padding = int(crop_padding)

    def __len__(self) -> int:
        return self.images.shape[0]

    def load(self, indices, rng, augment):
        indices = np.asarray(indices)
        images = self.images[indices]
        labels = self.labels[indices]
        if augment and rng is not None:
            images = augment_crop_flip(images, rng, self.crop_padding)
        return images, labels, np.ones(len(indices), bool)


def augment_crop_flip(
    images: np.ndarray, rng: np.random.Generator, padding: int
) -> np.ndarray:
    """Random crop after zero padding by `padding`, then a random horizontal flip."""
    n, height, width, _ = images.shape
    if padding > 0:
        padded = np.pad(
            images, ((0, 0), (padding, padding), (padding, padding), (0, 0))
        )
        dy = rng.integers(0, 2 * padding + 1, n)
        dx = rng.integers(0, 2 * padding + 1, n)
        rows = dy[:, None] + np.arange(height)
        cols = dx[:, None] + np.arange(width)
        images = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flip = rng.random(n) < 0.5
    images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
    return np.ascontiguousarray(images)


def channel_stats(images: np.ndarray) -> tuple[tuple, tuple]:
    """Per-channel mean and std of uint8 images scaled to [0, 1]."""
    scaled = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    std = np.maximum(scaled.std(0), 1e-3)
    return tuple(float(v) for v in scaled.mean(0)), tuple(float(v) for v in std)


def digits(*, test_size: int = 297, split: str = "fixed", seed: int = 0) -> Dataset:
    """scikit-learn's embedded 8×8 handwritten digits (1,797 images, 10 classes).

    Pixel values 0…16 are rescaled to uint8 0…255. Needs no download. The images
    are stored by writer, so the default `split="fixed"` (the last `test_size`
    images as the test split) tests on writers never seen in training: a harder
    split (an MLP reaches about 90%) than `split="random"` (a seeded random
    `test_size` images, writers shared with training).

    **Arguments:**

    - `test_size`: images held out for evaluation (default 297, leaving 1,500).
    - `split`: "fixed" (the last `test_size` images) or "random".
    - `seed`: the permutation of `split="random"`.

    **Returns:**

    A `Dataset` with 8×8×1 images.

    **Example:**

    ```python
    import corridors.train as ct
    data = ct.digits()
    print(len(data.train), len(data.test), data.image_shape)  # 1500 297 (8, 8, 1)
    ```
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int32)
    if not 0 < test_size < len(labels):
        raise InvalidInputError(
            f"digits: `test_size` must be in (0, {len(labels)}), got {test_size}."
        )
    if split not in ("fixed", "random"):
        raise InvalidInputError(
            f"digits: `split` must be 'fixed' or 'random', got {split!r}."
        )
    if split == "random":
        order = np.random.default_rng(seed).permutation(len(labels))
        images, labels = images[order], labels[order]
    train_images, test_images = images[:-test_size], images[-test_size:]
    mean, std = channel_stats(train_images)
    return Dataset(
        name="digits",
        train=ArraySplit(train_images, labels[:-test_size]),
        test=ArraySplit(test_images, labels[-test_size:]),
        image_shape=(8, 8, 1),
        num_classes=10,
        mean=mean,
        std=std,
        description=f"scikit-learn digits (embedded), {split} test split "
        f"of {test_size}",
    )


def synthetic(
    shape: tuple[int, int, int] = (32, 32, 3),
    n_classes: int = 10,
    *,
    size: int = 2048,
    test_size: int = 512,
    seed: int = 0,
) -> Dataset:
    """Random uint8 images labelled by a fixed random linear teacher.

    The labels are the argmax of a random linear function of the pixels, so the task
    is learnable and a model can interpolate it; for smoke tests and benchmarks.

    **Arguments:**

    - `shape`: (height, width, channels) of an image.
    - `n_classes`: number of classes, ≥ 2.
    - `size`, `test_size`: number of training and test images.
    - `seed`: generates images and teacher.

    **Returns:**

    A `Dataset`.

    **Example:**

    ```python
    import corridors.train as ct
    data = ct.synthetic((8, 8, 1), 4, size=100, test_size=20)
    images, labels, readable = data.train.load([0, 1, 2], None, False)
    print(images.shape, images.dtype, labels.shape)  # (3, 8, 8, 1) uint8 (3,)
    print(len(data.test), data.num_classes)  # 20 4
    ```
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InvalidInputError(
            f"synthetic: `shape` must be (height, width, channels) ≥ 1, got {shape}."
        )
    if n_classes < 2:
        raise InvalidInputError(f"synthetic: `n_classes` must be ≥ 2, got {n_classes}.")
    if size < 1 or test_size < 0:
        raise InvalidInputError(
            f"synthetic: need `size` ≥ 1 and `test_size` ≥ 0, got {size}, {test_size}."
        )
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (size + test_size, *shape), dtype=np.uint8)
    teacher = rng.standard_normal((int(np.prod(shape)), n_classes)).astype(np.float32)
    centred = images.reshape(len(images), -1).astype(np.float32) / 255.0 - 0.5
    labels = np.argmax(centred @ teacher, axis=1).astype(np.int32)
    return Dataset(
        name="synthetic",
        train=ArraySplit(images[:size], labels[:size]),
        test=ArraySplit(images[size:], labels[size:]) if test_size else None,
        image_shape=shape,
        num_classes=n_classes,
        mean=(0.5,) * shape[2],
        std=(0.2887,) * shape[2],  # uniform on [0, 1]
        description=f"synthetic {shape} × {n_classes} classes, seed {seed}",
    )
