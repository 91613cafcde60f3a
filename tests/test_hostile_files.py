"""Hostile data files: CIFAR-10 pickles and binaries, ImageNet folders.

Every case is generated here and read in a child process under a memory limit
(tests/limited.py), many cases per child: a pickle that would allocate gigabytes or
crash the interpreter fails its case (or kills the child, failing the test) instead
of the machine. Each refusal must name the file and say what was wrong; each
legitimate file (the original Python 2 release, Python 3 re-pickles at protocols 2-5)
must load bit for bit.
"""

import io
import os
import pickle
import struct
import tempfile
import zlib

import numpy as np
import pytest

from . import train_data as td
from .limited import run_cases

CIFAR_PRELUDE = """
import pathlib
import numpy as np
from corridors.train._cifar import read_binary_batch, read_python_batch

def load(path, reader=read_python_batch):
    images, labels = reader(pathlib.Path(path))
    return [list(images.shape), images.tobytes().hex()[:64], labels.tolist()[:4]]
"""

P2 = b"\x80\x02"


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _bytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data  # BINBYTES


def _batch_around(data_ops: bytes, *, n_labels: int) -> bytes:
    """A protocol-2 dict {b"data": <data_ops>, b"labels": [0] * n_labels}."""
    labels = b"]" + b"(" + b"K\x00" * n_labels + b"e" if n_labels else b"]"
    return P2 + b"}(" + _bytes(b"data") + data_ops + _bytes(b"labels") + labels + b"u."


def _reconstruct_call() -> bytes:
    """numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b"b")."""
    return (
        _global("numpy.core.multiarray", "_reconstruct")
        + _global("numpy", "ndarray")
        + b"K\x00\x85"
        + _bytes(b"b")
        + b"\x87R"
    )


def _uint8() -> bytes:
    """numpy.dtype("u1", False, True) with its BUILD state."""
    return (
        _global("numpy", "dtype")
        + b"X\x02\x00\x00\x00u1\x89\x88\x87R"
        + b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )


def _array_build(shape: tuple[int, ...], data: bytes) -> bytes:
    """_reconstruct(...) then BUILD (1, shape, uint8, False, data)."""
    shape_ops = b"(" + b"".join(b"J" + struct.pack("<i", n) for n in shape) + b"t"
    return (
        _reconstruct_call()
        + b"(K\x01"
        + shape_ops
        + _uint8()
        + b"\x89"
        + _bytes(data)
        + b"tb"
    )


class Evil:
    """Pickles as a call of `function` with `args` (what an attacker writes)."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _code_execution_attempts(marker: str) -> dict[str, bytes]:
    """17 pickles that would run code (each would create `marker`)."""
    import builtins
    import subprocess

    command = f"touch {marker}"
    script = f"open({marker!r}, 'w').close()"
    attempts = {
        "os.system": pickle.dumps(Evil(os.system, command)),
        "builtins.eval": pickle.dumps(Evil(builtins.eval, script)),
        "builtins.exec": pickle.dumps(Evil(builtins.exec, script), protocol=2),
        "subprocess.call": pickle.dumps(Evil(subprocess.call, ["touch", marker])),
        "builtins.open": pickle.dumps(Evil(builtins.open, marker, "w"), protocol=4),
        "as data value": td.malicious_batch_bytes(command),
        "protocol 0 GLOBAL": b"cos\nsystem\n(S'" + command.encode() + b"'\ntR.",
        "INST": b"(S'" + command.encode() + b"'\nios\nsystem\n.",
        "OBJ": b"(cos\nsystem\nS'" + command.encode() + b"'\no.",
        "STACK_GLOBAL": b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c"
        + bytes([len(command)])
        + command.encode()
        + b"\x85R.",
        "NEWOBJ": P2 + _global("os", "system") + b"X\x01\x00\x00\x00a\x85\x81.",
        "EXT1": P2 + b"\x82\x01.",
        "persistent id": P2 + b"X\x01\x00\x00\x00a" + b"Q.",
        "numpy.load": pickle.dumps(Evil(np.load, marker)),
        "numpy.frombuffer": P2
        + _global("numpy", "frombuffer")
        + b"X\x01\x00\x00\x00a\x85R.",
        "_codecs.encode misuse": P2
        + _global("_codecs", "encode")
        + b"X\x01\x00\x00\x00aX\x04\x00\x00\x00zlib\x86R.",
        "dtype of objects": P2
        + _global("numpy", "dtype")
        + b"X\x02\x00\x00\x00O8\x85R.",
    }
    assert len(attempts) == 17
    return attempts


def _legitimate(images, labels) -> dict[str, bytes]:
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [int(x) for x in labels],
        b"data": td.planar(images),
        b"filenames": [f"image_{i}.png".encode() for i in range(len(labels))],
    }
    pickles = {
        "python2 release": td.python_batch_bytes(images, labels, style="python2")
    }
    for protocol in (2, 3, 4, 5):
        pickles[f"protocol {protocol}"] = pickle.dumps(batch, protocol=protocol)
    # Labels in a tuple, data in Fortran order: still the format.
    fortran = {**batch, b"data": np.asfortranarray(td.planar(images))}
    pickles["fortran order"] = pickle.dumps(fortran, protocol=2)
    return pickles


def _hostile_pickles() -> dict[str, tuple[bytes, str]]:
    """name → (pickle, what the refusal must say)."""
    deep_key = P2 + b"}" + b")" + b"\x85" * 200_000 + b"K\x01s."  # SIGSEGV on main
    deep_list = P2 + b"]" * 100_000 + b"a" * 99_999 + b"."
    cycle = P2 + b"]q\x00h\x00a."  # a list appended to itself
    hidden_depth = (  # L1 stored in L2, then L1 grown: depth hidden from a count
        P2 + b"]q\x00" + b"]h\x00a" + b"0" + b"h\x00]a."
    )
    n = 200_000  # 200,000 fabricated images would be 1.4 GB
    zero_stride = _batch_around(
        _global("numpy", "ndarray")
        + b"((J" + struct.pack("<i", n) + b"M\x00\x0ct"  # shape (n, 3072)
        + _uint8() + _bytes(b"\x00" * 3072) + b"K\x00(K\x00K\x01t" + b"tR",
        n_labels=n,
    )  # fmt: skip
    no_build = _batch_around(_reconstruct_call(), n_labels=n)
    short_data = _batch_around(_array_build((n, 3072), b"\x00" * 3072), n_labels=n)
    long_data = _batch_around(_array_build((1, 3072), b"\x00" * 4000), n_labels=1)
    frombuffer_short = _batch_around(
        _global("numpy._core.numeric", "_frombuffer")
        + b"(" + _bytes(b"\x00" * 3072) + _uint8()
        + b"(J" + struct.pack("<i", n) + b"M\x00\x0ct" + b"X\x01\x00\x00\x00Ct" + b"R",
        n_labels=n,
    )  # fmt: skip
    out_of_band = pickle.dumps(
        {b"data": pickle.PickleBuffer(np.zeros((1, 3072), np.uint8)), b"labels": [0]},
        protocol=5,
        buffer_callback=lambda buffer: False,
    )
    big_label = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2**70]}
    return {
        "deep tuple key": (deep_key, "nested deeper than"),
        "deep list": (deep_list, "nested deeper than"),
        "cyclic list": (cycle, "modified after it was stored"),
        "hidden depth": (hidden_depth, "modified after it was stored"),
        "memo index 2e8": (
            P2 + b"Nr" + struct.pack("<I", 200_000_000) + b".",
            "memo index",
        ),
        "memo get unset": (P2 + b"j" + struct.pack("<I", 7) + b".", "never stored"),
        "zero-stride ndarray": (zero_stride, "calling numpy.ndarray"),
        "_reconstruct without BUILD": (no_build, "without its data"),
        "shape larger than data": (short_data, "holds 3,072 bytes"),
        "data larger than shape": (long_data, "holds 4,000 bytes"),
        "_frombuffer short": (frombuffer_short, "holds 3,072 bytes"),
        "out-of-band buffer": (out_of_band, "out-of-band"),
        "too many opcodes": (P2 + b"N0" * 1_100_000 + b"N.", "opcodes"),
        "truncated mid-argument": (
            P2 + b"B" + struct.pack("<I", 10**9) + b"xx",
            "truncated",
        ),
        "no STOP": (P2 + b"}", "truncated"),
        "unknown opcode": (P2 + b"\xff.", "malformed"),
        "label 2**70": (pickle.dumps(big_label, protocol=2), "labels must lie in 0…9"),
        "label 10": (
            pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}),
            "labels must lie in 0…9",
        ),
        "label -1": (
            pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [-1]}),
            "labels must lie in 0…9",
        ),
        "label bool": (
            pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [True]}),
            "list of int",
        ),
        "float data": (
            pickle.dumps({b"data": np.zeros((1, 3072), np.float32), b"labels": [1]}),
            "uint8",
        ),
        "string key repr bomb": (
            pickle.dumps({b"x" * 10**6: 1, b"labels": [1]}),
            "no 'data' key",
        ),
    }


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """Every CIFAR case, read in one memory-limited child: (expectations, outcomes)
    with expectations[name] = (path, what the refusal must say, or None: it loads)."""
    folder = tmp_path_factory.mktemp("cifar")
    marker = folder / "PWNED"
    expect, cases = {}, []

    def add(name, payload, complaint, reader="read_python_batch", file="data_batch_1"):
        path = folder / f"case_{len(expect)}" / file
        path.parent.mkdir()
        if isinstance(payload, int):  # a sparse file of that many bytes
            with open(path, "wb") as handle:
                handle.write(P2 + b"N.")
                handle.truncate(payload)
        else:
            path.write_bytes(payload)
        expect[name] = (path, complaint)
        cases.append((name, f"load({str(path)!r}, {reader})"))

    for name, (payload, complaint) in _hostile_pickles().items():
        add(name, payload, complaint)
    for name, payload in _code_execution_attempts(str(marker)).items():
        add(f"code: {name}", payload, "refused")
    add("oversized pickle", 200 * 2**20, "refused unread")
    images, labels = td.random_cifar(300, np.random.default_rng(0))
    for name, payload in _legitimate(images, labels).items():
        add(f"legitimate: {name}", payload, None)
    bad_label = np.zeros((2, 3073), np.uint8)
    bad_label[1, 0] = 200
    binaries = {
        "sparse 3 GB": (3 * 2**30, "refused unread"),
        "empty": (b"", "empty file"),
        "truncated": (b"\x00" * 5000, "not a whole number of 3,073-byte records"),
        "label 200": (bad_label.tobytes(), "labels must lie in 0…9"),
    }
    for name, (payload, complaint) in binaries.items():
        add(f"binary: {name}", payload, complaint, "read_binary_batch", "x.bin")
    records = np.concatenate([labels.astype(np.uint8)[:, None], td.planar(images)], 1)
    add("legitimate: binary", records.tobytes(), None, "read_binary_batch", "x.bin")
    outcomes, _ = run_cases(CIFAR_PRELUDE, cases, headroom=768 * 2**20)
    expected = [list(images.shape), images.tobytes().hex()[:64], labels.tolist()[:4]]
    return expect, outcomes, marker, expected, (images, labels)


def _assert_refused(expect, outcomes, prefix=""):
    names = [n for n in expect if n.startswith(prefix) and expect[n][1] is not None]
    assert names
    for name in names:
        path, complaint = expect[name]
        outcome = outcomes[name]
        assert not outcome["ok"], f"{name}: loaded {outcome['value']}"
        assert "DataFormatError" in outcome["bases"], (name, outcome)
        assert str(path) in outcome["message"], (name, outcome["message"])
        assert complaint in outcome["message"], (name, outcome["message"])


def test_hostile_cifar_pickles_are_refused_naming_the_file(cifar):
    expect, outcomes, *_ = cifar
    hostile = {
        n: e for n, e in expect.items() if ":" not in n or n == "oversized pickle"
    }
    _assert_refused(hostile, outcomes)


def test_code_execution_attempts_are_refused_and_run_nothing(cifar):
    expect, outcomes, marker, *_ = cifar
    _assert_refused(expect, outcomes, "code:")
    for name in (n for n in expect if n.startswith("code:")):
        assert outcomes[name]["type"] == "RefusedPickleError", outcomes[name]
        assert "Nothing in it was executed" in outcomes[name]["message"]
    assert not marker.exists()


def test_hostile_cifar_binaries_name_the_file(cifar):
    expect, outcomes, *_ = cifar
    _assert_refused(expect, outcomes, "binary:")


def test_legitimate_cifar_pickles_and_binaries_load(cifar):
    expect, outcomes, _, expected, (images, labels) = cifar
    legitimate = [n for n in expect if n.startswith("legitimate:")]
    assert len(legitimate) == 7
    for name in legitimate:
        assert outcomes[name] == {"name": name, "ok": True, "value": expected}, name
    # The exact bytes, in full, for the protocol-2 re-pickle (bytes written as
    # _codecs.encode(latin-1 text)), protocol 5 (numpy's _frombuffer) and Fortran order.
    from corridors.train._cifar import read_python_batch

    for name in ("protocol 2", "protocol 5", "fortran order"):
        loaded_images, loaded_labels = read_python_batch(
            expect[f"legitimate: {name}"][0]
        )
        np.testing.assert_array_equal(loaded_images, images)
        np.testing.assert_array_equal(loaded_labels, labels)


# -- ImageNet folders -------------------------------------------------------------

IMAGENET_PRELUDE = """
import numpy as np
from PIL import Image
Image.preinit(); Image.init()  # every plugin loaded before privileges are dropped
import corridors.train as ct
from corridors.train._pipeline import TrainBatches, EvalBatches

def decoded(root, size=16):
    data = ct.imagenet(root, image_size=size)
    train, val = data.train, data.test
    results = {}
    for split, name in ((train, "train"), (val, "val")):
        images, labels, ok = split.load(np.arange(len(split)), None, False)
        results[name] = {p.rsplit("/", 1)[-1] or p: bool(g) for p, g in zip(split.paths, ok)}
    return [data.num_classes, results]

from corridors.train._imagenet import JpegSplit
ct.imagenet  # corridors.train loads its names on first use: before dropping privileges

def decode_one(path, size=16, augment=False):
    split = JpegSplit([path], np.zeros(1), image_size=size)
    rng = np.random.default_rng(0) if augment else None
    image = split.decode(0, rng, augment)
    return None if image is None else list(image.shape)

def train_skips(root, batch):
    # (bad files counted over one epoch, bad files among the positions it covers)
    data = ct.imagenet(root, image_size=8)
    batches = TrainBatches(data.train, global_batch=batch, seed=0, augment=False)
    steps = len(data.train) // batch
    counted = sum(int(batches(step)["skipped"]) for step in range(steps))
    covered = batches.order(0)[: steps * batch]
    _, _, ok = data.train.load(covered, None, False)
    return [counted, int((~ok).sum())]
"""


def _png(width: int, height: int) -> bytes:
    """A valid all-black grayscale PNG, written without holding its pixels (a
    20000×20000 one is a 0.4 MB decompression bomb of 400 MB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    compressor = zlib.compressobj(9)
    row = bytes(1 + width)  # filter byte 0, then black pixels
    idat = b"".join(compressor.compress(row) for _ in range(height))
    idat += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def _jpeg(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def imagenet():
    """Every ImageNet case, read in one child as `nobody` (so that mode-0 files are
    unreadable even when the tests run as root) under a memory limit."""
    import pathlib
    import shutil

    root = pathlib.Path(tempfile.mkdtemp(prefix="corridors-hostile-"))
    folder = root / "imagenet"
    td.write_jpeg_folder(folder, classes=("n0", "n1", "n2"), per_class=2, size=(20, 16))
    train = folder / "train"
    (train / "n0" / "loop.JPEG").symlink_to("loop.JPEG")  # a symlink loop (file)
    (train / "n0" / "secret.JPEG").write_bytes(
        (train / "n0" / "n0_0.JPEG").read_bytes()
    )
    (train / "n1loop").symlink_to("n1loop")  # a symlink loop (class folder)
    (train / "n1" / "strip.png").write_bytes(_png(1, 10_000))  # 2.8 GB resized on main
    (train / "n1" / "strip2.png").write_bytes(_png(1, 100_000))
    (train / "n1" / "bomb.png").write_bytes(_png(20_000, 20_000))  # 4·10⁸ pixels
    # 8000×7000 = 5.6·10⁷ pixels > MAX_PIXELS: decodable only at JPEG's reduced scale.
    (root / "big.jpeg").write_bytes(_jpeg(8000, 7000))
    (root / "wide.jpeg").write_bytes(_jpeg(4000, 300))  # 13:1, within MAX_ASPECT
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    os.chmod(train / "n0" / "secret.JPEG", 0)  # an unreadable file
    os.chmod(train / "n2", 0)  # an unreadable class folder
    big, wide = str(root / "big.jpeg"), str(root / "wide.jpeg")
    cases = [
        ("folder", f"decoded({str(folder)!r})"),
        ("skips", f"train_skips({str(folder)!r}, 3)"),
        ("big eval", f"decode_one({big!r}, 224)"),
        ("big train", f"decode_one({big!r}, 224, True)"),
        ("wide eval", f"decode_one({wide!r}, 224)"),
    ]
    try:
        # 5.6·10⁷ RGB pixels decoded in full would take 168 MB: the limit leaves room
        # for the 1/8-scale decode only.
        outcomes, _ = run_cases(
            IMAGENET_PRELUDE, cases, headroom=160 * 2**20, drop_to_nobody=True
        )
    finally:
        os.chmod(train / "n2", 0o755)
        shutil.rmtree(root, ignore_errors=True)
    return outcomes


def test_hostile_imagenet_folders_are_skipped_and_counted(imagenet):
    assert imagenet["folder"]["ok"], imagenet["folder"]
    num_classes, ok = imagenet["folder"]["value"]
    # n1loop and the unreadable n2 keep their class indices (labels of the others
    # do not shift); each stands in the list as one unreadable entry.
    assert num_classes == 4
    bad = sorted(name for name, good in ok["train"].items() if not good)
    assert bad == [
        "bomb.png", "loop.JPEG", "n1loop", "n2", "secret.JPEG", "strip.png",
        "strip2.png",
    ]  # fmt: skip
    assert sum(ok["train"].values()) == 4 and all(ok["val"].values())


def test_each_bad_image_is_counted_once(imagenet):
    # One epoch over the 11 training entries in batches of 3: every bad one met is
    # counted once; refills that try a bad one first do not count it again.
    assert imagenet["skips"]["ok"], imagenet["skips"]
    counted, met = imagenet["skips"]["value"]
    assert counted == met > 0


def test_big_images_decode_within_bounds(imagenet):
    for name in ("big eval", "big train", "wide eval"):
        assert imagenet[name] == {"name": name, "ok": True, "value": [224, 224, 3]}
