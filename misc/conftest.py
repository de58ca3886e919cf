"""What the misc studies' tests share: the study script under test (the test file's SCRIPT), imported by path
under a name of its own, and a run of its --quick mode with every output in the test's tmp_path."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest


def load_script(path: Path):
    name = f"misc_{path.parent.name.replace('-', '_')}_{path.stem}"  # unique: other folders have a train.py too
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def load_study():
    """load_study(path): a study script as a module (once per session)."""
    return load_script


@pytest.fixture(scope="module")
def script(request):
    """The test file's SCRIPT as a module."""
    return load_script(request.module.SCRIPT)


@pytest.fixture
def run_quick(request, tmp_path):
    """run_quick(*flags): SCRIPT --quick with --out-dir tmp_path/results --fig-dir tmp_path/figures; returns tmp_path."""
    def run(*flags) -> Path:
        command = [sys.executable, str(request.module.SCRIPT), "--quick", "--out-dir", str(tmp_path / "results"),
                   "--fig-dir", str(tmp_path / "figures"), *flags]
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return tmp_path
    return run
