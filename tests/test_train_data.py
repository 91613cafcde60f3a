"""corridors.train data: CIFAR-10 releases (and refusing malicious pickles), ImageNet
folders with corrupt JPEGs, digits, synthetic data, shuffling and host sharding."""

import pickle

import numpy as np
import pytest

pytest.importorskip("grain")
pytest.importorskip("PIL")

import corridors.train as ct
from corridors.train._cifar import read_python_batch
from corridors.train._pipeline import EvalBatches, TrainBatches, measurement_batch

from . import train_data as td


def expected_split(written, names):
    images = np.concatenate([written[name][0] for name in names])
    labels = np.concatenate([written[name][1] for name in names])
    return images, labels


@pytest.mark.parametrize("release", ["binary", "python2", "protocol3"])
def test_cifar10_returns_the_bytes_written(tmp_path, release):
    if release == "binary":
        written = td.write_cifar_binary(tmp_path / "cifar-10-batches-bin", per_file=5)
    else:
        written = td.write_cifar_python(
            tmp_path / "cifar-10-batches-py", per_file=5, style=release
        )
    dataset = ct.cifar10(tmp_path)
    images, labels = expected_split(written, td.TRAIN_FILES)
    np.testing.assert_array_equal(dataset.train.images, images)
    np.testing.assert_array_equal(dataset.train.labels, labels)
    np.testing.assert_array_equal(dataset.test.images, written["test_batch"][0])
    np.testing.assert_array_equal(dataset.test.labels, written["test_batch"][1])
    assert dataset.image_shape == (32, 32, 3) and dataset.num_classes == 10
    # The planar byte layout is decoded channel by channel: pixel (0, 1) of image 0.
    assert tuple(dataset.train.images[0, 0, 1]) == tuple(images[0, 0, 1])


def test_binary_release_is_preferred_when_both_are_present(tmp_path):
    td.write_cifar_python(tmp_path, per_file=2, seed=1)
    written = td.write_cifar_binary(tmp_path, per_file=3, seed=2)
    dataset = ct.cifar10(tmp_path)
    assert "binary" in dataset.description
    assert len(dataset.train) == 15
    np.testing.assert_array_equal(dataset.test.labels, written["test_batch"][1])


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    td.write_cifar_python(tmp_path, per_file=2)
    marker = tmp_path / "PWNED"
    (tmp_path / "data_batch_3").write_bytes(td.malicious_batch_bytes(f"touch {marker}"))
    with pytest.raises(ct.RefusedPickleError) as info:
        ct.cifar10(tmp_path)
    message = str(info.value)
    assert "data_batch_3" in message
    assert "refused" in message and "system" in message
    assert "Nothing in it was executed" in message
    assert not marker.exists()
    # It is a ValueError like every bad-input error of the library.
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "eval"),
        ("numpy", "frombuffer"),
        ("os", "system"),
        ("numpy", "load"),
    ],
)
def test_every_other_global_is_refused(tmp_path, module, name):
    # GLOBAL opcode for module.name, then STOP: the unpickler must refuse the lookup.
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"."
    path = tmp_path / "data_batch_1"
    path.write_bytes(payload)
    with pytest.raises(ct.RefusedPickleError, match=f"{module}.{name}"):
        read_python_batch(path)


def test_protocol5_numpy_pickle_loads(tmp_path):
    # Python 3's protocol 5 rebuilds arrays with numpy's _frombuffer: legitimate.
    images, labels = td.random_cifar(2, np.random.default_rng(0))
    batch = {b"labels": [int(x) for x in labels], b"data": td.planar(images)}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=5))
    loaded_images, loaded_labels = read_python_batch(path)
    np.testing.assert_array_equal(loaded_images, images)
    np.testing.assert_array_equal(loaded_labels, labels)


def test_truncated_binary_file_names_the_file(tmp_path):
    td.write_cifar_binary(tmp_path, per_file=4)
    path = tmp_path / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ct.DataFormatError) as info:
        ct.cifar10(tmp_path)
    assert "data_batch_2.bin" in str(info.value)
    assert "3,073-byte records" in str(info.value)
    assert "truncated" in str(info.value)


def test_truncated_pickle_names_the_file(tmp_path):
    td.write_cifar_python(tmp_path, per_file=4)
    path = tmp_path / "test_batch"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ct.DataFormatError, match="test_batch: truncated pickle"):
        ct.cifar10(tmp_path)


@pytest.mark.parametrize(
    ("batch", "complaint"),
    [
        ({b"labels": [1]}, "no 'data' key"),
        (
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]},
            "2 images but 1 labels",
        ),
        (
            {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 12]},
            "labels must lie in 0…9",
        ),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}, "shape"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}, "uint8"),
        ([1, 2, 3], "expected a dict"),
    ],
)
def test_malformed_python_batch_names_the_file_and_the_problem(
    tmp_path, batch, complaint
):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=3))
    with pytest.raises(ct.DataFormatError) as info:
        read_python_batch(path)
    assert str(path) in str(info.value) and complaint in str(info.value)


def test_missing_file_and_missing_release(tmp_path):
    with pytest.raises(ct.DataFormatError, match="no CIFAR-10 batches"):
        ct.cifar10(tmp_path)
    td.write_cifar_binary(tmp_path, per_file=2)
    (tmp_path / "data_batch_4.bin").unlink()
    with pytest.raises(ct.DataFormatError, match=r"missing .*data_batch_4\.bin"):
        ct.cifar10(tmp_path)


def test_imagenet_folder_skips_and_counts_corrupt_jpegs(tmp_path):
    from PIL import Image

    from corridors.train._imagenet import resize_center_crop

    good = td.write_jpeg_folder(tmp_path, corrupt={"train": 2, "val": 1})
    dataset = ct.imagenet(tmp_path, image_size=16)
    assert dataset.num_classes == 2
    assert len(dataset.train) == 8 and len(dataset.test) == 7
    # One step over every training example: both corrupt files are met and replaced.
    batches = TrainBatches(dataset.train, global_batch=8, seed=0, augment=False)
    element = batches(0)
    assert element["image"].shape == (8, 16, 16, 3)
    assert int(element["skipped"]) >= 2
    decoded = {
        resize_center_crop(Image.open(p).convert("RGB"), 16).tobytes()
        for p in good["train"]
    }
    assert all(image.tobytes() in decoded for image in element["image"])
    # Evaluation: the corrupt file gets weight 0 and is counted.
    evaluation = EvalBatches(dataset.test, global_batch=4)
    elements = [evaluation(i) for i in range(evaluation.num_batches)]
    assert sum(int(e["skipped"]) for e in elements) == 1
    assert sum(float(e["weight"].sum()) for e in elements) == 6.0


def test_imagenet_layout_errors(tmp_path):
    with pytest.raises(ct.DataFormatError, match="train"):
        ct.imagenet(tmp_path)
    (tmp_path / "train" / "n1").mkdir(parents=True)
    with pytest.raises(ct.DataFormatError, match="no images"):
        ct.imagenet(tmp_path)


def test_training_order_is_a_seeded_permutation_per_epoch():
    split = ct.ArraySplit(np.zeros((10, 2, 2, 1), np.uint8), np.arange(10))
    batches = TrainBatches(split, global_batch=3, seed=7, augment=False)
    again = TrainBatches(split, global_batch=3, seed=7, augment=False)
    other = TrainBatches(split, global_batch=3, seed=8, augment=False)
    epoch0 = np.concatenate([batches.indices(step) for step in range(3)])
    epoch1 = np.concatenate([batches.indices(step) for step in range(3, 6)])
    assert len(set(epoch0)) == 9 and len(set(epoch1)) == 9  # n mod B = 1 dropped
    assert not np.array_equal(epoch0, epoch1)
    np.testing.assert_array_equal(
        epoch0, np.concatenate([again.indices(step) for step in range(3)])
    )
    assert not np.array_equal(
        epoch0, np.concatenate([other.indices(s) for s in range(3)])
    )
    np.testing.assert_array_equal(
        batches(4)["label"], np.arange(10)[batches.indices(4)]
    )


def test_hosts_read_disjoint_parts_of_the_same_global_batch():
    split = ct.ArraySplit(np.zeros((40, 2, 2, 1), np.uint8), np.arange(40))
    single = TrainBatches(split, global_batch=8, seed=3, augment=False)
    hosts = [
        TrainBatches(
            split,
            global_batch=8,
            seed=3,
            augment=False,
            process_index=h,
            process_count=2,
        )
        for h in range(2)
    ]
    for step in (0, 4, 7):
        parts = [host(step)["label"] for host in hosts]
        assert len(parts[0]) == len(parts[1]) == 4
        np.testing.assert_array_equal(np.concatenate(parts), single(step)["label"])
    m0 = measurement_batch(split, 6, seed=0, process_index=0, process_count=2)[1]
    m1 = measurement_batch(split, 6, seed=0, process_index=1, process_count=2)[1]
    np.testing.assert_array_equal(
        np.concatenate([m0, m1]), measurement_batch(split, 6, seed=0)[1]
    )


def test_cifar_augmentation_is_a_shifted_crop_or_its_mirror():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 8, 8, 3), dtype=np.uint8)
    split = ct.ArraySplit(images, np.zeros(16), crop_padding=2)
    out, _, _ = split.load(np.arange(16), np.random.default_rng(1), True)
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
    for original, augmented in zip(padded, out, strict=True):
        crops = [
            original[dy : dy + 8, dx : dx + 8] for dy in range(5) for dx in range(5)
        ]
        assert any(
            np.array_equal(augmented, c) or np.array_equal(augmented, c[:, ::-1])
            for c in crops
        )


def test_digits_and_synthetic():
    digits = ct.digits()
    assert digits.image_shape == (8, 8, 1) and len(digits.train) == 1500
    assert digits.train.images.dtype == np.uint8 and digits.train.images.max() == 255
    data = ct.synthetic((4, 4, 2), 3, size=50, test_size=10, seed=1)
    assert data.train.images.shape == (50, 4, 4, 2) and len(data.test) == 10
    assert set(np.unique(data.train.labels)) <= {0, 1, 2}
    again = ct.synthetic((4, 4, 2), 3, size=50, test_size=10, seed=1)
    np.testing.assert_array_equal(data.train.images, again.train.images)
    with pytest.raises(ValueError, match="n_classes"):
        ct.synthetic((4, 4, 2), 1)


def test_load_dataset_builds_the_data_set_a_config_names(tmp_path):
    written = td.write_cifar_binary(tmp_path / "cifar")
    loaded = ct.load_dataset(
        ct.TrainConfig(dataset="cifar10", data_dir=str(tmp_path / "cifar"))
    )
    direct = ct.cifar10(tmp_path / "cifar")
    np.testing.assert_array_equal(loaded.train.images, direct.train.images)
    np.testing.assert_array_equal(loaded.test.labels, written["test_batch"][1])
    config = ct.TrainConfig(
        dataset="synthetic", synthetic_shape=(4, 4, 2), synthetic_classes=3,
        synthetic_size=40,
    )  # fmt: skip
    synthetic = ct.load_dataset(config)
    assert synthetic.image_shape == (4, 4, 2) and synthetic.num_classes == 3
    np.testing.assert_array_equal(
        synthetic.train.images, ct.synthetic((4, 4, 2), 3, size=40).train.images
    )
    assert ct.load_dataset(ct.TrainConfig(dataset="digits")).name == "digits"


def test_data_mesh_splits_the_batch_axis_over_the_devices():
    import jax

    mesh = ct.data_mesh()
    assert mesh.axis_names == ("batch",)
    assert list(mesh.devices.flat) == jax.devices()
    one = ct.data_mesh(jax.devices()[:1])
    assert one.size == 1
