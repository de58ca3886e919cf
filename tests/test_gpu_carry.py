"""scripts/gpu_carry.sh check: names every missing carry path of a GPU job, one line each, and exits 1;
a wrong CREPE weight file is named too; an unknown experiment is a one-line error with exit 2."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def checkout(tmp_path) -> Path:
    """An empty 'checkout': the script alone (it resolves every path from its own location)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "gpu_carry.sh", tmp_path / "scripts")
    return tmp_path


def check(root: Path, *experiments):
    return subprocess.run(["bash", str(root / "scripts" / "gpu_carry.sh"), "check", *experiments],
                          capture_output=True, text=True, timeout=60)


def test_a_new_checkout_misses_every_carry_path(tmp_path):
    result = check(checkout(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 5 + 3 + 1 + 4 and all(line.startswith("missing (") for line in lines)
    assert "missing (tsf): time-series-forecasting/data/training_pool.npz" in lines


def test_present_files_pass_and_a_wrong_weight_file_is_named(tmp_path):
    root = checkout(tmp_path)
    carry = root / "toy_example_audio" / "gpu_carry"
    carry.mkdir(parents=True)
    for name in ("tinysoundfont-0.3.7-cp312-cp312-manylinux_2_17_x86_64.whl", "pretty_midi-0.2.11.post0-py3-none-any.whl",
                 "mido-1.3.3-py3-none-any.whl", "importlib_resources-7.1.0-py3-none-any.whl"):
        (carry / name).write_bytes(b"")
    (carry / "tiny.pth").write_bytes(b"not the weights")
    result = check(root, "audio")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wrong (audio): toy_example_audio/gpu_carry/tiny.pth")
    wheels = root / "imitation-learning" / ".whl"
    wheels.mkdir(parents=True)
    for name in ("ale_py-0.12.1-cp312-cp312-manylinux_2_28_x86_64.whl", "gymnasium-1.4.0-py3-none-any.whl",
                 "farama_notifications-0.0.6-py3-none-any.whl"):
        (wheels / name).write_bytes(b"")
    result = check(root, "imitation")
    assert result.returncode == 0 and result.stdout.strip() == "ok: imitation"


def test_an_unknown_experiment_is_one_line_and_exit_2(tmp_path):
    result = check(checkout(tmp_path), "audio", "atari")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == "error: unknown experiment 'atari' (audio, imitation, tsf, fnet)"
