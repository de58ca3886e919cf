"""Tests of the Decision Transformer experiment: env preprocessing, dataset windows, returns-to-go,
the joystick action order, the model, and a CPU smoke run of the whole chain (subprocess)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # the experiment's modules are plain files

import atari  # noqa: E402
import dataset  # noqa: E402
import train  # noqa: E402
from model import DTConfig, build_model  # noqa: E402

ale_py = pytest.importorskip("ale_py")


# ---- environment --------------------------------------------------------------------------------------

def test_preprocessing_shapes_and_frame_stack():
    env = atari.make_vector_env("Seaquest", 2, num_threads=1)
    obs, info = env.reset(seed=3)
    assert env.single_action_space.n == 18
    assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
    assert not obs[:, :3].any() and obs[:, 3].any()  # a fresh episode: 3 empty frames, then the first one
    rng = np.random.default_rng(0)
    stacks, frames = [], []
    for _ in range(6):
        stacks.append(obs[0].copy()); frames.append(obs[0, -1].copy())
        obs, reward, term, trunc, _ = env.step(rng.integers(0, 18, 2))
        assert not (term | trunc).any()
    env.close()
    # the dataset stores one frame per step; stacking them back gives exactly the env's observations
    idx = dataset.stack_index(np.array([0, 6]))
    rebuilt = np.concatenate([np.array(frames), np.zeros((1, 84, 84), np.uint8)])[idx]
    np.testing.assert_array_equal(rebuilt, np.array(stacks))


def test_ale_action_names_match_the_table():
    assert [a.name for a in ale_py.Action] == list(atari.ALE_ACTIONS)


# ---- actions ------------------------------------------------------------------------------------------

def test_joystick_order_round_trip():
    ale = np.arange(18)
    assert sorted(atari.JOYSTICK_ORDER.tolist()) == list(range(18))
    np.testing.assert_array_equal(atari.to_ale(atari.to_joystick(ale)), ale)
    np.testing.assert_array_equal(atari.to_joystick(atari.to_ale(ale)), ale)
    assert atari.JOYSTICK_NAMES[:9] == ("NOOP", "LEFT", "UPLEFT", "UP", "UPRIGHT", "RIGHT", "DOWNRIGHT", "DOWN",
                                        "DOWNLEFT")
    assert atari.JOYSTICK_NAMES[9:17] == tuple(n + "FIRE" for n in atari.JOYSTICK_NAMES[1:9])
    assert atari.JOYSTICK_NAMES[17] == "FIRE"
    # the paper's map: ALE ids at joystick positions 0..17
    assert atari.JOYSTICK_ORDER.tolist() == [0, 4, 7, 2, 6, 3, 8, 5, 9, 12, 15, 10, 14, 11, 16, 13, 17, 1]


def test_normalized_return():
    assert atari.normalized_return("Seaquest", 68.4) == pytest.approx(0.0)
    assert atari.normalized_return("Seaquest", 42054.7) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="unknown game"):
        atari.game_info("Pong")


# ---- dataset ------------------------------------------------------------------------------------------

def test_returns_to_go_arithmetic():
    rewards = np.array([1, 0, 2, 5, 0, 0, 3], dtype=np.float32)
    starts = np.array([0, 3, 7])  # episodes [1, 0, 2] and [5, 0, 0, 3]
    np.testing.assert_array_equal(dataset.returns_to_go(rewards, starts), [3, 2, 2, 8, 3, 3, 3])
    episode, timestep, end = dataset.episode_positions(starts)
    assert episode.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert timestep.tolist() == [0, 1, 2, 0, 1, 2, 3]
    assert end.tolist() == [3, 3, 3, 7, 7, 7, 7]


def test_windows_never_cross_episode_ends():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 40)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    context = 10
    w = dataset.window_starts(starts, context)
    episode, _, end = dataset.episode_positions(starts)
    assert len(w) == lengths[lengths >= context].sum()  # one window per transition of a long-enough episode
    assert (episode[w] == episode[w + context - 1]).all()
    assert (w + context <= end[w]).all()
    # the frame stack never reaches into the previous episode
    idx = dataset.stack_index(starts)
    n = starts[-1]
    ok = (idx == n) | (episode[np.minimum(idx, n - 1)] == episode[:, None])
    assert ok.all()


def test_window_dataset_batch(tmp_path):
    rng = np.random.default_rng(1)
    lengths = np.array([12, 5, 20])
    n = lengths.sum()
    split = tmp_path / "train"
    split.mkdir()
    np.save(split / "frames.npy", rng.integers(0, 255, (n, 84, 84), dtype=np.uint8))
    np.save(split / "actions.npy", rng.integers(0, 18, n).astype(np.uint8))
    np.save(split / "rewards.npy", rng.integers(0, 3, n).astype(np.float32))
    np.save(split / "episode_starts.npy", np.concatenate([[0], np.cumsum(lengths)]))
    np.save(split / "episode_policy.npy", np.zeros(3, np.int64))
    data = dataset.WindowDataset(split, context=6)
    assert len(data) == 12 + 20  # the 5-step episode is too short for a window
    states, actions, rtg, ts = data.batch(torch.arange(len(data)))
    assert states.shape == (32, 6, 4, 84, 84) and actions.shape == (32, 6) and rtg.shape == (32, 6, 1)
    assert ts.shape == (32, 1, 1)
    raw = np.load(split / "actions.npy")
    first = data.starts[0].item()
    np.testing.assert_array_equal(actions[0].numpy(), atari.to_joystick(raw[first:first + 6]))
    # rtg drops by each step's reward inside a window
    rewards = torch.from_numpy(np.load(split / "rewards.npy"))
    steps = data.starts[:, None] + torch.arange(6)
    torch.testing.assert_close(rtg[:, :-1, 0] - rtg[:, 1:, 0], rewards[steps[:, :-1]])


# ---- model and training -------------------------------------------------------------------------------

def test_model_is_causal_and_adds_the_regulariser():
    torch.manual_seed(0)
    cfg = DTConfig(n_layer=2, n_head=2, n_embd=32, context=5, max_timestep=50, head="fourier", num_frequencies=4)
    model = build_model(cfg).eval()
    s = torch.randint(0, 255, (2, 5, 4, 84, 84), dtype=torch.uint8)
    a, r, t = torch.randint(0, 18, (2, 5)), torch.rand(2, 5, 1) * 100, torch.randint(0, 40, (2, 1, 1))
    out = model(s, a, r, t)
    a2 = a.clone()
    a2[:, 2] = (a[:, 2] + 1) % 18
    out2 = model(s, a2, r, t)
    torch.testing.assert_close(out[:, :3], out2[:, :3])  # a_2 is never seen before predicting it
    assert not torch.allclose(out[:, 3:], out2[:, 3:])
    assert model(s, a[:, :4], r, t).shape == (2, 5, 18)   # inference: one action fewer than states
    loss = model.loss(out, a)
    ce = torch.nn.functional.cross_entropy(out.reshape(-1, 18), a.reshape(-1))
    assert model.head.loss_regularization.item() > 0
    torch.testing.assert_close(loss - ce, model.head.loss_regularization)


def test_weight_decay_groups():
    model = build_model(DTConfig(n_layer=1, n_head=2, n_embd=32, context=4, max_timestep=10, head="fourier",
                                 num_frequencies=3))
    decay, no_decay = model.optim_groups(0.1)
    ids = {id(p) for p in decay["params"]}
    assert id(model.head.fc_extract_autocorrelation_params.weight) in ids
    assert id(model.state_encoder[0].weight) in ids
    assert id(model.pos_emb) not in ids and id(model.action_emb[0].weight) not in ids
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_lr_schedule():
    cfg = train.Config()
    final = 2 * 1000 * 90
    assert train.lr_multiplier(cfg, 0, final) == 0
    assert train.lr_multiplier(cfg, cfg.warmup_tokens // 2, final) == pytest.approx(0.5)
    assert train.lr_multiplier(cfg, cfg.warmup_tokens, final) == pytest.approx(1.0)
    assert train.lr_multiplier(cfg, final, final) == pytest.approx(0.1)  # floor


def test_cli_rejects_bad_input():
    with pytest.raises(SystemExit):
        train.parse_config(["--head", "fourier"])  # no frequencies
    with pytest.raises(SystemExit):
        train.parse_config(["--game", "Pong"])


# ---- smoke run: random-policy dataset, tiny model, one epoch, one short episode ------------------------

def test_cpu_smoke_run(tmp_path):
    data, runs = tmp_path / "data", tmp_path / "runs"
    py = [sys.executable]
    subprocess.run(py + ["make_dataset.py", "--quick", "--out-dir", str(data)], cwd=HERE, check=True,
                   capture_output=True, timeout=120)
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["splits"]["train"]["transitions"] >= 3000
    for head in (["--head", "linear"], ["--head", "fourier", "--num-frequencies", "4"]):
        out = runs / head[1]
        subprocess.run(py + ["train.py", "--quick", "--device", "cpu", "--data-dir", str(data), "--out-dir", str(out),
                             *head], cwd=HERE, check=True, capture_output=True, timeout=120)
        m = json.loads((out / "metrics.json").read_text())
        assert m["episodes_per_eval"] == 1 and len(m["history"]) == 1
        assert np.isfinite(m["history"][0]["train_loss"]) and 0 <= m["smoothness"] < 2
        # the final evaluation (quick: 2 episodes) gives the final return; the loss is logged in its two terms
        fe = m["final_evaluation"]
        assert m["episodes_final_evaluation"] == 2 and len(fe["returns"]) == len(fe["lengths"]) == 2
        assert m["normalized_return_final"] == fe["normalized_return"] and m["dataset"] == "ppo-sampled"
        h = m["history"][0]
        assert h["train_loss"] == pytest.approx(h["train_ce"] + h["train_regularization"], rel=1e-5)
        assert (h["train_regularization"] > 0) == (head[1] == "fourier")
        env = json.loads((out / "env.json").read_text())
        assert env["data_sha256_actions_rewards"]["train"] == manifest["splits"]["train"]["sha256_actions_rewards"]
    # reruns of the linear run: finished -> nothing to do; unfinished -> resumed from ckpt.pt, same numbers;
    # other settings -> one line naming them
    args = py + ["train.py", "--quick", "--device", "cpu", "--data-dir", str(data), "--out-dir", str(runs / "linear"),
                 "--head", "linear"]
    p = subprocess.run(args, cwd=HERE, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "nothing to do" in p.stdout
    metrics = runs / "linear" / "metrics.json"
    before = json.loads(metrics.read_text())
    metrics.unlink()
    p = subprocess.run(args, cwd=HERE, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "resuming" in p.stdout, p.stderr
    after = json.loads(metrics.read_text())
    assert {k for k in before if before[k] != after[k]} <= {"wall_seconds"}
    p = subprocess.run(args + ["--lr", "0.001"], cwd=HERE, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert p.stderr.strip().startswith("error:") and "lr: 0.0006 -> 0.001" in p.stderr


# ---- aggregation ----------------------------------------------------------------------------------------

def _fake_run(root, head, n, seed, epochs, commit, complete=True):
    run = root / (head if head == "linear" else f"fourier{n}") / f"seed{seed}"
    run.mkdir(parents=True)
    hist = [{"epoch": e + 1, "normalized_return": 1.0 + 0.1 * e + 0.01 * seed % 7, "eval_mean_return": 500.0 + e,
             "test_loss": 2.5, "tokens": 30 * 1000 * (e + 1), "train_seconds_cumulative": 10.0 * (e + 1),
             "eval_seconds": 1.0, "eval_cut_short": 0, "smoothness_n": 10, "smoothness_mean": 0.1,
             "smoothness_std": 0.01, "smoothness_sum": 1.0} for e in range(epochs)]
    cfg = {"game": "Seaquest", "head": head, "num_frequencies": n, "seed": seed, "epochs": 5, "context": 30,
           "eval_episodes": 10, "epoch_samples_resolved": 1000}
    (run / "config.json").write_text(json.dumps(cfg))
    (run / "env.json").write_text(json.dumps({"gpu": "H100", "torch": "2", "commit": commit}))
    (run / "history.json").write_text(json.dumps(hist))
    if complete:
        import aggregate
        m = aggregate.metrics_from_history(cfg, hist)
        (run / "metrics.json").write_text(json.dumps(m))


def test_aggregate_all_complete_and_set_aside_runs_ignored(tmp_path):
    import aggregate
    runs, results = tmp_path / "runs", tmp_path / "results"
    for seed in (123, 231):
        _fake_run(runs / "Seaquest", "linear", 0, seed, 5, "aaa")
        _fake_run(runs / "Seaquest", "fourier", 8, seed, 5, "bbb")
        # set aside as runs/incomplete_call4/fourier8/seed<s>: the same depth, but not under a game folder
        _fake_run(runs / "incomplete_call4", "fourier", 8, seed, 4, "aaa", complete=False)
    results.mkdir()
    (results / "gpu_calls.json").write_text(json.dumps({"dt_runs": {"aaa": {"runs_sharing_gpu": 6, "calls": ["4a"]},
                                                                      "bbb": {"runs_sharing_gpu": 4, "calls": ["5a"]}}}))
    aggregate.main(["--runs", str(runs), "--results", str(results), "--data", str(tmp_path / "none")])
    s = json.loads((results / "summary.json").read_text())
    assert s["incomplete_runs"] == [] and len(s["rows"]) == 2
    for r in s["rows"]:
        assert r["complete"] and r["n_seeds"] == 2 and "at_common_epoch" not in r
        assert r["epochs_finished"] == {"123": 5, "231": 5} and r["episodes_per_evaluation"] == 10
    lin, four = s["rows"]
    assert lin["provenance"]["commit"] == ["aaa"] and lin["provenance"]["runs_concurrent_on_one_gpu"] == 6
    assert four["provenance"]["commit"] == ["bbb"] and four["provenance"]["runs_concurrent_on_one_gpu"] == 4
    table = (results / "table.md").read_text()
    assert table.count("5 of 5") == 2 and "best of epochs" not in table
