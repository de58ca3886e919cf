"""The four games (issue 20): the game table against the authors' scripts, one game list everywhere, unknown games
refused in one line by run.sh and the GPU scripts, every new game's emulator and config, the GPU DT script's
wait/status/collect on a fake machine, and on synthetic runs of a new game: its rows in the one summary.json,
the sweep's selection, the README's four-game block and the four-game figure. CPU, about 10 s."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # the experiment's modules are plain files

import aggregate  # noqa: E402
import atari  # noqa: E402
import train  # noqa: E402

NEW = ("BankHeist", "DoubleDunk", "Gravitar")
# the authors' values (branch chronos-dataset-size-ablation: mingpt/trainer_atari.py returns_map,
# scripts/eval/atari_expert_scores.py), typed in again here so that an edit of atari.GAMES shows
AUTHORS = {"Seaquest": (1150, 68.4, 42054.7), "BankHeist": (700, 14.2, 753.1), "DoubleDunk": (-10, -18.6, -16.4),
           "Gravitar": (250, 173.0, 3351.4)}
SCRIPTS = ("run.sh", "gpu_jobs/game_agent.sh", "gpu_jobs/game_dt.sh")


def test_game_table_is_the_authors():
    assert {g: (v["target_return"], v["random"], v["human"]) for g, v in atari.GAMES.items()} == AUTHORS
    for g, (_, random, human) in AUTHORS.items():
        assert atari.normalized_return(g, [random, human]) == pytest.approx([0.0, 100.0])
        assert atari.GAMES[g]["authors_frequencies"] == tuple(range(2, 34, 2))
    assert set(atari.SWEEP) <= set(atari.AUTHORS_FREQUENCIES) and atari.SWEEP == (2, 8, 14, 20, 26, 32)
    assert atari.AUTHORS["seeds"] == (123, 231, 312, 42) and atari.AUTHORS["context_length"] == 30
    assert set(atari.AUTHORS_PLOTS) == set(NEW)
    for a in atari.AUTHORS_PLOTS.values():  # a reading at every N of our sweep
        assert set(a["fourier"]) == set(a["fourier_smoothness"]) == set(atari.SWEEP)


def test_one_game_list_in_the_shell_scripts():
    for script in SCRIPTS:
        found = re.search(r'^GAMES="([^"]+)"', (HERE / script).read_text(), re.M)
        assert found and found.group(1).split() == list(atari.GAMES), script


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize("script", SCRIPTS)
def test_scripts_refuse_an_unknown_game_in_one_line(script, tmp_path):
    p = subprocess.run(["bash", script, "Pong"], cwd=HERE, capture_output=True, text=True, timeout=30,
                       env={**os.environ, "OUT": str(tmp_path)})
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [p.stderr.strip()], p.stderr
    assert p.stderr.startswith("error: unknown game") and "Gravitar" in p.stderr


@pytest.mark.parametrize("game", NEW)
def test_new_games_emulate_and_configure(game):
    pytest.importorskip("ale_py")
    envs = atari.make_vector_env(game, 2, 1, repeat_action_probability=0.25)
    obs, _ = envs.reset(seed=0)
    obs, reward, *_ = envs.step(np.zeros(2, dtype=np.int64))
    envs.close()
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    cfg = train.parse_config(["--game", game, "--dataset", "dqn-replay-like", "--head", "fourier",
                              "--num-frequencies", "26", "--seed", "231"])
    assert cfg.target_return == atari.GAMES[game]["target_return"]
    assert cfg.out_dir == str(HERE / "runs/dqn-replay-like" / game / "fourier26/seed231")
    assert cfg.data_dir == str(HERE / "data/dqn-replay-like" / game)


FAKE_MACHINE = {  # script, its arguments, game, pid file, log file, archive
    "game_dt": ("game_dt.sh", ["Gravitar"], {}, "Gravitar", "dt_Gravitar.pids", "dt_Gravitar_linear_123.log",
                "dt_Gravitar_runs.tgz"),
    "dqn_dt": ("dqn_dt.sh", [], {}, "Seaquest", "dt_Seaquest.pids", "dt_Seaquest_linear_123.log", "dt_Seaquest_runs.tgz"),
}


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("tar") is None, reason="no bash or tar")
@pytest.mark.parametrize("which", FAKE_MACHINE)
def test_dt_scripts_wait_then_collect_on_a_fake_machine(tmp_path, which):
    """MODE=wait ends in status and collect, invoked from the repository root as documented (the script calls
    itself by absolute path: common.sh changes the directory); nvidia-smi is a stub, python3 this interpreter."""
    script, args, extra_env, game, pids, log, archive = FAKE_MACHINE[which]
    root = tmp_path / "repo"
    shutil.copytree(HERE / "gpu_jobs", root / "imitation-learning/gpu_jobs")
    il = root / "imitation-learning"
    run = il / f"runs/dqn-replay-like/{game}/linear/seed123"
    run.mkdir(parents=True)
    (run / "history.json").write_text("[{}]")
    (run / "metrics.json").write_text("{}")
    (run / "ckpt.pt").write_text("x")
    (il / "runs/logs").mkdir(parents=True)
    (il / "runs/logs" / pids).write_text("999999999 linear 123\n")
    (il / "runs/logs" / log).write_text("epoch 1: ...\n")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "nvidia-smi").write_text("#!/bin/sh\nexit 0\n")
    (bin_ / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "OUT": str(out), "MODE": "wait", "LIMIT": "0",
           "FOURIER_HEAD_COMMIT": "c0ffee", **extra_env}
    p = subprocess.run(["bash", f"imitation-learning/gpu_jobs/{script}", *args], cwd=root, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "runs still going: 0" in p.stdout and "== linear seed 123: finished" in p.stdout
    assert "finished runs: 1" in p.stdout
    names = subprocess.run(["tar", "tzf", str(out / archive)], capture_output=True, text=True).stdout
    assert f"runs/dqn-replay-like/{game}/linear/seed123/metrics.json" in names and "ckpt.pt" not in names


def test_publishing_a_second_games_snapshots_warns_about_the_travel_limit(tmp_path, capsys):
    pqn = pytest.importorskip("pqn")
    import publish_snapshots
    src, snaps = tmp_path / "run", tmp_path / "pqn"
    src.mkdir()
    (snaps / "Seaquest").mkdir(parents=True)
    (snaps / "Seaquest/policy_001.pt").write_bytes(b"x" * 1000)
    pqn.save_snapshot(pqn.QNetwork(4), src / "policy_001.pt", {"hidden": 4, "agent_steps": 100})
    (src / "curve.json").write_text("{}")
    publish_snapshots.main(["--game", "Gravitar", "--source", str(src), "--target", str(snaps / "Gravitar")])
    out = capsys.readouterr().out
    assert "warning:" in out and "2 games (Seaquest, Gravitar" in out and "64 MiB" in out


# ---- a new game's results, synthetic ----------------------------------------------------------------

def _run(runs, game, head, n, seed, base):
    run = train.run_dir(runs, "dqn-replay-like", game, "linear" if head == "linear" else f"fourier{n}", seed)
    run.mkdir(parents=True)
    hist = [{"epoch": e + 1, "normalized_return": base + 0.1 * e, "eval_mean_return": 300.0 + e,
             "test_loss": 2.0 - 0.01 * n, "tokens": 30 * 1000 * (e + 1), "train_seconds_cumulative": 10.0 * (e + 1),
             "eval_seconds": 1.0, "eval_cut_short": 0, "smoothness_n": 10, "smoothness_mean": 0.1,
             "smoothness_std": 0.01, "smoothness_sum": 1.0, "train_ce": 1.0, "train_regularization": 0.0}
            for e in range(5)]
    cfg = {"game": game, "dataset": "dqn-replay-like", "head": head, "num_frequencies": n, "seed": seed, "epochs": 5,
           "context": 30, "eval_episodes": 10, "epoch_samples_resolved": 1000}
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "env.json").write_text(json.dumps({"gpu": "NVIDIA H200", "torch": "2.11", "commit": "c0ffee"}))
    m = aggregate.metrics_from_history(cfg, hist)
    m.update(normalized_return_final=base, episodes_final_evaluation=50,
             final_evaluation={"episodes": 50, "smoothness_mean": 0.1, "cut_short": 0})
    (run / "metrics.json").write_text(json.dumps(m))


def test_a_new_games_sweep_in_the_summary_block_and_figure(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for name in ("summary.json", "dataset_manifest_Seaquest.json", "gpu_calls.json", "dt_timing_call1.json"):
        shutil.copy(HERE / "results" / name, results / name)
    committed = json.loads((HERE / "results/summary.json").read_text())["rows"]
    # Gravitar: linear 1.0; Fourier best at N = 26 on the per-epoch evaluations (base 3.0) but its final
    # evaluation is low (the episodes it was picked on flattered it); the held-out loss picks N = 32
    for seed in (123, 231):
        _run(tmp_path / "runs", "Gravitar", "linear", 0, seed, 1.0)
        for n in atari.SWEEP:
            _run(tmp_path / "runs", "Gravitar", "fourier", n, seed, 3.0 if n == 26 else 2.0)
    for f in (tmp_path / "runs/dqn-replay-like/Gravitar/fourier26").glob("seed*/metrics.json"):
        f.write_text(json.dumps({**json.loads(f.read_text()), "normalized_return_final": 1.5}))
    aggregate.main(["--runs", str(tmp_path / "runs"), "--results", str(results), "--data", str(tmp_path / "none"),
                    "--snapshots", str(tmp_path / "none")])
    s = json.loads((results / "summary.json").read_text())
    grav = [r for r in s["rows"] if r["game"] == "Gravitar"]
    assert [(r["head"], r["num_frequencies"]) for r in grav] == [("linear", 0)] + [("fourier", n) for n in atari.SWEEP]
    assert all(r["dataset"] == "dqn-replay-like" and r["n_seeds"] == 2 for r in grav)
    assert [r for r in s["rows"] if r["game"] == "Seaquest"][0]["normalized_return_final"] == \
        committed[0]["normalized_return_final"]  # the committed rows ride along
    (sweep,) = s["sweeps"]
    p, q = sweep["authors_protocol"], sweep["held_out_loss"]
    assert p["num_frequencies"] == 26 and p["gain_best_over_linear"] == pytest.approx(2.0)
    assert p["gain_final_over_linear"] == pytest.approx(0.5) and q["num_frequencies"] == 32
    rows = s["rows"]
    block = aggregate.games_table(rows, results) + "\n\n" + aggregate.sweep_table(rows)
    lines = {line.split(" | ")[0].lstrip("| ") + "/" + line.split(" | ")[3].split(":")[0]: line
             for line in block.splitlines() if line.startswith("| ") and " | " in line and "game |" not in line
             and not line.startswith("| Gravitar, ") and not line.startswith("| Linear") and not line.startswith("| Fourier")}
    assert "no finished runs yet" in lines["BankHeist/dqn-replay-like"] and "≈-0.1" in lines["BankHeist/dqn-replay-like"]
    assert "N = 26: 3.40 / 1.50" in lines["Gravitar/dqn-replay-like"]
    assert "gain over linear +2.00 (best epoch) vs +0.50 (final evaluation" in block
    assert "| Fourier-26 | 2 | 1.50 ± 0.00 | 3.40 ± 0.00 | 0.100 ± 0.010 | ≈5.7 |" in block, block
    blocks = aggregate.readme_blocks(results, tmp_path / "none", "")
    assert blocks["games"] == block and "| DT training, Fourier-26 on dqn-replay-like, Gravitar (one of" in blocks["throughput"]
    committed_rows = [line for line in (HERE / "README.md").read_text().splitlines() if line.startswith("| DT training, ")]
    assert committed_rows and all(line in blocks["throughput"] for line in committed_rows)  # Seaquest's, unchanged
    curve = {"config": {"game": "Gravitar", "num_envs": 128, "eval_envs": 8, "sticky": 0.25},
             "sessions": [{"start_agent_steps": 0, "end_agent_steps": 1000, "wall_seconds": 1.0,
                           "env": {"gpu": "NVIDIA H200", "cpu_count": 32}}]}
    assert aggregate.pqn_row(curve).startswith("| Gravitar: PQN agent (training, 128 envs")
    import plot
    import plot_style
    plot_style.use()
    assert plot.four_games(rows, tmp_path / "figures").stat().st_size > 10_000


def test_the_committed_block_says_no_new_game_has_run():
    text = (HERE / "README.md").read_text()
    block = text[text.index("<!-- games:start -->"):text.index("<!-- games:end -->")]
    for game in NEW:
        assert f"| {game} |" in block and "no finished runs yet" in block.split(f"| {game} |")[1].splitlines()[0]
    assert "No frequency sweep has run yet" in block
