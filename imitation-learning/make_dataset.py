"""Build the offline dataset by replaying the learning agent's policy snapshots (or a random policy).

    python make_dataset.py --game Seaquest                 # ppo-sampled: 500k train + 50k test (GPU: ~1-2 min)
    python make_dataset.py --dataset dqn-replay-like       # from the PQN snapshots (pqn.py), logged as DQN-replay
    python make_dataset.py --quick                         # random policy, a few thousand steps (tests)
    python make_dataset.py --quick --dataset dqn-replay-like --policy snapshots    # after pqn.py --quick

DQN-replay is the experience of a DQN agent while it learned. Here the learning agent is a sequence of
policy snapshots, and each dataset says how they act (DATASETS):
- `ppo-sampled` (data/<game>, the committed results): the 8 PPO snapshots of agent.py, each sampling
  from its policy plus epsilon-uniform actions, no sticky actions, all snapshots in both splits;
- `dqn-replay-like` (data/dqn-replay-like/<game>): PQN snapshots (pqn.py; snapshots/pqn/<game> holds those
  that publish_snapshots.py chose), each greedy on its Q-values w.p. 1 - epsilon (0.99), else a uniform
  action, with sticky actions p = 0.25 as DQN-replay's logging; `train_policies` (50) snapshots evenly
  spread from the first to the last, and `test_policies` (10) of those, evenly spread, for the test split.
Snapshot k contributes 1/K of each split it plays in. Train and test use different env seeds and sampling
seeds. Everything is seeded: the same snapshots, software and device type give the same dataset (the
manifest keeps a hash of the actions and rewards to check it). The actions stored are the agent's
choices; with sticky actions the emulator sometimes repeated the previous one instead, as in DQN-replay.

Which episodes are kept: for each snapshot, episodes are taken in order of their start until the
snapshot's share is reached; episodes already running then are played to their end (never cut,
so no bias towards short episodes).

Output, data/<game>/<split>/ (uint8 frames, one per transition: no stacked duplicates):
  frames.npy (N, 84, 84) uint8  newest frame of each state; the state of step t stacks the frames
                                of steps t-3..t of its episode, zeros before the episode's start
  actions.npy (N,) uint8        ALE action ids (converted to the joystick order when loaded)
  rewards.npy (N,) float32      unclipped
  episode_starts.npy (E+1,)     offsets of the episodes into the transitions
  episode_policy.npy (E,)       index into the manifest's `policies` of the snapshot that played it
                                (-1: random policy)
plus manifest.json (dataset, agent, logging, frames, returns of the data, throughput, hashes) beside them.
diagnostics.py then measures the logging policies (entropy, disagreement) and the returns.
"""

import hashlib
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import atari
import scaffold
from scaffold import Field, config_dict, pick_device, provenance, write_json

HERE = Path(__file__).resolve().parent
SPLIT_SEEDS = {"train": 10_000, "test": 20_000}  # env seed bases: train and test never share a seed
# Each dataset: its agent, where its snapshots and data live (under imitation-learning/, or runs/quick/ for
# --quick; {game} filled in), how the snapshots act, and how many of them play.
DATASETS = {
    "ppo-sampled": dict(agent="ppo", snapshots="snapshots/{game}", data="data/{game}", sticky=0.0, num_envs=32,
                        train_policies=0, test_policies=0,
                        logging="each snapshot samples from its policy; w.p. epsilon a uniform action instead"),
    "dqn-replay-like": dict(agent="pqn", snapshots="snapshots/pqn/{game}", data="data/dqn-replay-like/{game}",
                            sticky=0.25, num_envs=4, train_policies=50, test_policies=10,
                            logging="each snapshot takes its greedy action (argmax Q) w.p. 1 - epsilon, else a "
                                    "uniform action (possibly the greedy one); sticky actions in the emulator"),
}


@dataclass
class Config:
    game: str = Field("Seaquest", "game", choices=tuple(atari.GAMES))
    dataset: str = Field("ppo-sampled", "which dataset (DATASETS): its agent, folders and logging",
                         choices=tuple(DATASETS))
    policy: str = Field("snapshots", "replay the agent's snapshots, or a uniformly random policy",
                        choices=("snapshots", "random"))
    snapshots_dir: str = Field("", "default: the dataset's")
    train_steps: int = Field(500_000, "transitions of the train split (whole episodes: a few more)", low=1)
    test_steps: int = Field(50_000, "transitions of the test split", low=1)
    epsilon: float = Field(0.01, "uniform-random action probability on top of the policy's choice", low=0.0, high=1.0)
    sticky: float = Field(-1.0, "sticky-action probability; -1: the dataset's (0 / 0.25)", low=-1.0, high=1.0)
    train_policies: int = Field(0, "snapshots used, evenly spread over the run; 0: the dataset's (all / 50)", low=0)
    min_agent_steps: int = Field(0, "leave out snapshots saved before this many agent steps", low=0)
    test_policies: int = Field(0, "of those, evenly spread, playing the test split; 0: the dataset's (all / 10)",
                               low=0)
    num_envs: int = Field(0, "games per (split, policy) part; 0: the dataset's (32 / 4: whole episodes are kept in "
                          "order of start, so more games than episodes needed waste steps)", low=0)
    num_threads: int = Field(0, "ALE threads per worker; 0: cores / workers", low=0)
    workers: int = Field(8, "processes, each playing one (split, policy) part at a time", low=1)
    max_episode_steps: int = Field(27_000, "episodes truncated after this many agent steps (108k frames, as DQN)",
                                   low=1)
    seed: int = Field(0, "seeds the env and sampling seeds of both splits", low=0)
    out_dir: str = Field("", "default: the dataset's (data/<game>, data/dqn-replay-like/<game>; --quick: under "
                         "runs/quick/)")
    device: str = Field("auto", "auto | cpu | cuda | cuda:N (the policies' forward passes)")


QUICK = dict(policy="random", train_steps=3000, test_steps=600, num_envs=4, num_threads=2, workers=1,
             max_episode_steps=1000)


def parse_config(argv=None) -> Config:
    cfg = scaffold.parse_config(Config, argv, description=__doc__, quick=QUICK)
    if -1.0 < cfg.sticky < 0.0:
        raise SystemExit(f"error: --sticky must be -1 (the dataset's) or in [0, 1] (got {cfg.sticky})")
    d = DATASETS[cfg.dataset]
    root = HERE / "runs/quick" if cfg._args.quick else HERE
    cfg.snapshots_dir = cfg.snapshots_dir or str(root / d["snapshots"].format(game=cfg.game))
    cfg.out_dir = cfg.out_dir or str(root / d["data"].format(game=cfg.game))
    cfg.sticky = d["sticky"] if cfg.sticky < 0 else cfg.sticky
    for name in ("num_envs", "train_policies", "test_policies"):
        if getattr(cfg, name) <= 0:
            setattr(cfg, name, d[name])
    return cfg


def spread(n_items: int, n: int) -> list[int]:
    """n indices evenly spread over range(n_items), first and last included (all when n is 0 or >= n_items)."""
    if n <= 0 or n >= n_items:
        return list(range(n_items))
    return sorted(set(np.round(np.linspace(0, n_items - 1, n)).astype(int).tolist()))


def collect(envs, num_envs, target, act, env_seed):
    """Play until `target` transitions of whole episodes, taken in order of episode start.

    act(obs uint8 (n,4,84,84)) -> ALE actions (n,). Returns a list of episodes (frames, actions, rewards).
    """
    obs, _ = envs.reset(seed=env_seed)
    current = [dict(frames=[], actions=[], rewards=[], start=0, accepted=True) for _ in range(num_envs)]
    done, step, accepting = [], 0, True
    while True:
        if accepting and sum(len(e[0]) for e in done) + sum(len(c["actions"]) for c in current if c["accepted"]) >= target:
            accepting = False  # episodes starting from now on are played but not kept
        if not accepting and not any(c["accepted"] for c in current):
            break
        actions = act(obs)
        for i, c in enumerate(current):
            c["frames"].append(obs[i, -1].copy())
        obs, reward, term, trunc, _ = envs.step(actions)
        step += 1
        for i, c in enumerate(current):
            c["actions"].append(actions[i])
            c["rewards"].append(reward[i])
            if term[i] or trunc[i]:
                if c["accepted"]:
                    done.append((np.stack(c["frames"]), np.array(c["actions"], np.uint8),
                                 np.array(c["rewards"], np.float32), c["start"], i))
                current[i] = dict(frames=[], actions=[], rewards=[], start=step, accepted=accepting)
            elif not c["accepted"]:  # frames of unkept episodes are not stored
                c["frames"].clear(); c["actions"].clear(); c["rewards"].clear()
    done.sort(key=lambda e: (e[3], e[4]))
    kept, total = [], 0
    for e in done:
        if total >= target:
            break
        kept.append(e[:3])
        total += len(e[1])
    return kept


def make_policy(cfg, snapshot_path, device, rng):
    if snapshot_path is None:
        return lambda obs: rng.integers(0, atari.NUM_ACTIONS, len(obs)), {}
    if DATASETS[cfg.dataset]["agent"] == "pqn":
        from pqn import epsilon_greedy, load_snapshot
        model, meta = load_snapshot(snapshot_path, device)

        def act_greedy(obs):
            with torch.no_grad():
                q = model(torch.as_tensor(obs, device=device))
            return epsilon_greedy(q.argmax(-1).cpu().numpy(), cfg.epsilon, rng)
        return act_greedy, meta
    from agent import load_snapshot
    model, meta = load_snapshot(snapshot_path, device)

    def act(obs):
        with torch.no_grad():
            logits, _ = model(torch.as_tensor(obs, device=device))
        probs = torch.softmax(logits.double(), -1).cpu().numpy()
        # sampling on the CPU with a seeded numpy generator: the GPU only computes the probabilities
        u = rng.random(len(obs))
        a = (probs.cumsum(-1) < u[:, None]).sum(-1).clip(0, atari.NUM_ACTIONS - 1)
        explore = rng.random(len(obs)) < cfg.epsilon
        return np.where(explore, rng.integers(0, atari.NUM_ACTIONS, len(obs)), a)
    return act, meta


def write_split(path: Path, parts):
    """Concatenate the per-policy parts (lists of episodes, in policy order) into one split."""
    path.mkdir(parents=True, exist_ok=True)
    episodes = [e for part in parts for e in part["episodes"]]
    lengths = np.array([len(a) for a in episodes_field(parts, "actions")])
    n = int(lengths.sum())
    frames = np.lib.format.open_memmap(path / "frames.npy", mode="w+", dtype=np.uint8, shape=(n, 84, 84))
    pos = 0
    for part in parts:  # frames are read part by part from the workers' files: never all twice in memory
        f = np.load(part["frames"], mmap_mode="r")
        frames[pos:pos + len(f)] = f
        pos += len(f)
        Path(part["frames"]).unlink()
    frames.flush()
    np.save(path / "actions.npy", np.concatenate(episodes_field(parts, "actions")))
    np.save(path / "rewards.npy", np.concatenate(episodes_field(parts, "rewards")))
    np.save(path / "episode_starts.npy", np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    np.save(path / "episode_policy.npy", np.array([p["policy_id"] for p in parts for _ in p["episodes"]], dtype=np.int64))
    return n


def episodes_field(parts, key):
    return [e[key] for p in parts for e in p["episodes"]]


def describe_returns(returns) -> dict:
    r = np.asarray(returns, dtype=np.float64)
    q = np.quantile(r, [0.1, 0.25, 0.5, 0.75, 0.9]) if len(r) else [np.nan] * 5
    return {"episodes": int(len(r)), "mean": float(r.mean()), "std": float(r.std()), "min": float(r.min()),
            "max": float(r.max()), **{f"q{int(p * 100)}": float(v) for p, v in zip([0.1, 0.25, 0.5, 0.75, 0.9], q)}}


def sha256_file(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def play_part(cfg, split: str, k: int, snap, share: int, num_threads: int, tmp: Path) -> dict:
    """One policy's share of one split (run in a worker process; seeded by (seed, split, k) only)."""
    torch.backends.cudnn.allow_tf32 = False  # exact float32: the probabilities do not depend on tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.set_num_threads(1)
    device = pick_device(cfg.device)
    rng = np.random.default_rng([cfg.seed, SPLIT_SEEDS[split], k])
    act, meta = make_policy(cfg, snap, device, rng)
    envs = atari.make_vector_env(cfg.game, cfg.num_envs, num_threads, repeat_action_probability=cfg.sticky,
                                 max_episode_steps=cfg.max_episode_steps)
    t0 = time.time()
    eps = collect(envs, cfg.num_envs, share, act, SPLIT_SEEDS[split] + 100 * k + cfg.seed)
    envs.close()
    frames_file = tmp / f"{split}_{k}.npy"
    np.save(frames_file, np.concatenate([f for f, _, _ in eps]))
    rets = [float(r.sum()) for _, _, r in eps]
    info = {"policy": k, "file": snap.name if snap else "random", "transitions": int(sum(len(a) for _, a, _ in eps)),
            **{key: meta[key] for key in ("agent_steps", "frames", "mean_return_last50", "train_return_last50",
                                          "eval_return_last16") if key in meta},
            "seconds": round(time.time() - t0, 1), "returns": describe_returns(rets)}
    return {"info": info, "frames": str(frames_file), "policy_id": k if snap is not None else -1,
            "episodes": [{"actions": a, "rewards": r} for _, a, r in eps]}


def pqn_agent_summary(curve_json: Path) -> dict | None:
    """The PQN run behind the snapshots, from its curve.json (sessions summed)."""
    if not curve_json.exists():
        return None
    c = json.loads(curve_json.read_text())
    sessions = c["sessions"]
    steps = sum(s["end_agent_steps"] - s["start_agent_steps"] for s in sessions)
    wall = sum(s["wall_seconds"] for s in sessions)
    return {"algorithm": "PQN (Q(lambda), no replay buffer, LayerNorm Nature-CNN Q-network, epsilon-greedy)",
            "config": c["config"], "agent_steps": c["rows"][-1]["agent_steps"] if c["rows"] else 0,
            "wall_seconds": round(wall, 1), "agent_steps_per_second": round(steps / max(wall, 1e-9), 1),
            "sessions": [{k: v for k, v in s.items() if k != "env"} for s in sessions],
            "env": sessions[-1]["env"] if sessions else None}


def main(argv=None):
    cfg = parse_config(argv)
    device = pick_device(cfg.device)
    agent = DATASETS[cfg.dataset]["agent"]
    if cfg.policy == "snapshots":
        found = sorted(Path(cfg.snapshots_dir).glob("policy_*.pt"))
        if not found:
            raise SystemExit(f"error: no policy_*.pt in {cfg.snapshots_dir}: run {'pqn' if agent == 'pqn' else 'agent'}.py "
                             f"first or use --policy random")
        metas = [torch.load(f, map_location="cpu", weights_only=True) for f in found]
        kind = metas[0].get("algorithm", "ppo")
        if kind != agent:
            raise SystemExit(f"error: {cfg.snapshots_dir} holds {kind} snapshots; dataset {cfg.dataset} needs {agent} ones")
        found = [f for f, m in zip(found, metas) if m.get("agent_steps", 0) >= cfg.min_agent_steps]
        if not found:
            raise SystemExit(f"error: no snapshot in {cfg.snapshots_dir} has >= {cfg.min_agent_steps} agent steps")
        snaps = [found[i] for i in spread(len(found), cfg.train_policies)]
    else:
        snaps = [None]
    ids = {"train": list(range(len(snaps))), "test": spread(len(snaps), cfg.test_policies)}
    out = Path(cfg.out_dir)
    tmp = out / "parts"
    tmp.mkdir(parents=True, exist_ok=True)
    logging = DATASETS[cfg.dataset]["logging"] if cfg.policy == "snapshots" else "uniform random"
    manifest = {"dataset": cfg.dataset, "config": {**config_dict(cfg), "quick": cfg._args.quick},
                "env": provenance(device, ale_py=atari.ale_version()), "splits": {},
                "policies": [],
                "logging": {"policy": logging, "epsilon": cfg.epsilon, "sticky_action_probability": cfg.sticky,
                            "policies_train": ids["train"], "policies_test": ids["test"]}}
    t_all = time.time()
    # (split, policy k, its snapshot, its share): k indexes `snaps`, the manifest's `policies`
    tasks = [(split, k, snaps[k], -(-target // len(ids[split])))
             for split, target in (("train", cfg.train_steps), ("test", cfg.test_steps)) for k in ids[split]]
    workers = max(1, min(cfg.workers, len(tasks)))
    threads = cfg.num_threads or max(1, (os.cpu_count() or 1) // workers)
    if workers == 1:
        results = [play_part(cfg, *t, threads, tmp) for t in tqdm(tasks, desc="policies x splits", disable=None)]
    else:  # one process per (split, policy) task at a time; results do not depend on the worker count
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(play_part, cfg, *t, threads, tmp) for t in tasks]
            results = [f.result() for f in tqdm(futures, desc="policies x splits", disable=None)]
    for split in ("train", "test"):
        parts = [r for t, r in zip(tasks, results) if t[0] == split]
        n = write_split(out / split, parts)
        h = hashlib.sha256()
        for e in (e for p in parts for e in p["episodes"]):
            h.update(e["actions"].tobytes()); h.update(e["rewards"].tobytes())
        rets = [float(r.sum()) for r in episodes_field(parts, "rewards")]
        manifest["splits"][split] = {
            "transitions": n, "env_seed_base": SPLIT_SEEDS[split] + cfg.seed,
            "returns": describe_returns(rets),
            "episode_lengths": describe_returns([len(a) for a in episodes_field(parts, "actions")]),
            "per_policy": [p["info"] for p in parts], "sha256_actions_rewards": h.hexdigest()}
        print(f"{split}: {n} transitions, {len(rets)} episodes; returns mean {np.mean(rets):.0f} max {np.max(rets):.0f}")
    tmp.rmdir()
    seconds = time.time() - t_all
    kept = sum(manifest["splits"][s]["transitions"] for s in ("train", "test"))
    manifest["policies"] = [{"file": s.name, "sha256": sha256_file(s)} for s in snaps if s is not None]
    manifest["wall_seconds"] = round(seconds, 1)
    manifest["throughput"] = {"workers": workers, "threads_per_worker": threads, "envs_per_worker": cfg.num_envs,
                              "kept_transitions_per_second": round(kept / seconds, 1),
                              "note": "kept transitions only; steps of episodes begun after a policy's share was "
                                      "reached are played and dropped, so the emulator runs more steps than this"}
    if cfg.policy == "snapshots" and agent == "pqn":
        manifest["agent"] = pqn_agent_summary(Path(cfg.snapshots_dir) / "curve.json")
    elif cfg.policy == "snapshots":
        agent_json = Path(cfg.snapshots_dir) / "agent.json"
        if agent_json.exists():
            a = json.loads(agent_json.read_text())
            manifest["agent"] = {"algorithm": "PPO (clipped, GAE), Nature-CNN actor-critic", "config": a["config"],
                                 "agent_steps": a["log"][-1]["agent_steps"], "wall_seconds": a["wall_seconds"],
                                 "agent_steps_per_second": a["agent_steps_per_second"], "env": a["env"]}
    write_json(out / "manifest.json", manifest)
    print(f"dataset in {seconds:.0f} s ({kept / seconds:.0f} kept transitions/s, {workers} workers)")


if __name__ == "__main__":
    main()
