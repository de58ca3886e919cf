"""Tests of the DQN-replay-like pieces (issue 19): the PQN agent's targets, exploration, snapshots and resume,
the logging with sticky actions, and the data diagnostics. CPU, a few seconds each; the agent runs on a
fake vector env (its state can be saved, unlike ALE's), the ALE tests skip without ale-py."""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # the experiment's modules are plain files

import atari  # noqa: E402
import diagnostics  # noqa: E402
import pqn  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """One torch thread (the root conftest's): faster on small CPUs, and the same arithmetic in every run."""
    yield


# ---- Q(lambda) and exploration ---------------------------------------------------------------------

def test_q_lambda_targets_by_hand():
    # gamma 0.9, lambda 0.5; game 0 runs through, game 1 ends its (life) episode at step 1
    rewards = torch.tensor([[1.0, 1.0], [0.0, 1.0], [2.0, 0.0]])
    dones = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    next_max_q = torch.tensor([[10.0, 5.0], [20.0, 100.0], [30.0, 4.0]])  # max_a Q(s_t+1, a)
    g = pqn.q_lambda_targets(rewards, dones, next_max_q, gamma=0.9, lam=0.5)
    # game 0: G2 = 2 + .9*30 = 29; G1 = .9*(.5*20 + .5*29) = 22.05; G0 = 1 + .9*(.5*10 + .5*22.05) = 15.4225
    # game 1: G2 = 0 + .9*4 = 3.6; G1 = 1 (the episode ended: no bootstrap, 100 unused); G0 = 1 + .9*(.5*5 + .5*1) = 3.7
    torch.testing.assert_close(g, torch.tensor([[15.4225, 3.7], [22.05, 1.0], [29.0, 3.6]]))
    # lambda = 0: one-step Q-learning targets; lambda = 1: discounted returns bootstrapped at the end only
    torch.testing.assert_close(pqn.q_lambda_targets(rewards, dones, next_max_q, 0.9, 0.0),
                               rewards + 0.9 * (1 - dones) * next_max_q)
    torch.testing.assert_close(pqn.q_lambda_targets(rewards, dones, next_max_q, 0.9, 1.0)[:, 0],
                               torch.tensor([1 + 0.81 * 2 + 0.729 * 30, 0.9 * 2 + 0.81 * 30, 2 + 0.9 * 30]))


def test_epsilon_greedy_fractions_and_schedule():
    rng = np.random.default_rng(0)
    greedy = rng.integers(0, 18, 200_000)
    a = pqn.epsilon_greedy(greedy, 0.01, rng)
    # greedy w.p. 0.99, plus the uniform draws that land on the greedy action: 0.99 + 0.01/18
    assert abs((a == greedy).mean() - (0.99 + 0.01 / 18)) < 0.0015  # ~7 standard errors
    other = np.bincount((a[a != greedy] - greedy[a != greedy]) % 18, minlength=18)
    assert other[0] == 0 and other[1:].min() > 0.7 * other[1:].mean()  # the others uniform
    both = pqn.epsilon_greedy(greedy[:4], np.array([0.0, 0.0, 1.0, 1.0]), rng)  # per-game epsilon
    assert (both[:2] == greedy[:2]).all()
    cfg = pqn.parse_config(["--eps-decay-steps", "1000"])
    assert pqn.epsilon_at(cfg, 0) == 1.0 and pqn.epsilon_at(cfg, 500) == pytest.approx(0.505)
    assert pqn.epsilon_at(cfg, 1000) == pytest.approx(0.01) and pqn.epsilon_at(cfg, 10**9) == 0.01


def test_snapshot_is_small_and_round_trips(tmp_path):
    net = pqn.QNetwork(64)
    pqn.save_snapshot(net, tmp_path / "p.pt", {"hidden": 64, "agent_steps": 7})
    assert (tmp_path / "p.pt").stat().st_size < 600_000  # 50 of them must travel with the repository
    model, meta = pqn.load_snapshot(tmp_path / "p.pt")
    assert meta["algorithm"] == "pqn" and meta["agent_steps"] == 7
    x = torch.randint(0, 255, (3, 4, 84, 84), dtype=torch.uint8)
    torch.testing.assert_close(model(x), net.half().float()(x))


# ---- the agent on a fake vector env ---------------------------------------------------------------

class FakeVectorEnv:
    """Stands in for atari.make_vector_env: cheap, deterministic, same interface (SameStep autoreset, lives),
    and its state can be saved, so a resumed run can be compared bit for bit with an uninterrupted one."""

    def __init__(self, n):
        self.n = n

    def reset(self, seed):
        self.rng = np.random.default_rng(seed)
        self.t = np.zeros(self.n, np.int64)
        self.lives = np.full(self.n, 3)
        self.length = self.rng.integers(6, 30, self.n)
        self.base = self.rng.integers(0, 256, self.n)
        return self.obs(), {"lives": self.lives.copy()}

    def obs(self):
        v = (self.base + 13 * self.t) % 256
        o = np.zeros((self.n, 4, 84, 84), np.uint8)
        o[:, :, ::7, ::5] = v[:, None, None, None]
        return o

    def step(self, actions):
        reward = np.where(actions == (self.base + self.t) % 18, 10.0, 0.0) - (actions == 0)
        self.t += 1
        self.lives -= (self.t % 9 == 0)
        term = self.t >= self.length
        for i in np.flatnonzero(term):
            self.t[i], self.lives[i] = 0, 3
            self.length[i], self.base[i] = self.rng.integers(6, 30), self.rng.integers(0, 256)
        return self.obs(), reward, term, np.zeros(self.n, bool), {"lives": self.lives.copy()}

    def get_state(self):
        state = {k: getattr(self, k).copy() for k in ("t", "lives", "length", "base")}
        return {**state, "rng": self.rng.bit_generator.state}

    def set_state(self, s):
        self.rng = np.random.default_rng()
        for k in ("t", "lives", "length", "base"):
            setattr(self, k, s[k].copy())
        self.rng.bit_generator.state = s["rng"]

    def close(self):
        pass


# 16 agent steps per update (4 games x 4 steps), a snapshot every 2 updates, a curve row every update
TINY = ["--quick", "--device", "cpu", "--num-envs", "4", "--eval-envs", "1", "--num-steps", "4",
        "--num-minibatches", "2", "--update-epochs", "1", "--eps-decay-steps", "64", "--snapshot-every", "32",
        "--log-every", "16"]


def run_agent(monkeypatch, out, total, *extra):
    monkeypatch.setattr(pqn, "make_envs", lambda cfg: FakeVectorEnv(cfg.num_envs + cfg.eval_envs))
    pqn.main(TINY + ["--out-dir", str(out), "--total-steps", str(total), *extra])
    return (torch.load(out / "checkpoint.pt", weights_only=False), json.loads((out / "curve.json").read_text()))


def without_timing(rows):
    return [{k: v for k, v in r.items() if k not in ("seconds", "agent_steps_per_second")} for r in rows]


def test_snapshots_on_the_grid_and_curve(monkeypatch, tmp_path):
    ckpt, curve = run_agent(monkeypatch, tmp_path / "a", 128)
    files = sorted(p.name for p in (tmp_path / "a").glob("policy_*.pt"))
    assert files == [f"policy_{k:03d}.pt" for k in (1, 2, 3, 4)]  # k * 32 agent steps
    assert [s["agent_steps"] for s in curve["snapshots"]] == [32, 64, 96, 128]
    for s in curve["snapshots"]:
        assert pqn.load_snapshot(tmp_path / "a" / s["file"])[1]["agent_steps"] == s["agent_steps"]
    assert [r["agent_steps"] for r in curve["rows"]] == list(range(16, 129, 16))
    assert [r["frames"] for r in curve["rows"]] == list(range(64, 513, 64))
    assert curve["rows"][0]["epsilon"] > curve["rows"][-1]["epsilon"] == pytest.approx(0.01)
    assert curve["train_episodes"] and curve["eval_episodes"]  # the fake games last 6-29 steps
    assert ckpt["state"]["agent_steps"] == 128 and len(curve["sessions"]) == 1
    assert curve["sessions"][0]["agent_steps_per_second"] > 0


def test_resume_equals_an_uninterrupted_run(monkeypatch, tmp_path):
    full, full_curve = run_agent(monkeypatch, tmp_path / "full", 128)
    run_agent(monkeypatch, tmp_path / "split", 64)
    split, split_curve = run_agent(monkeypatch, tmp_path / "split", 128)  # resumes at 64 with a larger total
    for k, v in full["model"].items():
        assert torch.equal(v, split["model"][k]), k
    for k, s in full["opt"]["state"].items():
        for name, v in s.items():
            assert torch.equal(v, split["opt"]["state"][k][name]), (k, name)
    assert without_timing(full_curve["rows"]) == without_timing(split_curve["rows"])
    assert full_curve["train_episodes"] == split_curve["train_episodes"]
    assert [s["start_agent_steps"] for s in split_curve["sessions"]] == [0, 64]
    for f in (tmp_path / "full").glob("policy_*.pt"):
        a, b = torch.load(f, weights_only=True), torch.load(tmp_path / "split" / f.name, weights_only=True)
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_resume_refuses_other_settings(monkeypatch, tmp_path):
    run_agent(monkeypatch, tmp_path / "r", 32)
    with pytest.raises(SystemExit, match="q_lambda, hidden"):
        run_agent(monkeypatch, tmp_path / "r", 64, "--q-lambda", "0.5", "--hidden", "8")
    (tmp_path / "r" / "checkpoint.pt").unlink()
    with pytest.raises(SystemExit, match="no checkpoint.pt"):
        run_agent(monkeypatch, tmp_path / "r", 64)


def test_publish_keeps_evenly_spread_snapshots(tmp_path):
    import publish_snapshots
    src, dst = tmp_path / "run", tmp_path / "snapshots"
    src.mkdir()
    dst.mkdir()
    net = pqn.QNetwork(4)
    for k in range(1, 8):
        pqn.save_snapshot(net, src / f"policy_{k:03d}.pt", {"hidden": 4, "agent_steps": 100 * k})
    (src / "curve.json").write_text("{}")
    (src / "checkpoint.pt").write_text("not copied")
    (dst / "policy_002.pt").write_text("an earlier selection")
    publish_snapshots.main(["--source", str(src), "--target", str(dst), "--count", "3"])
    assert sorted(p.name for p in dst.iterdir()) == ["curve.json", "policy_001.pt", "policy_004.pt", "policy_007.pt"]
    publish_snapshots.main(["--source", str(src), "--target", str(dst), "--count", "2", "--min-agent-steps", "300"])
    assert sorted(p.name for p in dst.glob("policy_*")) == ["policy_003.pt", "policy_007.pt"]


# ---- logging with sticky actions (ALE) --------------------------------------------------------------

def test_sticky_actions_reach_the_emulator():
    pytest.importorskip("ale_py")
    rng = np.random.default_rng(0)
    acts = rng.integers(0, 18, (60, 2))

    def play(p):
        env = atari.make_vector_env("Seaquest", 2, num_threads=1, repeat_action_probability=p)
        obs, _ = env.reset(seed=5)
        frames = [obs]
        for a in acts:
            frames.append(env.step(a)[0])
        env.close()
        return np.array(frames)

    plain, sticky, sticky_again = play(0.0), play(0.25), play(0.25)
    assert not np.array_equal(plain, sticky)       # the emulator repeated some actions
    np.testing.assert_array_equal(sticky, sticky_again)  # and is seeded: the data stays reproducible


def test_logging_is_greedy_w_p_099_with_sticky_actions(tmp_path):
    pytest.importorskip("ale_py")
    import make_dataset
    torch.manual_seed(0)
    pqn.save_snapshot(pqn.QNetwork(8), tmp_path / "policy_001.pt", {"hidden": 8, "agent_steps": 1})
    cfg = make_dataset.parse_config(["--dataset", "dqn-replay-like", "--device", "cpu"])
    assert cfg.sticky == 0.25 and cfg.epsilon == 0.01 and cfg.num_envs == 4
    act, _ = make_dataset.make_policy(cfg, tmp_path / "policy_001.pt", torch.device("cpu"),
                                      np.random.default_rng(0))
    model, _ = pqn.load_snapshot(tmp_path / "policy_001.pt")
    env = atari.make_vector_env("Seaquest", 4, num_threads=1, repeat_action_probability=cfg.sticky)
    obs, _ = env.reset(seed=1)
    chosen, greedy = [], []
    for _ in range(50):
        a = act(obs)
        with torch.no_grad():
            greedy.append(model(torch.as_tensor(obs)).argmax(-1).numpy())
        chosen.append(a)
        obs = env.step(a)[0]
    env.close()
    same = (np.concatenate(chosen) == np.concatenate(greedy)).mean()
    assert same >= 0.96  # expected 0.9906 over 200 choices (exact fractions: test_epsilon_greedy_fractions...)


# ---- diagnostics on synthetic data -----------------------------------------------------------------

def eps_greedy_entropy(eps, n=18):
    top, rest = 1 - eps + eps / n, eps / n
    return -top * np.log(top) - (n - 1) * rest * np.log(rest)


def test_information_arithmetic():
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import entropy as scipy_entropy
    p = diagnostics.epsilon_mix(np.eye(18)[3], 0.01)
    q = diagnostics.epsilon_mix(np.eye(18)[7], 0.01)
    assert diagnostics.entropy(p) == pytest.approx(eps_greedy_entropy(0.01)) == pytest.approx(scipy_entropy(p))
    assert eps_greedy_entropy(0.01) == pytest.approx(0.0802, abs=1e-4)
    assert diagnostics.js_divergence(p, q) == pytest.approx(jensenshannon(p, q) ** 2)
    assert diagnostics.js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    # three policies on 2 states: two agree everywhere, the third differs on state 1 only
    dists = np.stack([np.stack([p, p]), np.stack([p, p]), np.stack([p, q])])
    d = diagnostics.disagreement(dists)
    js = diagnostics.js_divergence(p, q)
    assert d["pairwise_js_nats"][0][1] == pytest.approx(0.0, abs=1e-12)
    assert d["pairwise_js_nats"][0][2] == pytest.approx(js / 2, abs=1e-5)       # one state of two differs
    assert d["pairwise_js_mean_nats"] == pytest.approx((0 + js / 2 + js / 2) * 2 / 6, abs=1e-5)
    mix = (2 * p + q) / 3
    assert d["generalized_js_nats"] == pytest.approx((diagnostics.entropy(mix) - diagnostics.entropy(p)) / 2)
    assert d["greedy_agreement_pairwise_mean"] == pytest.approx((1 + 0.5 + 0.5) * 2 / 6)


def synthetic_dataset(root: Path, kind="pqn"):
    """Two snapshots (policy 0 plays episodes 0 and 2, policy 1 episode 1) and a manifest, as make_dataset writes."""
    snaps, data = root / "snaps", root / "data"
    snaps.mkdir(parents=True)
    policies = []
    for k in range(2):
        torch.manual_seed(k)
        f = snaps / f"policy_{k:03d}.pt"
        if kind == "pqn":
            pqn.save_snapshot(pqn.QNetwork(4), f, {"hidden": 4, "agent_steps": 1000 * (k + 1)})
        else:
            import agent
            agent.save_snapshot(agent.ActorCritic(4), f, {"hidden": 4, "agent_steps": 1000 * (k + 1)})
        policies.append({"file": f.name, "sha256": hashlib.sha256(f.read_bytes()).hexdigest()})
    rng = np.random.default_rng(0)
    lengths = {"train": [20, 15, 25], "test": [10, 12]}
    for split, lens in lengths.items():
        n = sum(lens)
        path = data / split
        path.mkdir(parents=True)
        rewards = np.zeros(n, np.float32)
        ends = np.cumsum(lens) - 1
        rewards[ends] = [100.0, 300.0, 200.0][:len(lens)]  # episode returns 100, 300, 200
        np.save(path / "frames.npy", rng.integers(0, 255, (n, 84, 84), dtype=np.uint8))
        np.save(path / "actions.npy", rng.integers(0, 18, n).astype(np.uint8))
        np.save(path / "rewards.npy", rewards)
        np.save(path / "episode_starts.npy", np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))
        np.save(path / "episode_policy.npy", np.array([0, 1, 0][:len(lens)], np.int64))
    manifest = {"dataset": "dqn-replay-like", "config": {"epsilon": 0.01, "snapshots_dir": str(snaps)},
                "policies": policies, "splits": {"train": {"per_policy": []}}}
    (data / "manifest.json").write_text(json.dumps(manifest))
    return data, root / "figures"


def test_diagnostics_numbers_and_check(tmp_path, capsys):
    data, figures = synthetic_dataset(tmp_path)
    args = ["--data-dir", str(data), "--figures", str(figures), "--states", "40", "--own-states", "16",
            "--device", "cpu"]
    with pytest.raises(SystemExit) as e:  # the best return, 300, is below Seaquest's target 1150
        diagnostics.main(args)
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "best train return 300 < target return 1150" in err[0]
    d = json.loads((data / "diagnostics.json").read_text())
    assert d["check"]["passed"] is False
    assert d["data_per_state_entropy_nats"] == pytest.approx(eps_greedy_entropy(0.01))  # epsilon-greedy: no ties
    assert d["data_return_max"] == 300 and d["returns"]["train"]["mean"] == pytest.approx(200)
    assert d["returns"]["test"]["max"] == 300 and d["train_episodes_at_or_above_target"] == 0
    p0, p1 = d["per_policy"]
    assert p0["transitions"] == 45 and p1["transitions"] == 15 and p1["agent_steps"] == 2000
    assert p0["returns_train"]["mean"] == pytest.approx(150) and p1["returns_train"]["max"] == 300
    assert d["disagreement"]["policies"] == 2 and d["disagreement"]["states"] == 40
    assert 0 <= d["disagreement"]["pairwise_js_mean_nats"] <= np.log(2)
    assert (figures / "Seaquest_dqn-replay-like_data.png").exists()
    diagnostics.main(args + ["--target-return", "250"])  # passes: no exit
    assert json.loads((data / "diagnostics.json").read_text())["check"]["passed"] is True


def test_diagnostics_refuses_a_stochastic_logger_unless_forced(tmp_path, capsys):
    data, figures = synthetic_dataset(tmp_path, kind="ppo")  # near-uniform PPO policies: ~ln 18 nats
    args = ["--data-dir", str(data), "--figures", str(figures), "--states", "16", "--own-states", "8",
            "--device", "cpu", "--target-return", "100"]
    with pytest.raises(SystemExit):
        diagnostics.main(args)
    assert "per-state entropy 2.8" in capsys.readouterr().err
    diagnostics.main(args + ["--force"])
    d = json.loads((data / "diagnostics.json").read_text())
    assert d["check"]["forced"] and not d["check"]["passed"] and d["per_policy"][0]["kind"] == "ppo"
