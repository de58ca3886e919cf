"""The benchmark's naive implementation of the published algorithm computes the same function as the head."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from fourier_head import Fourier_Head

BENCH = Path(__file__).resolve().parents[1] / "misc" / "benchmarks" / "head_speed.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("head_speed", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_naive_equals_head():
    bench = load_benchmark()
    torch.manual_seed(0)
    for m, n in [(50, 12), (18, 8), (300, 64)]:
        head = Fourier_Head(16, m, n, regularizion_gamma=1e-3)
        naive = bench.NaiveFourierHead(16, m, n, gamma=1e-3)
        naive.load_state_dict(head.state_dict())
        x = torch.randn(2, 5, 16)
        # compare probabilities: the naive 1/2 + Re(...) form cancels catastrophically near p = 0,
        # where log() magnifies the float32 error; |E a|^2 (the head) does not.
        torch.testing.assert_close(naive(x).exp(), head(x).exp(), atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(naive.loss_regularization, head.loss_regularization, rtol=1e-4, atol=0)


def test_benchmark_cli_quick(tmp_path):
    out = tmp_path / "speed.json"
    subprocess.run([sys.executable, str(BENCH), "--quick", "--repeats", "2", "--out", str(out)], check=True,
                   capture_output=True)
    data = json.loads(out.read_text())
    assert set(data["provenance"]) >= {"gpu", "torch", "commit", "date"}
    for row in data["rows"]:
        assert set(row) >= {"shape", "batch", "d", "m", "N", "linear_ms", "fourier_ms", "naive_ms",
                            "linear_peak_mib", "fourier_peak_mib", "naive_peak_mib"}


def test_end_to_end_cli_quick(tmp_path):
    # the step-time benchmark runs its toy model with both heads, eager and (where the CPU compiler
    # backend has a C++ compiler) under torch.compile
    out = tmp_path / "e2e.json"
    script = BENCH.parent / "end_to_end.py"
    modes = ["eager", "compiled"] if shutil.which(os.environ.get("CXX", "g++")) else ["eager"]
    subprocess.run([sys.executable, str(script), "--models", "toy MLP", "--modes", *modes,
                    "--steps", "2", "--rounds", "1", "--out", str(out)], check=True, capture_output=True)
    rows = json.loads(out.read_text())["rows"]
    assert [r["mode"] for r in rows] == modes
    assert all(r["linear_step_ms"] > 0 and r["fourier_step_ms"] > 0 for r in rows)
