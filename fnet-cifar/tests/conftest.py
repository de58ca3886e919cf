"""Shared test set-up: the src/ import path and writers of tiny files in the real data formats."""

import gzip
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

# fnet-cifar/src holds this experiment's library (the hyphenated folder is not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


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


def _fake_cifar100(root, n_train=7, n_test=3):
    """Files in the layout and encoding of the official archive: Python-2 style pickles with bytes keys."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    sets = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine, coarse = list(rng.integers(0, 100, n)), list(rng.integers(0, 20, n))
        blob = {b"filenames": [b"x.png"] * n, b"batch_label": b"batch", b"fine_labels": fine,
                b"coarse_labels": coarse, b"data": x}
        (folder / split).write_bytes(pickle.dumps(blob, protocol=2))
        sets[split] = (x, fine, coarse)
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return sets


@pytest.fixture
def write_idx():
    return _write_idx


@pytest.fixture
def fake_fashion_mnist():
    return _fake_fashion_mnist


@pytest.fixture
def fake_cifar100():
    return _fake_cifar100
