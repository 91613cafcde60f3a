"""Names of the models, data sets and optimizers (no heavy imports, so the command
line can list them without loading flax)."""

MODELS = (
    "resnet18",
    "resnet34",
    "resnet50",
    "vgg11",
    "vgg11_bn",
    "vgg16",
    "vgg16_bn",
    "cnn",
    "mlp",
)
VARIANTS = ("cifar", "imagenet")
DATASETS = ("cifar10", "imagenet", "digits", "synthetic")
OPTIMIZERS = (
    "sgd", "momentum", "adam", "adamw", "lion",
    "clr", "polyak", "sps_max", "chebyshev", "silver",
)  # fmt: skip
POLYAK_FAMILY = ("clr", "polyak", "sps_max")
# Fixed learning rate in the state (a sweep applies); the adaptive ones take b1, b2.
LR_OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "lion")
ADAPTIVE = ("adam", "adamw", "lion")
FLOW_SOLVERS = ("bosh3", "tsit5", "dopri8")  # diffrax.Bosh3, .Tsit5, .Dopri8
# The small classifiers of `corridors drift --model` and `corridors demo`.
FEATURE_DATASETS = ("digits", "synthetic", "folder")
CLASSIFIERS = ("mlp", "linear")
