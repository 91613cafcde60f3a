"""The digits test split: `fixed` is the last 297 images (writers unseen in
training), `random` a seeded draw; both partition the 1,797 images."""

import numpy as np
import pytest

import corridors.train as ct
from corridors._checks import InvalidInputError


def test_fixed_split_is_the_last_images_and_random_a_partition():
    from sklearn.datasets import load_digits

    target = load_digits().target
    fixed, drawn = ct.digits(), ct.digits(split="random", seed=1)
    np.testing.assert_array_equal(fixed.test.labels, target[-297:])
    for data in (fixed, drawn):
        assert len(data.train.labels) == 1500 and len(data.test.labels) == 297
        # Same multiset of labels as the whole set: a partition of it.
        labels = np.concatenate([data.train.labels, data.test.labels])
        np.testing.assert_array_equal(np.bincount(labels), np.bincount(target))
    assert not np.array_equal(drawn.test.labels, fixed.test.labels)
    assert ct.TrainConfig(dataset="digits").digits_split == "fixed"
    with pytest.raises(InvalidInputError, match=r"^digits: `split`"):
        ct.digits(split="writers")
