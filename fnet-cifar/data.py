"""
Image sets for fnet-cifar, all returned as uint8 (N, C, H, W) arrays plus int64 labels, so one
pipeline (divide by 255, as the seed's ``ToTensor()``; no mean/std normalisation) serves them all.

* ``cifar100``: the standard ``cifar-100-python`` pickles (``train``, ``test``, ``meta``) under
  ``<data_dir>/cifar-100-python/``, or read in place from ``<data_dir>/cifar-100-python.tar.gz`` (MD5
  checked): what the seed trained on. Not downloadable on our machines; users who
  have it get the seed's experiment unchanged.
* ``fashion-mnist``: the IDX files of Debian's ``dataset-fashion-mnist`` package (60k/10k, 28x28 gray,
  10 classes), looked up in ``<data_dir>/fashion-mnist/`` and then in ``/usr/share/datasets/fashion-mnist/``.
* ``synthetic``: frequency-labelled gratings (``make_frequency_set``), generated from a seed in a second.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class ImageSet:
    name: str
    x_train: np.ndarray  # uint8 (N, C, H, W)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not: magic = 0, 0, dtype code, ndim; then ndim
    big-endian uint32 sizes; then the data, row-major."""
    path = Path(path)
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    data = np.frombuffer(raw, dtype, offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise ValueError(f"{path}: header says {dims} ({math.prod(dims)} values), file holds {data.size}")
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


@functools.lru_cache(maxsize=4)  # the grid trains many models on one set: read and unzip it once
def load_fashion_mnist(data_dir: str | Path) -> ImageSet:
    folders = [Path(data_dir) / "fashion-mnist", DEBIAN_FASHION_MNIST]
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    for folder in folders:
        files = [_find(folder, s) for s in stems]
        if all(files):
            xtr, ytr, xte, yte = (read_idx(f) for f in files)
            return ImageSet("fashion-mnist", xtr[:, None], ytr.astype(np.int64), xte[:, None], yte.astype(np.int64),
                            FASHION_CLASSES)
    raise FileNotFoundError(
        f"Fashion-MNIST not found in {folders[0]} or {folders[1]}: install it with "
        f"`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or copy the four *-ubyte.gz files "
        f"into {folders[0]}")


CIFAR100_ARCHIVE = "cifar-100-python.tar.gz"
# The MD5 published for the archive (the one torchvision and other loaders check).
CIFAR100_ARCHIVE_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"


def _unpickle(blob: bytes, where: str) -> dict:
    try:
        d = pickle.loads(blob, encoding="bytes")  # the official files are Python-2 pickles: bytes keys
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing here
        raise ValueError(f"{where} is not a CIFAR-100 pickle ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{where} is not a CIFAR-100 pickle (holds a {type(d).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def md5sum(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cifar100_files(data_dir: Path, md5: str) -> tuple[dict[str, bytes], str]:
    """The train/test/meta pickles, from the extracted folder or else straight from the archive (read
    in place, nothing extracted). The archive's MD5 is checked when `md5` is given."""
    folder, archive = data_dir / "cifar-100-python", data_dir / CIFAR100_ARCHIVE
    if all((folder / n).is_file() for n in ("train", "test", "meta")):
        return {n: (folder / n).read_bytes() for n in ("train", "test", "meta")}, str(folder)
    if not archive.is_file():
        raise FileNotFoundError(
            f"CIFAR-100 not found: neither {folder}/{{train,test,meta}} nor {archive} exists; put the "
            f"'CIFAR-100 python version' archive ({CIFAR100_ARCHIVE}, from the CIFAR page of the University of "
            f"Toronto) into {data_dir}")
    if md5 and md5sum(archive) != md5.lower():
        raise ValueError(f"{archive}: MD5 {md5sum(archive)} differs from the expected {md5} "
                         "(a damaged or different archive; pass --cifar-md5 '' to skip the check)")
    try:
        with tarfile.open(archive, "r:*") as tar:
            files = {}
            for n in ("train", "test", "meta"):
                member = tar.getmember(f"cifar-100-python/{n}")
                files[n] = tar.extractfile(member).read()
    except (tarfile.TarError, KeyError, OSError) as e:
        raise ValueError(f"{archive} is not the cifar-100-python archive ({type(e).__name__}: {e})") from None
    return files, str(archive)


@functools.lru_cache(maxsize=4)
def load_cifar100(data_dir: str | Path, labels: str = "fine", md5: str = CIFAR100_ARCHIVE_MD5) -> ImageSet:
    """The ``cifar-100-python`` format: ``train``/``test`` hold ``data`` (uint8 N x 3072, R then G then B
    planes of 32x32, row-major) and ``fine_labels``/``coarse_labels``; ``meta`` holds the label names.
    Read from ``<data_dir>/cifar-100-python/`` or, failing that, from ``<data_dir>/cifar-100-python.tar.gz``."""
    if labels not in ("fine", "coarse"):
        raise ValueError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    files, where = _cifar100_files(Path(data_dir), md5)
    splits = []
    for name in ("train", "test"):
        d = _unpickle(files[name], f"{where}: {name}")
        if "data" not in d or f"{labels}_labels" not in d:
            raise ValueError(f"{where}: {name} lacks 'data' or '{labels}_labels' (keys: {sorted(d)})")
        x = np.asarray(d["data"], dtype=np.uint8)
        if x.ndim != 2 or x.shape[1] != 3072:
            raise ValueError(f"{where}: {name}: 'data' has shape {x.shape}, expected (N, 3072)")
        splits += [x.reshape(-1, 3, 32, 32), np.asarray(d[f"{labels}_labels"], dtype=np.int64)]
    meta = _unpickle(files["meta"], f"{where}: meta")
    names = [n.decode() if isinstance(n, bytes) else n for n in meta[f"{labels}_label_names"]]
    return ImageSet(f"cifar100-{labels}" if labels == "coarse" else "cifar100", *splits, names)


# Ten class frequencies (cycles per image along rows, columns): three radii, several orientations.
CLASS_FREQS = [(0, 3), (3, 0), (2, 2), (2, -2), (0, 6), (6, 0), (4, 4), (4, -4), (0, 10), (10, 0)]


@functools.lru_cache(maxsize=4)
def make_frequency_set(n_train: int = 10000, n_test: int = 5000, size: int = 32, channels: int = 3,
                       noise: float = 2.0, seed: int = 0) -> ImageSet:
    """Frequency-labelled images: class k is a grating at frequency CLASS_FREQS[k] (jittered by up to
    +-0.5 cycle per axis, so energy spreads over neighbouring bins), with a random phase, a random colour
    and amplitude, plus a weaker grating at a random frequency and white noise of std `noise` (the
    grating's amplitude is 0.5-1).

    Random phase means a model that keeps only Re FFT (the even part of the image) sees the class
    grating with amplitude |cos(phase)|; classes differ only by where the spectral energy sits, which
    the positional channels label. With noise 2, a linear probe on log|FFT| scored about 88% and one on
    log|Re FFT| about 62% (20k training images, 5 epochs; measured once while designing the set)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    y = np.arange(n) % len(CLASS_FREQS)
    rng.shuffle(y)
    grid = np.arange(size) / size
    rr, cc = np.meshgrid(grid, grid, indexing="ij")

    def gratings(freqs: np.ndarray, amp: np.ndarray) -> np.ndarray:  # (n, 2), (n,) -> (n, C, H, W)
        phase = rng.uniform(0, 2 * np.pi, n)
        g = np.cos(2 * np.pi * (freqs[:, 0, None, None] * rr + freqs[:, 1, None, None] * cc) + phase[:, None, None])
        colour = rng.uniform(0.2, 1.0, (n, channels))
        return (amp[:, None] * colour)[:, :, None, None] * g[:, None]

    f_class = np.asarray(CLASS_FREQS, dtype=np.float64)[y] + rng.uniform(-0.5, 0.5, (n, 2))
    f_other = rng.uniform(-12, 12, (n, 2))
    img = gratings(f_class, rng.uniform(0.5, 1.0, n)) + gratings(f_other, rng.uniform(0.0, 0.5, n))
    img += noise * rng.standard_normal(img.shape)
    x = np.clip(np.round(127.5 + 40.0 * img), 0, 255).astype(np.uint8)
    classes = [f"f=({a},{b})" for a, b in CLASS_FREQS]
    return ImageSet("synthetic", x[:n_train], y[:n_train].astype(np.int64), x[n_train:], y[n_train:].astype(np.int64),
                    classes)


DATASETS = ("fashion-mnist", "synthetic", "cifar100", "cifar100-coarse")


def load_dataset(name: str, data_dir: str | Path, cifar_md5: str = CIFAR100_ARCHIVE_MD5, **synthetic_kw) -> ImageSet:
    if name == "fashion-mnist":
        return load_fashion_mnist(str(data_dir))
    if name in ("cifar100", "cifar100-coarse"):
        return load_cifar100(str(data_dir), "coarse" if name.endswith("coarse") else "fine", cifar_md5)
    if name == "synthetic":
        return make_frequency_set(**synthetic_kw)
    raise ValueError(f"unknown dataset {name!r}: use fashion-mnist, cifar100, cifar100-coarse or synthetic")
