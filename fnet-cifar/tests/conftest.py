"""Shared test set-up: writers of tiny files in the real data formats. The experiment's own modules
(data, model, train, ...) are imported inside tests: the root conftest.py puts fnet-cifar/ on sys.path
while they run."""

import gzip
import hashlib
import io
import pickle
import struct
import tarfile

import numpy as np
import pytest


def _write_idx(path, array, gz=True):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if gz else open)(path, "wb").write(header + body)


def _fake_fashion_mnist(folder, n_train=12, n_test=6):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    sets = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        _write_idx(folder / f"{split}-images-idx3-ubyte.gz", x)
        _write_idx(folder / f"{split}-labels-idx1-ubyte.gz", y)
        sets[split] = (x, y)
    return sets


class _Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote it: a `str` (our bytes) is a BINSTRING/SHORT_BINSTRING, which
    Python 3 reads back as bytes under encoding="bytes" (Python 3 itself would pickle bytes as a
    `_codecs.encode` call)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def _cifar100_blobs(n_train=7, n_test=3):
    """The three pickles of cifar-100-python: dicts with str (py2) keys, 'data' a uint8 (N, 3072) array,
    labels as lists of ints, filenames and batch_label as str."""
    rng = np.random.default_rng(2)
    blobs, sets = {}, {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine, coarse = [int(v) for v in rng.integers(0, 100, n)], [int(v) for v in rng.integers(0, 20, n)]
        blobs[split] = py2_pickle({b"filenames": [b"img_%d.png" % i for i in range(n)],
                                   b"batch_label": b"training batch 1 of 1" if split == "train"
                                   else b"testing batch 1 of 1",
                                   b"fine_labels": fine, b"coarse_labels": coarse, b"data": x})
        sets[split] = (x, fine, coarse)
    blobs["meta"] = py2_pickle({b"fine_label_names": [b"fine%d" % i for i in range(100)],
                                b"coarse_label_names": [b"coarse%d" % i for i in range(20)]})
    return blobs, sets


def _fake_cifar100(root, n_train=7, n_test=3):
    """The extracted folder."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    blobs, sets = _cifar100_blobs(n_train, n_test)
    for name, blob in blobs.items():
        (folder / name).write_bytes(blob)
    return sets


def _fake_cifar100_archive(root, n_train=7, n_test=3):
    """cifar-100-python.tar.gz as published: a gzip tar holding the folder entry `cifar-100-python/`, then
    `file.txt~`, `train`, `test`, `meta` inside it. Returns the label sets and the archive's MD5."""
    blobs, sets = _cifar100_blobs(n_train, n_test)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("cifar-100-python")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for name, blob in [("file.txt~", b""), *((n, blobs[n]) for n in ("train", "test", "meta"))]:
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size, info.mode = len(blob), 0o644
            tar.addfile(info, io.BytesIO(blob))
    return sets, hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def write_idx():
    return _write_idx


@pytest.fixture
def fake_fashion_mnist():
    return _fake_fashion_mnist


@pytest.fixture
def fake_cifar100():
    return _fake_cifar100


@pytest.fixture
def fake_cifar100_archive():
    return _fake_cifar100_archive
