"""corridors.train models: the reference parameter counts, shapes, and batch norm in
the training, evaluation and measurement modes."""

import functools

import numpy as np
import pytest

pytest.importorskip("flax")

import jax
import jax.numpy as jnp

import corridors.train as ct
from corridors.train._measure import make_measure_loss


@pytest.mark.parametrize(
    ("name", "classes", "shape", "count"),
    [
        # torchvision's ResNet-18/34/50 (ImageNet) and the usual CIFAR ResNet-18.
        ("resnet18", 10, (32, 32, 3), 11_173_962),
        ("resnet18", 1000, (224, 224, 3), 11_689_512),
        ("resnet34", 1000, (224, 224, 3), 21_797_672),
        ("resnet50", 1000, (224, 224, 3), 25_557_032),
        # CIFAR VGG-16 with batch norm: 14,728,266 minus the 4,224 conv biases that
        # batch norm makes redundant.
        ("vgg16_bn", 10, (32, 32, 3), 14_724_042),
    ],
)
def test_parameter_counts_match_the_reference_architectures(
    name, classes, shape, count
):
    assert ct.count_parameters(name, num_classes=classes, image_shape=shape) == count


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.slow)
        if name.startswith(("resnet", "vgg16"))
        else name
        for name in ct.MODELS
    ],
)
def test_every_model_maps_images_to_logits(name):
    network = ct.make_network(name, num_classes=5, image_shape=(8, 8, 3), width=2)
    params, stats = network.init(0)
    images = jnp.asarray(
        np.random.default_rng(0).normal(size=(4, 8, 8, 3)), jnp.float32
    )
    logits, new_stats = jax.jit(functools.partial(network.apply, mode="train"))(
        params, stats, images
    )
    assert logits.shape == (4, 5) and logits.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(logits)))
    assert jax.tree.structure(new_stats) == jax.tree.structure(stats)
    leaves = jax.tree.leaves(params)
    assert all(leaf.dtype == jnp.float32 for leaf in leaves)
    assert network.has_batch_norm == (name.startswith("resnet") or name.endswith("_bn"))


def test_imagenet_variant_has_a_strided_stem():
    from flax import nnx

    def stem(**options):
        return nnx.eval_shape(
            lambda: ct.build_model(
                "resnet18", num_classes=3, image_shape=(64, 64, 3), **options
            )
        ).stem

    cifar, imagenet = stem(variant="cifar"), stem()
    assert cifar.kernel.shape == (3, 3, 3, 64) and cifar.strides == 1
    assert imagenet.kernel.shape == (7, 7, 3, 64) and imagenet.strides == 2
    with pytest.raises(ValueError, match="unknown model"):
        ct.build_model("resnet19", num_classes=3, image_shape=(8, 8, 3))


def test_batch_norm_modes():
    network = ct.make_network("vgg11_bn", num_classes=3, image_shape=(8, 8, 3), width=4)
    params, stats = network.init(0)
    rng = np.random.default_rng(1)
    images = jnp.asarray(rng.normal(2.0, 3.0, (6, 8, 8, 3)), jnp.float32)
    apply = {
        mode: jax.jit(functools.partial(network.apply, mode=mode))
        for mode in ("train", "eval", "measure")
    }
    train_logits, new_stats = apply["train"](params, stats, images)
    # Training updates the running averages: mean ← 0.9·mean + 0.1·batch mean.
    assert not np.allclose(new_stats["bn0"]["mean"], stats["bn0"]["mean"])
    # Measurement mode normalizes with the batch's own statistics, like training, and
    # ignores the running averages entirely: a pure function of the parameters.
    measured, same = apply["measure"](params, stats, images)
    measured_other, _ = apply["measure"](params, new_stats, images)
    np.testing.assert_allclose(measured, train_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(measured, measured_other)
    assert jax.tree.structure(same) == jax.tree.structure(stats)
    # Evaluation uses the running averages, so it differs at initialization.
    eval_logits, _ = apply["eval"](params, stats, images)
    assert not np.allclose(eval_logits, train_logits, atol=1e-3)


def test_measured_loss_is_pure_and_differentiable():
    network = ct.make_network("vgg11_bn", num_classes=4, image_shape=(8, 8, 3), width=4)
    params, stats = network.init(0)
    images = np.random.default_rng(0).integers(0, 256, (8, 8, 8, 3)).astype(np.uint8)
    labels = np.arange(8) % 4
    loss = make_measure_loss(network, (0.5,) * 3, (0.25,) * 3, weight_decay=1e-3)
    args = (images, labels, stats)
    value = jax.jit(loss)(params, *args)
    assert value.dtype == jnp.float32 and value == jax.jit(loss)(params, *args)
    # The weight decay term is (wd/2)·Σ‖kernel‖² over kernels only.
    kernels = [
        leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
        if path[-1].key == "kernel"
    ]
    plain = make_measure_loss(network, (0.5,) * 3, (0.25,) * 3, weight_decay=0.0)
    expected = jax.jit(plain)(params, *args) + 0.5e-3 * sum(
        float(jnp.sum(k**2)) for k in kernels
    )
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    assert set(stats) == {f"bn{i}" for i in (0, 2, 4, 5, 7, 8, 10, 11)}


def test_bfloat16_computes_in_bfloat16_and_measures_in_float32():
    network = ct.make_network(
        "cnn", num_classes=3, image_shape=(8, 8, 3), width=4, dtype=jnp.bfloat16
    )
    params, stats = network.init(0)
    images = jnp.ones((2, 8, 8, 3), jnp.float32) * 0.3
    low, _ = network.apply(params, stats, images, mode="train")
    exact, _ = network.apply(params, stats, images, mode="measure")
    assert low.dtype == exact.dtype == jnp.float32  # logits are cast for the loss
    assert not np.array_equal(low, exact)
    np.testing.assert_allclose(low, exact, rtol=0.05, atol=0.05)
