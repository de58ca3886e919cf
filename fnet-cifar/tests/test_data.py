"""Readers on small files written in the real formats (no real data set needed)."""

import struct

import numpy as np
import pytest



@pytest.fixture
def data():
    import data  # the experiment folder is on sys.path while its tests run (root conftest.py)

    data.load_fashion_mnist.cache_clear()
    data.load_cifar100.cache_clear()
    return data


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader(data, tmp_path, gz, write_idx):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    path = tmp_path / ("img.gz" if gz else "img")
    write_idx(path, images, gz)
    np.testing.assert_array_equal(data.read_idx(path), images)
    ints = np.array([[1, -2, 300], [4, 5, 70000]], dtype=np.int32)
    write_idx(tmp_path / "ints", ints, gz=False)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "ints"), ints)


def test_idx_reader_rejects_bad_files(data, tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="header says"):
        data.read_idx(tmp_path / "short")


def test_fashion_mnist_reader(data, tmp_path, fake_fashion_mnist):
    sets = fake_fashion_mnist(tmp_path / "fashion-mnist")
    d = data.load_fashion_mnist(str(tmp_path))
    assert d.x_train.shape == (12, 1, 28, 28) and d.x_test.shape == (6, 1, 28, 28)
    np.testing.assert_array_equal(d.x_train[:, 0], sets["train"][0])
    np.testing.assert_array_equal(d.y_test, sets["t10k"][1])
    assert d.y_train.dtype == np.int64 and len(d.classes) == 10


def test_missing_fashion_mnist_says_how_to_get_it(data, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as e:
        data.load_fashion_mnist(str(tmp_path))
    msg = str(e.value)
    assert "\n" not in msg and "apt-get install dataset-fashion-mnist" in msg


def test_cifar100_reader(data, tmp_path, fake_cifar100):
    sets = fake_cifar100(tmp_path)
    d = data.load_cifar100(str(tmp_path))
    assert d.x_train.shape == (7, 3, 32, 32) and d.x_test.shape == (3, 3, 32, 32)
    x, fine, _ = sets["train"]
    # Row layout: 1024 red values, then green, then blue, each row-major 32x32.
    np.testing.assert_array_equal(d.x_train[4, 1, 2, 5], x[4, 1024 + 2 * 32 + 5])
    np.testing.assert_array_equal(d.y_train, fine)
    assert d.classes[3] == "fine3" and d.y_train.dtype == np.int64
    coarse = data.load_dataset("cifar100-coarse", tmp_path)
    np.testing.assert_array_equal(coarse.y_test, sets["test"][2])
    assert len(coarse.classes) == 20


def test_missing_cifar100_says_how_to_get_it(data, tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-100-python.tar.gz") as e:
        data.load_cifar100(str(tmp_path / "empty"))
    assert "\n" not in str(e.value)


def test_cifar100_reader_on_the_published_archive_layout(data, tmp_path, fake_cifar100_archive):
    """The archive as published: Python-2 protocol-2 pickles (str keys, read back as bytes with
    encoding="bytes") in cifar-100-python/ inside a gzip tar, read in place; its MD5 checked when given."""
    sets, md5 = fake_cifar100_archive(tmp_path)
    raw = __import__("tarfile").open(tmp_path / "cifar-100-python.tar.gz").extractfile("cifar-100-python/train").read()
    assert raw[:2] == b"\x80\x02" and b"U\x04data" in raw  # protocol 2, 'data' as a py2 SHORT_BINSTRING
    d = data.load_cifar100(str(tmp_path), "fine", md5)
    x, fine, coarse = sets["train"]
    assert d.x_train.shape == (7, 3, 32, 32) and d.x_test.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(d.x_train.reshape(7, -1), x)
    np.testing.assert_array_equal(d.y_train, fine)
    assert d.classes[:2] == ["fine0", "fine1"] and not (tmp_path / "cifar-100-python").exists()  # nothing extracted
    coarse_set = data.load_dataset("cifar100-coarse", tmp_path, cifar_md5="")  # '' skips the check
    np.testing.assert_array_equal(coarse_set.y_train, coarse)
    assert len(coarse_set.classes) == 20


def test_cifar100_archive_md5_mismatch_is_refused(data, tmp_path, fake_cifar100_archive):
    fake_cifar100_archive(tmp_path)
    with pytest.raises(ValueError, match="MD5 .* differs from the expected eb9058c3a382ffc7106e4002c42a8d85"):
        data.load_cifar100(str(tmp_path))  # the default is the published MD5; this archive is not the real one
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"not a tar")
    data.load_cifar100.cache_clear()
    with pytest.raises(ValueError, match="is not the cifar-100-python archive"):
        data.load_cifar100(str(tmp_path), "fine", "")


def test_frequency_set_is_deterministic_and_balanced(data):
    a = data.make_frequency_set(200, 100, size=16, seed=3)
    b = data.make_frequency_set.__wrapped__(200, 100, size=16, seed=3)  # bypass the cache: really regenerate
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.x_train.shape == (200, 3, 16, 16) and a.x_train.dtype == np.uint8
    assert np.bincount(a.y_train, minlength=10).min() >= 15


def test_frequency_set_label_is_the_dominant_frequency(data):
    """Without noise the class grating is the strongest spectral peak (the distractor is weaker)."""
    d = data.make_frequency_set(300, 10, size=32, noise=0.0, seed=0)
    x = d.x_train.astype(np.float64).mean(axis=1)
    spec = np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True)))
    hits = 0
    for s, y in zip(spec, d.y_train):
        peak = np.unravel_index(np.argmax(s), s.shape)
        peak = tuple(((p + 16) % 32) - 16 for p in peak)  # signed frequency
        fy, fx = data.CLASS_FREQS[y]
        hits += min(abs(peak[0] - fy) + abs(peak[1] - fx), abs(peak[0] + fy) + abs(peak[1] + fx)) <= 1
    assert hits / len(d.y_train) > 0.9
