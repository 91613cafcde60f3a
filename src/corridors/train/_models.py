"""Flax NNX models: ResNet-18/34/50, VGG-11/16 (with or without batch norm), a small
CNN and an MLP.

Every model takes NHWC float images and returns logits. Layers that hold several
blocks store them as named attributes (`layer1_0`, `features_3`, ...), never in lists,
so parameter pytrees have string keys only (they round-trip through orbax and `.npz`
files unchanged).
"""

import math
from collections.abc import Callable
from functools import partial

import jax
from flax import nnx

from .._checks import InvalidInputError
from ._names import MODELS, VARIANTS

# He initialization (fan_out, normal), as torchvision does for convolutions.
_conv_init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


def _conv(cin, cout, size, stride=1, *, bias=False, dtype, rngs):
    pad = (size - 1) // 2
    return nnx.Conv(
        cin,
        cout,
        (size, size),
        strides=stride,
        padding=((pad, pad), (pad, pad)),
        use_bias=bias,
        kernel_init=_conv_init,
        dtype=dtype,
        rngs=rngs,
    )


def _norm(features, *, dtype, rngs):
    # momentum 0.9 is PyTorch's 0.1 (flax weights the old running average).
    return nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, dtype=dtype, rngs=rngs)


class BasicBlock(nnx.Module):
    """Two 3×3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin, width, stride, *, dtype, rngs):
        self.conv1 = _conv(cin, width, 3, stride, dtype=dtype, rngs=rngs)
        self.bn1 = _norm(width, dtype=dtype, rngs=rngs)
        self.conv2 = _conv(width, width, 3, dtype=dtype, rngs=rngs)
        self.bn2 = _norm(width, dtype=dtype, rngs=rngs)
        if stride != 1 or cin != width:
            self.shortcut = _conv(cin, width, 1, stride, dtype=dtype, rngs=rngs)
            self.shortcut_bn = _norm(width, dtype=dtype, rngs=rngs)
        else:
            self.shortcut = self.shortcut_bn = None

    def __call__(self, x):
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.shortcut is not None:
            x = self.shortcut_bn(self.shortcut(x))
        return nnx.relu(x + y)


class Bottleneck(nnx.Module):
    """1×1, 3×3 (strided), 1×1 convolutions with a residual connection (ResNet-50)."""

    expansion = 4

    def __init__(self, cin, width, stride, *, dtype, rngs):
        cout = width * self.expansion
        self.conv1 = _conv(cin, width, 1, dtype=dtype, rngs=rngs)
        self.bn1 = _norm(width, dtype=dtype, rngs=rngs)
        self.conv2 = _conv(width, width, 3, stride, dtype=dtype, rngs=rngs)
        self.bn2 = _norm(width, dtype=dtype, rngs=rngs)
        self.conv3 = _conv(width, cout, 1, dtype=dtype, rngs=rngs)
        self.bn3 = _norm(cout, dtype=dtype, rngs=rngs)
        if stride != 1 or cin != cout:
            self.shortcut = _conv(cin, cout, 1, stride, dtype=dtype, rngs=rngs)
            self.shortcut_bn = _norm(cout, dtype=dtype, rngs=rngs)
        else:
            self.shortcut = self.shortcut_bn = None

    def __call__(self, x):
        y = nnx.relu(self.bn1(self.conv1(x)))
        y = nnx.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        if self.shortcut is not None:
            x = self.shortcut_bn(self.shortcut(x))
        return nnx.relu(x + y)


class ResNet(nnx.Module):
    """ResNet (He et al., 2016) in its CIFAR or ImageNet variant.

    The CIFAR variant has a 3×3 stride-1 stem and no max-pool (32×32 inputs); the
    ImageNet variant a 7×7 stride-2 stem followed by a 3×3 stride-2 max-pool. Stages
    have `width`, 2·`width`, 4·`width`, 8·`width` channels (64 is the standard width),
    followed by global average pooling and a linear classifier.
    """

    def __init__(
        self,
        block: type,
        stages: tuple[int, ...],
        num_classes: int,
        *,
        in_channels: int = 3,
        width: int = 64,
        variant: str = "cifar",
        dtype=None,
        rngs: nnx.Rngs,
    ):
        self.variant = variant
        if variant == "cifar":
            self.stem = _conv(in_channels, width, 3, dtype=dtype, rngs=rngs)
        else:
            self.stem = _conv(in_channels, width, 7, 2, dtype=dtype, rngs=rngs)
        self.stem_bn = _norm(width, dtype=dtype, rngs=rngs)
        cin = width
        self.block_names = []
        for stage, count in enumerate(stages):
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                name = f"layer{stage + 1}_{index}"
                unit = block(cin, width * 2**stage, stride, dtype=dtype, rngs=rngs)
                setattr(self, name, unit)
                self.block_names.append(name)
                cin = width * 2**stage * block.expansion
        self.block_names = tuple(self.block_names)
        self.head = nnx.Linear(cin, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.stem_bn(self.stem(x)))
        if self.variant == "imagenet":
            x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for name in self.block_names:
            x = getattr(self, name)(x)
        return self.head(x.mean(axis=(1, 2)))


_VGG_LAYERS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (
        *(64, 64, "M", 128, 128, "M", 256, 256, 256, "M"),
        *(512, 512, 512, "M", 512, 512, 512, "M"),
    ),
}


class VGG(nnx.Module):
    """VGG (Simonyan & Zisserman, 2015) feature stack with an optional batch norm
    after every convolution, then global average pooling and one linear classifier.

    The classifier is the CIFAR-style single linear layer for both variants (the
    ImageNet original's 4096-wide fully connected layers would hold ~120M of its
    ~138M parameters); channel counts scale with `width`/64.
    """

    def __init__(
        self,
        layers: tuple,
        num_classes: int,
        *,
        batch_norm: bool,
        in_channels: int = 3,
        width: int = 64,
        dtype=None,
        rngs: nnx.Rngs,
    ):
        self.plan = []
        cin = in_channels
        for index, item in enumerate(layers):
            if item == "M":
                self.plan.append(("pool", None, None))
                continue
            cout = max(1, item * width // 64)
            conv_name = f"conv{index}"
            setattr(
                self,
                conv_name,
                _conv(cin, cout, 3, bias=not batch_norm, dtype=dtype, rngs=rngs),
            )
            norm_name = None
            if batch_norm:
                norm_name = f"bn{index}"
                setattr(self, norm_name, _norm(cout, dtype=dtype, rngs=rngs))
            self.plan.append(("conv", conv_name, norm_name))
            cin = cout
        self.plan = tuple(self.plan)
        self.head = nnx.Linear(cin, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        for kind, conv_name, norm_name in self.plan:
            if kind == "pool":
                if x.shape[1] >= 2 and x.shape[2] >= 2:
                    x = nnx.max_pool(x, (2, 2), strides=(2, 2))
                continue
            x = getattr(self, conv_name)(x)
            if norm_name is not None:
                x = getattr(self, norm_name)(x)
            x = nnx.relu(x)
        return self.head(x.mean(axis=(1, 2)))


class SmallCNN(nnx.Module):
    """Two 3×3 convolutions (`width`, 2·`width` channels) with 2×2 average pooling,
    then a hidden dense layer and a linear classifier; ReLU; no batch norm."""

    def __init__(
        self,
        num_classes: int,
        *,
        in_channels: int = 3,
        width: int = 32,
        dtype=None,
        rngs: nnx.Rngs,
    ):
        self.conv1 = _conv(in_channels, width, 3, bias=True, dtype=dtype, rngs=rngs)
        self.conv2 = _conv(width, 2 * width, 3, bias=True, dtype=dtype, rngs=rngs)
        self.hidden = nnx.Linear(2 * width, 4 * width, dtype=dtype, rngs=rngs)
        self.head = nnx.Linear(4 * width, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.conv1(x))
        if x.shape[1] >= 2:
            x = nnx.avg_pool(x, (2, 2), strides=(2, 2))
        x = nnx.relu(self.conv2(x))
        if x.shape[1] >= 2:
            x = nnx.avg_pool(x, (2, 2), strides=(2, 2))
        x = nnx.relu(self.hidden(x.mean(axis=(1, 2))))
        return self.head(x)


class MLP(nnx.Module):
    """Flattened input, two ReLU hidden layers of `width` units, linear classifier."""

    def __init__(
        self, in_features: int, num_classes: int, *, width=256, dtype=None, rngs
    ):
        self.hidden1 = nnx.Linear(in_features, width, dtype=dtype, rngs=rngs)
        self.hidden2 = nnx.Linear(width, width, dtype=dtype, rngs=rngs)
        self.head = nnx.Linear(width, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        x = nnx.relu(self.hidden1(x))
        x = nnx.relu(self.hidden2(x))
        return self.head(x)


def default_width(name: str) -> int:
    """The standard width of a model family (64 for ResNet/VGG, 32 CNN, 256 MLP)."""
    if name == "cnn":
        return 32
    if name == "mlp":
        return 256
    return 64


def build_model(
    name: str,
    *,
    num_classes: int,
    image_shape: tuple[int, int, int],
    width: int | None = None,
    variant: str = "auto",
    dtype=None,
    seed: int = 0,
) -> nnx.Module:
    """Construct one of the models in `MODELS` with initialized parameters.

    **Arguments:**

    - `name`: "resnet18", "resnet34", "resnet50", "vgg11", "vgg11_bn", "vgg16",
      "vgg16_bn", "cnn" or "mlp".
    - `num_classes`: number of output logits.
    - `image_shape`: (height, width, channels) of one input image.
    - `width`: base width (default: 64 for ResNet/VGG, 32 for the CNN, 256 hidden
      units for the MLP). Smaller values give the reduced-width models of the tests.
    - `variant`: "cifar", "imagenet", or "auto" (ImageNet stem for inputs of at
      least 64×64 pixels). Only ResNets have two variants.
    - `dtype`: computation dtype (`None`: that of the inputs and parameters, i.e.
      float32; `jnp.bfloat16` for mixed precision). Parameters are always float32.
    - `seed`: initialization seed (an int, or a JAX PRNG key).

    **Returns:**

    An `nnx.Module` mapping NHWC images to logits.

    **Example:**

    ```python
    import jax.numpy as jnp
    import corridors.train as ct
    model = ct.build_model("mlp", num_classes=3, image_shape=(4, 4, 1), width=8)
    print(model(jnp.zeros((2, 4, 4, 1))).shape)  # (2, 3)
    ```
    """
    if name not in MODELS:
        raise InvalidInputError(
            f"build_model: unknown model {name!r}; choose one of {list(MODELS)}."
        )
    if variant not in ("auto", *VARIANTS):
        raise InvalidInputError(
            f"build_model: `variant` must be 'auto', 'cifar' or 'imagenet', got "
            f"{variant!r}."
        )
    if len(image_shape) != 3:
        raise InvalidInputError(
            f"build_model: `image_shape` must be (height, width, channels), got "
            f"{image_shape!r}."
        )
    if variant == "auto":
        variant = "imagenet" if min(image_shape[:2]) >= 64 else "cifar"
    width = default_width(name) if width is None else int(width)
    if width < 1:
        raise InvalidInputError(f"build_model: `width` must be ≥ 1, got {width}.")
    channels = image_shape[2]
    rngs = nnx.Rngs(seed)
    common = {"dtype": dtype, "rngs": rngs}
    if name.startswith("resnet"):
        block, stages = {
            "resnet18": (BasicBlock, (2, 2, 2, 2)),
            "resnet34": (BasicBlock, (3, 4, 6, 3)),
            "resnet50": (Bottleneck, (3, 4, 6, 3)),
        }[name]
        return ResNet(
            block,
            stages,
            num_classes,
            in_channels=channels,
            width=width,
            variant=variant,
            **common,
        )
    if name.startswith("vgg"):
        return VGG(
            _VGG_LAYERS[name.removesuffix("_bn")],
            num_classes,
            batch_norm=name.endswith("_bn"),
            in_channels=channels,
            width=width,
            **common,
        )
    if name == "cnn":
        return SmallCNN(num_classes, in_channels=channels, width=width, **common)
    features = image_shape[0] * image_shape[1] * image_shape[2]
    return MLP(features, num_classes, width=width, **common)


def count_parameters(
    name: str, *, num_classes: int, image_shape: tuple, **options
) -> int:
    """Number of trainable parameters of a model, computed without allocating it.

    **Example:**

    ```python
    import corridors.train as ct
    print(ct.count_parameters("resnet18", num_classes=10, image_shape=(32, 32, 3)))  # 11173962
    # 16·8 + 8 + 8·8 + 8 + 8·3 + 3: two hidden layers of 8 units, 3 logits
    print(ct.count_parameters("mlp", num_classes=3, image_shape=(4, 4, 1), width=8))  # 235
    ```
    """
    build: Callable = partial(
        build_model, name, num_classes=num_classes, image_shape=image_shape, **options
    )
    abstract = nnx.eval_shape(build)
    params = nnx.state(abstract, nnx.Param)
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(params))
