"""Load this experiment's scripts (data.py, train.py, ...) as modules without leaking their plain
names: other experiments' tests may import their own `data` or `train` in the same pytest process."""

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

FOLDER = Path(__file__).resolve().parents[1]
SIBLINGS = ("data", "metrics", "crepe_encoder", "saturation", "train", "pretrained", "sweep", "aggregate", "plot")


def _load_all() -> SimpleNamespace:
    saved = {k: sys.modules.pop(k) for k in SIBLINGS if k in sys.modules}
    sys.path.insert(0, str(FOLDER))
    try:
        mods = {k: importlib.import_module(k) for k in SIBLINGS}
    finally:
        sys.path.remove(str(FOLDER))
        for k in SIBLINGS:
            sys.modules.pop(k, None)
        sys.modules.update(saved)
    return SimpleNamespace(**mods)


@pytest.fixture(scope="session")
def audio():
    """Namespace with the modules of toy_example_audio (data, metrics, train, pretrained, aggregate, ...)."""
    return _load_all()


@pytest.fixture(scope="session")
def folder() -> Path:
    return FOLDER
