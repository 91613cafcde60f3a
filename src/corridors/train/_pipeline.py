"""grain pipelines: training batches by step, evaluation batches, the measurement batch.

Training: a `grain.MapDataset` over step indices whose element k is this host's part
of global batch k. Epoch e visits the examples in the order
`np.random.default_rng([seed, e]).permutation(n)`; global batch b of the epoch is the
slice [b·B, (b+1)·B) of it (the last n mod B examples of each epoch are dropped), and
host h of H takes the h-th of its H equal parts, so it decodes only its own files.
The global batch is the same whatever the number of hosts and devices. Elements are
built in a thread pool (`workers` = 0) or in `workers` grain worker processes
(`mp_prefetch`), and the iterator's position is checkpointable
(`grain.checkpoint.CheckpointSave`).

An example whose file cannot be decoded is skipped: its slot takes the next readable
example in the epoch's order after the batch, and the element's `skipped` field
counts it. Evaluation batches mark such examples (and the padding of the last batch)
with weight 0 instead.
"""

import math

import grain
import numpy as np
from absl import flags as absl_flags

from ._datasets import DataFormatError

_MAX_REFILL = 1000


class TrainBatches:
    """grain map function: step index → {"image", "label", "skipped"} for one host."""

    def __init__(
        self,
        split,
        *,
        global_batch: int,
        seed: int,
        augment: bool,
        process_index: int = 0,
        process_count: int = 1,
    ):
        n = len(split)
        if global_batch > n:
            raise DataFormatError(
                f"training batch size {global_batch} exceeds the {n} training examples."
            )
        if global_batch % process_count:
            raise DataFormatError(
                f"training batch size {global_batch} is not divisible by the "
                f"{process_count} processes."
            )
        self.split = split
        self.n = n
        self.global_batch = global_batch
        self.local_batch = global_batch // process_count
        self.steps_per_epoch = n // global_batch
        self.seed = int(seed)
        self.augment = augment
        self.process_index = process_index
        self._cache: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        """The order of the training examples in `epoch`."""
        if self._cache is None or self._cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._cache = (epoch, rng.permutation(self.n))
        return self._cache[1]

    def indices(self, step: int) -> np.ndarray:
        """The example indices of this host's part of global batch `step`."""
        epoch, b = divmod(int(step), self.steps_per_epoch)
        start = b * self.global_batch + self.process_index * self.local_batch
        return self.order(epoch)[start : start + self.local_batch]

    def __call__(self, step):
        step = int(step)
        rng = np.random.default_rng([self.seed, step, self.process_index, 1])
        indices = self.indices(step)
        images, labels, ok = self.split.load(indices, rng, self.augment)
        skipped = 0
        if not ok.all():
            epoch, b = divmod(step, self.steps_per_epoch)
            order = self.order(epoch)
            cursor = (b + 1) * self.global_batch + self.process_index * self.local_batch
            for slot in np.flatnonzero(~ok):
                skipped += 1
                for _ in range(_MAX_REFILL):
                    candidate = order[cursor % self.n : cursor % self.n + 1]
                    cursor += 1
                    image, label, good = self.split.load(candidate, rng, self.augment)
                    if good[0]:
                        images[slot], labels[slot] = image[0], label[0]
                        break
                    # not counted here: it is counted once, in its own batch
                else:
                    raise DataFormatError(
                        f"more than {_MAX_REFILL} consecutive unreadable training "
                        "images; is the data set corrupt?"
                    )
        return {
            "image": images,
            "label": labels.astype(np.int32),
            "skipped": np.int32(skipped),
        }


def _iterate(dataset, *, workers: int, threads: int, worker_buffer: int = 1):
    """Iterate `dataset` in `workers` grain processes, or in a thread pool when 0."""
    if workers > 0:
        # grain's worker processes read absl flags; a program that is not an absl app
        # has never parsed them, so take their defaults instead of failing mid-epoch.
        if not absl_flags.FLAGS.is_parsed():
            absl_flags.FLAGS.mark_as_parsed()
        return iter(
            dataset.to_iter_dataset().mp_prefetch(
                grain.multiprocessing.MultiprocessingOptions(
                    num_workers=workers, per_worker_buffer_size=worker_buffer
                )
            )
        )
    return iter(
        dataset.to_iter_dataset(
            grain.ReadOptions(num_threads=max(1, threads), prefetch_buffer_size=4)
        )
    )


def train_iterator(
    batches: TrainBatches, total_steps: int, *, workers: int = 0, threads: int = 2
):
    """A checkpointable grain iterator over `batches` for steps 0 … total_steps − 1."""
    dataset = grain.MapDataset.range(total_steps).map(batches)
    return _iterate(dataset, workers=workers, threads=threads, worker_buffer=2)


class EvalBatches:
    """grain map function: batch index → {"image", "label", "weight", "skipped"}.

    Batch i covers examples [i·B, (i+1)·B) in file order, host h taking the h-th of
    its equal parts; positions past the end and unreadable examples get weight 0.
    """

    def __init__(self, split, *, global_batch, process_index=0, process_count=1):
        if global_batch % process_count:
            raise DataFormatError(
                f"evaluation batch size {global_batch} is not divisible by the "
                f"{process_count} processes."
            )
        self.split = split
        self.n = len(split)
        self.global_batch = global_batch
        self.local_batch = global_batch // process_count
        self.process_index = process_index
        self.num_batches = math.ceil(self.n / global_batch)

    def __call__(self, index):
        start = int(index) * self.global_batch + self.process_index * self.local_batch
        positions = np.arange(start, start + self.local_batch)
        inside = positions < self.n
        images, labels, ok = self.split.load(
            np.minimum(positions, self.n - 1), None, False
        )
        weight = (inside & ok).astype(np.float32)
        return {
            "image": images,
            "label": labels.astype(np.int32),
            "weight": weight,
            "skipped": np.int32(np.sum(inside & ~ok)),
        }


def eval_iterator(batches: EvalBatches, *, workers: int = 0, threads: int = 2):
    """A grain iterator over all evaluation batches."""
    dataset = grain.MapDataset.range(batches.num_batches).map(batches)
    return _iterate(dataset, workers=workers, threads=threads)


def measurement_batch(
    split, size: int, *, seed: int, process_index: int = 0, process_count: int = 1
) -> tuple[np.ndarray, np.ndarray, int]:
    """This host's part of the fixed measurement batch: the first `size` readable
    examples of `np.random.default_rng([seed, 2**31 - 1]).permutation(n)`, without
    augmentation. Returns (images, labels, number of unreadable examples passed)."""
    n = len(split)
    if size > n:
        raise DataFormatError(
            f"measurement batch size {size} exceeds the {n} training examples."
        )
    local = size // process_count
    order = np.random.default_rng([seed, 2**31 - 1]).permutation(n)
    images, labels, ok = split.load(
        order[process_index * local : (process_index + 1) * local], None, False
    )
    skipped = 0
    cursor = size + process_index * local
    for slot in np.flatnonzero(~ok):
        while True:
            skipped += 1
            if cursor >= n + size:
                raise DataFormatError(
                    "too many unreadable images for the measurement batch."
                )
            candidate = order[cursor % n : cursor % n + 1]
            cursor += 1
            image, label, good = split.load(candidate, None, False)
            if good[0]:
                images[slot], labels[slot] = image[0], label[0]
                break
    return images, labels.astype(np.int32), skipped
