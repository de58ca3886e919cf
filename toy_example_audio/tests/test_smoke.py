"""CPU smoke run of the whole chain on a tiny generated set: sweep.py --quick -> aggregate.py -> plot.py,
each as a subprocess, as a user would run them."""

import json
import subprocess
import sys


def run(folder, script, *args, cwd):
    result = subprocess.run([sys.executable, str(folder / script), *args], cwd=cwd, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_quick_chain(folder, tmp_path):
    runs, results, figures = tmp_path / "runs", tmp_path / "results", tmp_path / "figures"
    common = ["--quick", "--data-dir", str(tmp_path / "data"), "--out-dir", str(runs)]
    grid = ["--seeds", "0", "--num-frequencies-grid", "2", "--epochs", "2"]
    out = run(folder, "sweep.py", *common, *grid, cwd=tmp_path)
    assert "2 runs, 0 already done, 2 to go" in out
    run_dir = runs / "standard-bin5" / "fourier-f2-g1e-06" / "seed0"
    for name in ("config.json", "env.json", "metrics.json", "predictions.npz"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 0
    history = json.loads((run_dir / "metrics.json").read_text())["history"]
    assert history[-1]["train/reg"] > 0  # the Fourier regulariser was part of the loss

    assert "0 to go" in run(folder, "sweep.py", *common, *grid, cwd=tmp_path)  # resumes: nothing left
    # --time-budget: no run starts that the guess (before any has finished) says would end after it
    out = run(folder, "sweep.py", *common, "--seeds", "1", "--num-frequencies-grid", "2", "--epochs", "2",
              "--time-budget", "60", "--run-seconds-guess", "100", cwd=tmp_path)
    assert "sweep: 0 runs" in out and "2 not started (--time-budget)" in out and not (runs / "standard-bin5" / "linear" / "seed1").exists()
    # the same run folder with other settings: one line naming the field, nothing trained or overwritten
    rerun = subprocess.run([sys.executable, str(folder / "train.py"), *common, "--head", "fourier", "--num-frequencies",
                            "2", "--epochs", "2", "--lr", "0.002"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    err = rerun.stderr.strip()
    assert rerun.returncode != 0 and len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert "lr: 0.0005 -> 0.002" in err and "--force" in err and "Traceback" not in err
    assert json.loads((run_dir / "config.json").read_text())["lr"] == 0.0005

    run(folder, "aggregate.py", "--runs", str(runs), "--results", str(results), cwd=tmp_path)
    summary = json.loads((results / "summary_standard-bin5.json").read_text())
    assert summary["quick"] is True and json.loads((results / "example_pmfs.json").read_text())["quick"] is True
    assert "| paper" not in (results / "table.md").read_text() and "%" not in (results / "table.md").read_text()
    assert {(r["head"], r["num_frequencies"], r["n_seeds"]) for r in summary["rows"]} == {("linear", 0, 1), ("fourier", 2, 1)}
    for row in summary["rows"]:
        for m in ("accuracy", "f1", "mse_bpm", "nll", "ece", "smoothness"):
            assert set(row[m]) == {"per_seed", "mean", "std"} and row[m]["mean"] is not None
    assert set(summary["provenance"]) >= {"gpu", "torch", "commit", "wall_seconds"}
    assert summary["provenance"]["wall_seconds"] > 0

    run(folder, "plot.py", "--results", str(results), "--figures", str(figures), cwd=tmp_path)
    assert (figures / "fig2_pmfs.png").stat().st_size > 10_000
    assert (figures / "metrics_vs_frequencies_standard-bin5.png").stat().st_size > 10_000
    assert (figures / "saturation_cap.png").stat().st_size > 10_000
