"""Keep experiments' plain-file modules apart in one pytest process.

Each experiment keeps its code as plain files next to each other (data.py, model.py, train.py, ...) and
several experiments use the same names. Its tests put the experiment's folder on sys.path and import
them by those names, so without care the second experiment would get the first one's cached `model`.
Before the test files of an experiment's `tests/` folder are imported, the names of that experiment's
files are dropped from sys.modules; before each of its tests, the modules its test file imported are put
back (and other experiments' modules of the same names removed), so imports made while the test runs
find the same modules or this experiment's files.
"""

import functools
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
_imported: dict[Path, dict] = {}  # experiment folder -> {module name: module}


def _experiment(path) -> Path | None:
    """The experiment folder of a test file in <experiment>/tests/, else None."""
    path = Path(path).resolve()
    if path.parent.name == "tests" and path.parent.parent.parent == ROOT:
        return path.parent.parent
    return None


@functools.cache
def _own_names(folder: Path) -> frozenset:
    return frozenset(p.stem for p in folder.glob("*.py"))


def pytest_collectstart(collector):
    folder = _experiment(getattr(collector, "path", "")) if isinstance(collector, pytest.Module) else None
    if folder is not None:
        for name in _own_names(folder):
            sys.modules.pop(name, None)


def pytest_collectreport(report):
    if "::" in report.nodeid or not report.nodeid.endswith(".py"):
        return  # only a test file's own report, right after its import
    folder = _experiment(ROOT / report.nodeid)
    if folder is not None:
        _imported[folder] = {name: sys.modules[name] for name in _own_names(folder) if name in sys.modules}


@pytest.fixture(autouse=True)
def _own_experiment_modules(request):
    folder = _experiment(request.node.path)
    if folder is not None and folder in _imported:
        for name in _own_names(folder):  # its own modules, or none by that name (imported afresh)
            if name in _imported[folder]:
                sys.modules[name] = _imported[folder][name]
            else:
                sys.modules.pop(name, None)
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
        sys.path.insert(0, str(folder))
    yield


@pytest.fixture
def one_thread():
    """One torch thread for a test of tiny models: as fast, and far faster on a busy shared CPU. Folders
    whose every test wants it request it from an autouse fixture of their own."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
