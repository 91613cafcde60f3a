"""ImageNet-style JPEG folders, decoded with Pillow inside the grain workers.

Layout: `data_dir/train/<wnid>/*.JPEG` and `data_dir/val/<wnid>/*.JPEG` (the val
images sorted into one folder per class, as the usual preparation scripts do). The
classes are the sorted folder names under `train/`. Training images get the standard
random-resized crop (scale 0.08–1, aspect ratio 3/4–4/3) and a horizontal flip;
evaluation images are resized so the shorter side is `image_size`/0.875 (256 for
224) and center-cropped. Per-channel normalization happens on the device.

A file Pillow cannot decode (truncated, not an image, …) is reported as unreadable in
the mask returned by `load`; the pipelines skip it, count it, and report the count.
So is everything else that cannot be read: a symlink loop or an unreadable file is
listed like any image and fails to decode; a class folder that cannot be listed (a
symlink loop, no permission) keeps its class index and stands in the list as one
unreadable entry. Decoding is bounded: an image whose header declares more than
`MAX_PIXELS` pixels or an aspect ratio beyond `MAX_ASPECT` is refused before any
pixel is decoded, big JPEGs are decoded at a reduced scale (`Image.draft`), and every
resize writes at most `image_size`² pixels (the crop box is resized, never the whole
image).
"""

import math
import os
import pathlib

import numpy as np

from ._datasets import DataFormatError, Dataset

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
EXTENSIONS = (".jpeg", ".jpg", ".png")
# Pixels decoded per image at most (after a JPEG's reduced-scale draft): 150 MB as
# RGB. The largest ImageNet photos are ~ 30 MP.
MAX_PIXELS = 5 * 10**7
# ImageNet's widest panoramas are ~ 6:1; 1×10000 images are refused.
MAX_ASPECT = 20.0


def _kind(entry: os.DirEntry) -> str:
    """ "dir", "file", "other" or "unreadable" (a symlink loop, no permission)."""
    try:
        if entry.is_dir():
            return "dir"
        return "file" if entry.is_file() else "other"
    except OSError:
        return "unreadable"


def _class_names(folder: pathlib.Path) -> list[str]:
    """Sub-folders of `folder`, including entries that cannot be stat'ed (a loop):
    they keep a class index so that the other classes' labels do not shift."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if _kind(e) in ("dir", "unreadable"))


def _list_images(
    folder: pathlib.Path, classes: list[str]
) -> tuple[list[str], np.ndarray]:
    paths, labels = [], []
    for label, wnid in enumerate(classes):
        class_dir = folder / wnid
        try:
            with os.scandir(class_dir) as entries:
                names = sorted(
                    entry.name
                    for entry in entries
                    if entry.name.lower().endswith(EXTENSIONS)
                    and _kind(entry) in ("file", "unreadable")
                )
        except FileNotFoundError:  # a class of train/ absent from val/
            continue
        except OSError:  # a loop or an unreadable folder: one unreadable entry
            names = [""]
        paths.extend(str(class_dir / name) for name in names)
        labels.extend([label] * len(names))
    return paths, np.asarray(labels, np.int32)


def _check_aspect(size: tuple[int, int]) -> None:
    width, height = size
    if min(width, height) < 1 or max(width, height) > MAX_ASPECT * min(width, height):
        raise ValueError(f"image of {width}×{height} pixels: absurd aspect ratio")


def _check_pixels(size: tuple[int, int]) -> None:
    if size[0] * size[1] > MAX_PIXELS:
        raise ValueError(f"image of {size[0]}×{size[1]} pixels: too many to decode")


class JpegSplit:
    """A split of image files decoded on demand (picklable for grain workers)."""

    def __init__(self, paths: list[str], labels: np.ndarray, *, image_size: int):
        self.paths = list(paths)
        self.labels = np.asarray(labels, np.int32)
        self.image_size = int(image_size)

    def __len__(self) -> int:
        return len(self.paths)

    def decode(self, index: int, rng: np.random.Generator | None, augment: bool):
        """One image as uint8 (size, size, 3), or `None` if it cannot be decoded."""
        from PIL import Image

        size = self.image_size
        augment = augment and rng is not None
        try:
            with Image.open(self.paths[index]) as image:
                # Only the header is read so far: refuse absurd sizes before decoding.
                _check_aspect(image.size)
                # Decode big JPEGs at 1/2, 1/4 or 1/8 scale, keeping the shorter side
                # at least what the crop needs (a random crop may take 8% of the area).
                need = math.ceil(size / math.sqrt(0.08)) if augment else _short(size)
                image.draft("RGB", (need, need))
                _check_pixels(image.size)
                image = image.convert("RGB")
                image.load()
                if augment:
                    box = random_resized_crop_box(image.size, rng)
                    image = image.resize((size, size), Image.BILINEAR, box=box)
                    if rng.random() < 0.5:
                        image = image.transpose(Image.FLIP_LEFT_RIGHT)
                else:
                    image = resize_center_crop(image, size)
                return np.asarray(image, np.uint8)
        except Exception:  # Pillow raises OSError, SyntaxError, ValueError, ...
            return None

    def load(self, indices, rng, augment):
        size = self.image_size
        images = np.zeros((len(indices), size, size, 3), np.uint8)
        ok = np.zeros(len(indices), bool)
        for slot, index in enumerate(np.asarray(indices)):
            decoded = self.decode(int(index), rng, augment)
            if decoded is not None:
                images[slot] = decoded
                ok[slot] = True
        return images, self.labels[np.asarray(indices)], ok


def random_resized_crop_box(
    size: tuple[int, int],
    rng: np.random.Generator,
    scale=(0.08, 1.0),
    ratio=(3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of an Inception-style random crop
    (torchvision's RandomResizedCrop: 10 tries, then a center crop)."""
    width, height = size
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def _short(size: int) -> int:
    return round(size / 0.875)


def resize_center_crop(image, size: int):
    """Resize the shorter side to size/0.875, then crop the central size×size.

    Done as one resize of the central box of the original: the same pixels (up to
    rounding at the box edges), but never a resized copy of the whole image, which
    for a 1×10⁴ strip would be 256×2.6·10⁶ pixels."""
    from PIL import Image

    width, height = image.size
    scale = _short(size) / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    box = (
        left * width / new[0],
        top * height / new[1],
        (left + size) * width / new[0],
        (top + size) * height / new[1],
    )
    return image.resize((size, size), Image.BILINEAR, box=box)


def imagenet(data_dir: str | pathlib.Path, *, image_size: int = 224) -> Dataset:
    """ImageNet (or any folder of JPEGs in the same layout).

    **Arguments:**

    - `data_dir`: the folder holding `train/<wnid>/*.JPEG` and `val/<wnid>/*.JPEG`.
    - `image_size`: side of the square model input (224).

    **Returns:**

    A `Dataset` of lazily decoded images; listing the files is the only work done
    here. Each host later opens only the files of its own shard.

    **Raises:**

    `DataFormatError` if `train/` is missing or holds no images.

    **Example:**

    ```python
    import pathlib
    import tempfile
    from PIL import Image
    import corridors.train as ct
    with tempfile.TemporaryDirectory() as folder:  # one 40×30 JPEG in each of 2 classes
        for wnid in ("n01440764", "n01443537"):
            (pathlib.Path(folder) / "train" / wnid).mkdir(parents=True)
            Image.new("RGB", (40, 30)).save(f"{folder}/train/{wnid}/0.JPEG")
        data = ct.imagenet(folder, image_size=16)
        images, labels, readable = data.train.load([0, 1], None, False)
    print(data.num_classes, images.shape, labels)  # 2 (2, 16, 16, 3) [0 1]
    ```
    """
    data_dir = pathlib.Path(data_dir).expanduser()
    train_dir, val_dir = data_dir / "train", data_dir / "val"
    if not train_dir.is_dir():
        raise DataFormatError(
            f"imagenet: {train_dir} is not a directory; expected "
            f"{data_dir}/train/<wnid>/*.JPEG and {data_dir}/val/<wnid>/*.JPEG."
        )
    try:
        classes = _class_names(train_dir)
    except OSError as error:
        raise DataFormatError(
            f"imagenet: cannot list {train_dir} ({error.strerror or error})."
        ) from None
    paths, labels = _list_images(train_dir, classes)
    if not paths:
        raise DataFormatError(
            f"imagenet: no images (*.JPEG, *.jpg, *.png) in the class folders of "
            f"{train_dir}."
        )
    test = None
    if val_dir.is_dir():
        try:
            unknown = sorted(set(_class_names(val_dir)) - set(classes))
        except OSError as error:
            raise DataFormatError(
                f"imagenet: cannot list {val_dir} ({error.strerror or error})."
            ) from None
        if unknown:
            raise DataFormatError(
                f"imagenet: {val_dir} has class folders absent from train/: "
                f"{unknown[:5]}{' …' if len(unknown) > 5 else ''}."
            )
        val_paths, val_labels = _list_images(val_dir, classes)
        if val_paths:
            test = JpegSplit(val_paths, val_labels, image_size=image_size)
    return Dataset(
        name="imagenet",
        train=JpegSplit(paths, labels, image_size=image_size),
        test=test,
        image_shape=(image_size, image_size, 3),
        num_classes=len(classes),
        mean=MEAN,
        std=STD,
        description=f"JPEG folders in {data_dir} ({len(classes)} classes)",
    )
