"""Tests of the two-dataset bookkeeping (issue 19, item 4): run folders per dataset, the final evaluation,
summary.json's checked schema on synthetic run folders of both datasets, the committed ppo-sampled rows carried
over unchanged, and the paired statistics against scipy. CPU, no emulator, a few seconds."""

import itertools
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # the experiment's modules are plain files

import aggregate  # noqa: E402
import train  # noqa: E402

SCHEMA = ("game", "dataset", "head", "num_frequencies", "n_seeds", "seeds", "normalized_return_final",
          "normalized_return_best", "episodes_final_evaluation", "data_per_state_entropy_nats", "data_return_max",
          "smoothness", "provenance")
PROVENANCE = ("gpu", "torch", "commit", "wall_seconds", "dataset_manifest", "dataset_manifest_sha256",
              "data_sha256_actions_rewards")
HASHES = {"train": "a" * 64, "test": "b" * 64}


# ---- run folders ---------------------------------------------------------------------------------

def test_run_folders_of_the_two_datasets_never_collide():
    seen = {}
    for dataset, head, seed in itertools.product(("ppo-sampled", "dqn-replay-like"),
                                                 (["--head", "linear"], ["--head", "fourier", "--num-frequencies", "8"],
                                                  ["--head", "fourier", "--num-frequencies", "14"]), (123, 231, 312, 42)):
        cfg = train.parse_config(["--dataset", dataset, *head, "--seed", str(seed)])
        assert cfg.out_dir not in seen, (cfg.out_dir, seen.get(cfg.out_dir))
        seen[cfg.out_dir] = (dataset, head, seed)
        rel = Path(cfg.out_dir).relative_to(HERE / "runs")
        # ppo-sampled keeps the committed results' layout; the new data has its own subtree
        assert rel.parts[0] == ("Seaquest" if dataset == "ppo-sampled" else "dqn-replay-like")
        assert Path(cfg.data_dir) == HERE / ("data/Seaquest" if dataset == "ppo-sampled" else "data/dqn-replay-like/Seaquest")
    assert len(seen) == 24
    quick = train.parse_config(["--quick", "--dataset", "dqn-replay-like"])
    assert Path(quick.out_dir).relative_to(HERE / "runs/quick").parts[:2] == ("dqn-replay-like", "Seaquest")
    with pytest.raises(SystemExit):
        train.parse_config(["--dataset", "dqn-replay"])


def test_a_run_folder_refuses_other_settings_or_other_data(tmp_path):
    cfg = train.parse_config(["--dataset", "dqn-replay-like", "--seed", "42", "--out-dir", str(tmp_path)])
    ident = {"data_sha256_actions_rewards": HASHES}
    saved = {**train.run_config(cfg), "epoch_samples_resolved": 1000, "num_params": 7}  # as train.py leaves it

    def claim(config, c=cfg):
        (tmp_path / "config.json").write_text(json.dumps(config))
        return train.claim_run(c, ident, rank=0, world=1)
    assert claim({**saved, "max_seconds": 99.0, "device": "cuda"}) == "resume"  # may differ
    with pytest.raises(SystemExit, match="dataset"):
        claim({**saved, "dataset": "ppo-sampled"})
    legacy = {k: v for k, v in saved.items() if k not in ("dataset", "final_eval_episodes")}
    with pytest.raises(SystemExit, match="dataset"):  # a config from before the dataset field: not this run
        claim(legacy)
    (tmp_path / "env.json").write_text(json.dumps({"data_sha256_actions_rewards": {"train": "c" * 64}}))
    with pytest.raises(SystemExit, match="differs from what"):  # resuming on other data
        claim(saved)
    (tmp_path / "env.json").unlink()
    (tmp_path / "metrics.json").write_text("{}")
    assert claim(saved) == "done"
    with pytest.raises(SystemExit, match=r"lr: 0\.0006 -> 0\.001.*--force"):  # finished, other settings
        claim(saved, train.parse_config(["--dataset", "dqn-replay-like", "--seed", "42", "--out-dir", str(tmp_path),
                                         "--lr", "1e-3"]))
    forced = train.parse_config(["--dataset", "dqn-replay-like", "--seed", "42", "--out-dir", str(tmp_path),
                                 "--lr", "1e-3", "--force"])
    assert claim(saved, forced) == "new" and not (tmp_path / "metrics.json").exists()
    assert json.loads((tmp_path / "config.json").read_text())["lr"] == 1e-3
    (tmp_path / "manifest.json").write_text(json.dumps({"dataset": "ppo-sampled", "splits": {}}))
    with pytest.raises(SystemExit, match="holds the ppo-sampled dataset"):
        train.data_identity(tmp_path, "dqn-replay-like")
    (tmp_path / "manifest.json").write_text(json.dumps({"splits": {"train": {"sha256_actions_rewards": "x"}}}))
    assert train.data_identity(tmp_path, "ppo-sampled")["data_sha256_actions_rewards"] == {"train": "x"}


# ---- the final evaluation --------------------------------------------------------------------------

def test_final_evaluation_plays_its_episode_count_on_its_own_seeds(monkeypatch, tmp_path):
    import torch
    calls = []

    def fake_play(model, game, episodes, target, seed, device, temperature, max_steps, threads, amp):
        calls.append(dict(episodes=episodes, seed=seed, threads=threads, target=target))
        return {"returns": [100.0 + i for i in range(episodes)], "lengths": [50] * episodes, "cut_short": 0,
                "pmfs": torch.full((7, 18), 1 / 18), "trace_pmf": np.full((3, 18), 1 / 18, np.float32),
                "trace_action": np.zeros(3, np.int64), "steps": 50}
    monkeypatch.setattr(train, "play", fake_play)
    cfg = train.parse_config(["--seed", "231", "--eval-threads", "2"])
    assert cfg.final_eval_episodes == 50 and cfg.eval_episodes == 10  # the issue's >= 50, and 10 per epoch
    fe = train.final_evaluation(None, cfg, "cpu", False, tmp_path)
    assert calls == [dict(episodes=50, seed=231 + train.FINAL_EVAL_SEED_OFFSET, threads=2, target=1150)]
    assert fe["episodes"] == 50 and len(fe["returns"]) == 50 and fe["mean_return"] == pytest.approx(124.5)
    # the per-epoch evaluations use env seeds seed + epoch + i (i < 10): never the final one's
    finals = set(range(231 + 1000, 231 + 1050))
    assert not finals & {s + e + i for s in (123, 231, 312, 42) for e in range(5) for i in range(10)}
    assert (tmp_path / "pmf_trace_final.npz").exists()


# ---- summary.json ---------------------------------------------------------------------------------

def _run(runs, dataset, head, n, seed, final_episodes, with_hashes=True):
    """A finished synthetic run where train.py would put it, as train.py writes it."""
    label = "linear" if head == "linear" else f"fourier{n}"
    run = train.run_dir(runs, dataset, "Seaquest", label, seed)
    run.mkdir(parents=True)
    base = 1.0 + (0.3 if head == "fourier" else 0.0) + 0.01 * (seed % 5) + (0.5 if dataset != "ppo-sampled" else 0.0)
    hist = [{"epoch": e + 1, "normalized_return": base + 0.1 * e, "eval_mean_return": 500.0 + e, "test_loss": 2.5,
             "tokens": 30 * 1000 * (e + 1), "train_seconds_cumulative": 10.0 * (e + 1), "eval_seconds": 1.0,
             "eval_cut_short": 0, "smoothness_n": 10, "smoothness_mean": 0.1, "smoothness_std": 0.01,
             "smoothness_sum": 1.0, "train_loss": 1.0 + (1e-3 if head == "fourier" else 0), "train_ce": 1.0,
             "train_regularization": 1e-3 if head == "fourier" else 0.0} for e in range(5)]
    cfg = {"game": "Seaquest", "head": head, "num_frequencies": n, "seed": seed, "epochs": 5, "context": 30,
           "eval_episodes": 10, "epoch_samples_resolved": 1000}
    if dataset != "ppo-sampled":
        cfg["dataset"] = dataset  # the ppo-sampled runs' configs predate the field
    (run / "config.json").write_text(json.dumps(cfg))
    env = {"gpu": "NVIDIA H200", "torch": "2.11", "commit": "c0ffee"}
    if with_hashes:
        env["data_sha256_actions_rewards"] = HASHES
    (run / "env.json").write_text(json.dumps(env))
    m = aggregate.metrics_from_history(cfg, hist)
    if final_episodes:
        m.update(normalized_return_final=base + 0.05, episodes_final_evaluation=final_episodes,
                 final_evaluation={"episodes": final_episodes, "smoothness_mean": 0.1, "cut_short": 0})
    (run / "metrics.json").write_text(json.dumps(m))


def _data(root, dataset, entropy=None, return_max=1500.0):
    folder = root / ("Seaquest" if dataset == "ppo-sampled" else f"{dataset}/Seaquest")
    folder.mkdir(parents=True)
    split = lambda h: {"transitions": 10, "returns": {"max": return_max}, "sha256_actions_rewards": h}  # noqa: E731
    (folder / "manifest.json").write_text(json.dumps({"dataset": dataset, "splits": {
        "train": split(HASHES["train"]), "test": split(HASHES["test"])}}))
    if entropy is not None:
        (folder / "diagnostics.json").write_text(json.dumps({"dataset": dataset, "data_per_state_entropy_nats": entropy}))


def _aggregate(tmp_path, results=None):
    results = results or tmp_path / "results"
    aggregate.main(["--runs", str(tmp_path / "runs"), "--results", str(results), "--data", str(tmp_path / "data"),
                    "--snapshots", str(tmp_path / "none")])
    return json.loads((results / "summary.json").read_text())


def test_summary_schema_on_both_datasets(tmp_path):
    runs = tmp_path / "runs"
    for dataset, final in (("ppo-sampled", 0), ("dqn-replay-like", 50)):
        for (head, n), seed in itertools.product((("linear", 0), ("fourier", 8), ("fourier", 14)), (123, 231, 312, 42)):
            _run(runs, dataset, head, n, seed, final, with_hashes=dataset != "ppo-sampled")
    _data(tmp_path / "data", "ppo-sampled", entropy=None, return_max=860.0)
    _data(tmp_path / "data", "dqn-replay-like", entropy=0.08, return_max=4000.0)
    s = _aggregate(tmp_path)
    rows = s["rows"]
    assert [(r["dataset"], r["head"], r["num_frequencies"]) for r in rows] == [
        (d, h, n) for d in ("ppo-sampled", "dqn-replay-like") for h, n in (("linear", 0), ("fourier", 8), ("fourier", 14))]
    for r in rows:
        assert set(SCHEMA) <= set(r) and set(PROVENANCE) <= set(r["provenance"])
        assert r["n_seeds"] == 4 and r["seeds"] == [42, 123, 231, 312]
        for key in ("normalized_return_final", "normalized_return_best"):
            v = r[key]
            assert set(v) == {"per_seed", "mean", "std"} and set(v["per_seed"]) == {"42", "123", "231", "312"}
            assert v["mean"] == pytest.approx(np.mean(list(v["per_seed"].values())))
            assert v["std"] == pytest.approx(np.std(list(v["per_seed"].values())))
        assert r["provenance"]["data_sha256_actions_rewards"] == HASHES
        assert r["provenance"]["wall_seconds"].keys() == r["normalized_return_final"]["per_seed"].keys()
        if r["head"] == "fourier":
            pv = r["paired_vs_linear"]
            assert pv["final"]["n_pairs"] == 4 and pv["final"]["mean_difference"] == pytest.approx(0.3)
    ppo, dqn = rows[0], rows[3]
    assert ppo["episodes_final_evaluation"] == 10 and dqn["episodes_final_evaluation"] == 50
    assert ppo["data_per_state_entropy_nats"] is None and "not measured" in ppo["data_per_state_entropy_note"]
    assert dqn["data_per_state_entropy_nats"] == 0.08 and "data_per_state_entropy_note" not in dqn
    assert ppo["data_return_max"] == 860.0 and dqn["data_return_max"] == 4000.0
    assert ppo["provenance"]["data_hashes_match_runs"] is None and dqn["provenance"]["data_hashes_match_runs"] is True
    # the final return is the final evaluation's; the best is the best per-epoch evaluation
    assert dqn["normalized_return_final"]["per_seed"]["123"] == pytest.approx(1.53 + 0.05)
    assert dqn["normalized_return_best"]["per_seed"]["123"] == pytest.approx(1.53 + 0.4)
    assert dqn["train_regularization_final"]["mean"] == 0.0 and rows[4]["train_regularization_final"]["mean"] == 1e-3
    assert {"Seaquest/ppo-sampled/linear", "Seaquest/dqn-replay-like/fourier14"} <= set(s["normalized_return_per_epoch"])
    table = (tmp_path / "results/table.md").read_text()
    assert table.count("| dqn-replay-like |") == 3 + 2 and "(50)" in table and "(10)" in table
    assert "+0.30 [+0.30, +0.30]" in table  # paired rows: one per Fourier row and dataset
    # the manifests and diagnostics were copied beside the summary
    assert (tmp_path / "results/dataset_manifest_Seaquest_dqn-replay-like.json").exists()
    assert (tmp_path / "results/diagnostics_Seaquest_dqn-replay-like.json").exists()


def test_committed_ppo_sampled_rows_are_carried_over_unchanged(tmp_path):
    committed = HERE / "results"
    results = tmp_path / "results"
    results.mkdir()
    for name in ("summary.json", "dataset_manifest_Seaquest.json", "gpu_calls.json"):
        shutil.copy(committed / name, results / name)
    before = json.loads((committed / "summary.json").read_text())
    for (head, n), seed in itertools.product((("linear", 0), ("fourier", 8)), (123, 231)):
        _run(tmp_path / "runs", "dqn-replay-like", head, n, seed, 50)
    _data(tmp_path / "data", "dqn-replay-like", entropy=0.1)
    s = _aggregate(tmp_path, results)
    ppo = [r for r in s["rows"] if r["dataset"] == "ppo-sampled"]
    old = [r for r in before["rows"] if r.get("dataset", "ppo-sampled") == "ppo-sampled"]
    assert len(ppo) == len(old) == 3

    def contained(a, b, path=""):  # every committed value is still there, equal
        if isinstance(a, dict):
            for k in a:
                contained(a[k], b[k], f"{path}/{k}")
        else:
            assert a == b, path
    for o, r in zip(old, ppo):
        contained(o, r)
        assert set(SCHEMA) <= set(r) and set(PROVENANCE) <= set(r["provenance"])
    assert len([r for r in s["rows"] if r["dataset"] == "dqn-replay-like"]) == 2
    assert ppo[0]["data_return_max"] == 860.0  # from the committed manifest
    # regenerating from its own output changes nothing
    again = _aggregate(tmp_path, results)
    assert again == s


def test_quick_tables_claim_nothing(tmp_path):
    """A quick run (config.json `quick`): no paper columns, no std of one seed, no '0k windows', and it never
    reaches the README."""
    runs = tmp_path / "runs"
    for head, n in (("linear", 0), ("fourier", 4)):
        _run(runs, "ppo-sampled", head, n, 123, 2)
        cfg_file = train.run_dir(runs, "ppo-sampled", "Seaquest", "linear" if n == 0 else f"fourier{n}", 123) / "config.json"
        cfg_file.write_text(json.dumps({**json.loads(cfg_file.read_text()), "quick": True, "context": 8}))
    with pytest.raises(SystemExit, match="quick runs never go into"):
        aggregate.main(["--runs", str(runs), "--results", str(tmp_path / "results"), "--update-readme",
                        "--readme", str(tmp_path / "README.md")])
    s = _aggregate(tmp_path)
    assert s["quick"] is True and not any("paper" in r for r in s["rows"])
    table = (tmp_path / "results/table.md").read_text()
    assert "paper" not in table and "±" not in table and "0k" not in table, table
    assert "(one seed: no interval, no test)" in table
    assert aggregate.windows(640) == "640" and aggregate.windows(2_540_000) == "2.54M"


# ---- paired statistics ----------------------------------------------------------------------------

def test_paired_t_test_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for n in (2, 3, 4, 7):
        lin, four = rng.normal(2.5, 0.5, n), rng.normal(3.0, 0.5, n)
        a = {str(i): float(v) for i, v in enumerate(lin)}
        b = {str(i): float(v) for i, v in enumerate(four)}
        out = aggregate.paired(a, b)
        ref = stats.ttest_rel(four, lin)
        assert out["t"] == pytest.approx(ref.statistic, rel=1e-10)
        assert out["p_value"] == pytest.approx(ref.pvalue, rel=1e-8)
        assert out["mean_difference"] == pytest.approx(np.mean(four - lin)) and out["dof"] == n - 1
    # only the seeds both have are paired
    out = aggregate.paired({"1": 1.0, "2": 2.0, "3": 0.0}, {"2": 2.5, "3": 1.0, "4": 9.0})
    assert out["seeds"] == [2, 3] and out["differences"] == {"2": 0.5, "3": 1.0}
