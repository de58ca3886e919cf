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


@pytest.fixture
def refusal(capsys):
    """refusal(fn, argv) -> the one line `fn(argv)` stops with (SystemExit, non-zero status, no traceback)."""
    def call(fn, argv) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            fn(argv)
        code = stop.value.code
        message = code if isinstance(code, str) else capsys.readouterr().err  # argparse prints, then exits 2
        assert code not in (0, None), message
        lines = message.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), message
        return lines[0]
    return call
