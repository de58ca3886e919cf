"""Diagnostics of an offline dataset: how its logging policies act and what they score (issue 19).

    python diagnostics.py --dataset dqn-replay-like        # data/dqn-replay-like/Seaquest; exit 1 if it fails the check
    python diagnostics.py --dataset ppo-sampled --force    # data/Seaquest: report, never refuse
    python diagnostics.py --quick --dataset dqn-replay-like --force   # the quick data under runs/quick/

For a dataset written by make_dataset.py (its manifest names the snapshots and how they acted):
- per-state entropy of the logging policies (nats): on states a policy logged itself (up to `own_states`
  per policy), the entropy of the distribution its action was drawn from: (1 - eps) softmax(logits) + eps/18
  for PPO snapshots, (1 - eps) onehot(argmax Q) + eps/18 for PQN ones (0.080 nats at eps = 0.01). Reported per
  policy and over the data (policies weighted by their transitions). Sticky actions do not enter: the data
  holds the agent's choices;
- disagreement between snapshots on the same states: `states` states drawn uniformly from the split, every
  policy's distribution on each: the Jensen-Shannon divergence of each pair (nats, at most ln 2 = 0.693;
  mean and the matrix), the generalized JS of all of them (entropy of their mixture minus their mean
  entropy, at most ln K), the mixture's entropy (what a model that cannot tell the policies apart has to
  predict), and how often two snapshots' most likely actions agree;
- returns of the episodes, per snapshot and overall (episodes, mean, std, min, quantiles, max) per split,
  and the share of train episodes at or above the game's target return (Seaquest 1150).
Writes <data_dir>/diagnostics.json and figures/<game>_<dataset>_data.png (returns histogram, return per
snapshot against its agent steps, the JS matrix). Then the check: exit 1 with one line when the mean
per-state entropy exceeds `max_entropy` (0.5) or the train split's best return is below the target
return, unless --force.
"""

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import atari
import scaffold
from scaffold import Field, config_dict, pick_device, write_json
from dataset import load_split, stack_index
from make_dataset import DATASETS, describe_returns

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    game: str = Field("Seaquest", "game", choices=tuple(atari.GAMES))
    dataset: str = Field("dqn-replay-like", "picks the default data dir (make_dataset.DATASETS)",
                         choices=tuple(DATASETS))
    data_dir: str = Field("", "default: the dataset's")
    snapshots_dir: str = Field("", "default: the one in the manifest if it exists here, else the dataset's")
    split: str = Field("train", "split whose states are analysed (returns: every split)", choices=("train", "test"))
    states: int = Field(2048, "common states on which all snapshots are compared", low=1)
    own_states: int = Field(512, "states per policy, from its own episodes, for its entropy", low=1)
    max_entropy: float = Field(0.5, "check: refuse above this mean per-state entropy (nats)", low=0.0)
    target_return: float = Field(0.0, "check: refuse when the best train return is below; 0: the game's")
    force: bool = Field(False, "report, never refuse")
    figures: str = Field("", "default figures/ (quick: runs/quick/figures)")
    seed: int = Field(0, "seeds the choice of states", low=0)
    device: str = Field("auto", "auto | cpu | cuda | cuda:N")


QUICK = dict(states=128, own_states=64)


def parse_config(argv=None) -> Config:
    cfg = scaffold.parse_config(Config, argv, description=__doc__, quick=QUICK)
    root = HERE / "runs/quick" if cfg._args.quick else HERE
    cfg.data_dir = cfg.data_dir or str(root / DATASETS[cfg.dataset]["data"].format(game=cfg.game))
    cfg.figures = cfg.figures or str(root / "figures")
    cfg.target_return = cfg.target_return or float(atari.game_info(cfg.game)["target_return"])
    return cfg


# ---- information arithmetic (nats) ----------------------------------------------------------------

def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy over the last axis, 0 ln 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(-1)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence H((p+q)/2) - (H(p)+H(q))/2 over the last axis."""
    return entropy((p + q) / 2) - (entropy(p) + entropy(q)) / 2


def epsilon_mix(p: np.ndarray, epsilon: float) -> np.ndarray:
    """The distribution actions were drawn from: the policy's w.p. 1 - eps, else uniform over the 18."""
    return (1 - epsilon) * p + epsilon / p.shape[-1]


def policy_distributions(model, kind: str, obs: np.ndarray, epsilon: float, device, chunk: int = 512):
    """(n, 18) float64 action distributions of one snapshot on uint8 states (n, 4, 84, 84)."""
    out = []
    for a in range(0, len(obs), chunk):
        x = torch.as_tensor(obs[a:a + chunk], device=device)
        with torch.no_grad():
            if kind == "pqn":
                p = torch.nn.functional.one_hot(model(x).argmax(-1), atari.NUM_ACTIONS).double()
            else:
                p = torch.softmax(model(x)[0].double(), -1)
        out.append(p.cpu().numpy())
    return epsilon_mix(np.concatenate(out) if out else np.zeros((0, atari.NUM_ACTIONS)), epsilon)


def disagreement(dists: np.ndarray) -> dict:
    """dists (K policies, M states, 18): how the K policies differ on the same states."""
    K = len(dists)
    H = entropy(dists)                                       # (K, M)
    mixture = dists.mean(0)                                  # (M, 18)
    js = np.zeros((K, K))
    for k in range(K):
        js[k] = js_divergence(dists[k][None], dists).mean(-1)
    greedy = dists.argmax(-1)                                # (K, M)
    agree = (greedy[:, None] == greedy[None]).mean(-1)       # (K, K)
    off = ~np.eye(K, dtype=bool)
    return {"policies": K, "states": int(dists.shape[1]),
            "mean_entropy_nats": float(H.mean()),
            "mixture_entropy_nats": float(entropy(mixture).mean()),
            "generalized_js_nats": float((entropy(mixture) - H.mean(0)).mean()),
            "pairwise_js_mean_nats": float(js[off].mean()) if K > 1 else 0.0,
            "adjacent_js_nats": [round(float(js[k, k + 1]), 5) for k in range(K - 1)],
            "greedy_agreement_pairwise_mean": float(agree[off].mean()) if K > 1 else 1.0,
            "pairwise_js_nats": np.round(js, 5).tolist()}


# ---- data access ----------------------------------------------------------------------------------

def states_at(frames, stack: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """uint8 (len(idx), 4, 84, 84): the frame stacks of transitions idx (zeros before an episode's start)."""
    n = len(frames)
    ix = stack[np.sort(idx)]
    out = np.asarray(frames[np.minimum(ix, n - 1).ravel()]).reshape(len(idx), 4, 84, 84)
    out[ix == n] = 0
    return out


def snapshot_dir(cfg: Config, manifest: dict) -> Path:
    if cfg.snapshots_dir:
        return Path(cfg.snapshots_dir)
    recorded = Path(manifest["config"].get("snapshots_dir", ""))
    if recorded.is_dir():
        return recorded
    root = HERE / "runs/quick" if cfg._args.quick else HERE
    return root / DATASETS[manifest.get("dataset", "ppo-sampled")]["snapshots"].format(game=cfg.game)


def load_policies(cfg: Config, manifest: dict, device):
    """The manifest's snapshots, checked against its hashes: [(model, kind, meta)]."""
    folder = snapshot_dir(cfg, manifest)
    policies = []
    for p in manifest["policies"]:
        path = folder / p["file"]
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != p["sha256"]:
            raise SystemExit(f"error: {path} is missing or not the snapshot that logged the data (sha256); "
                             f"give --snapshots-dir")
        kind = torch.load(path, map_location="cpu", weights_only=True).get("algorithm", "ppo")
        if kind == "pqn":
            from pqn import load_snapshot
        else:
            from agent import load_snapshot
        model, meta = load_snapshot(path, device)
        policies.append((model, kind, meta))
    return policies


# ---- report ---------------------------------------------------------------------------------------

def episode_returns(split: dict) -> np.ndarray:
    starts = split["episode_starts"]
    return np.add.reduceat(split["rewards"].astype(np.float64), starts[:-1]) if starts[-1] else np.zeros(0)


def analyse(cfg: Config, manifest: dict, splits: dict, policies, device) -> dict:
    """splits: name -> load_split(...); policies: load_policies(...) (empty for random-policy data)."""
    rng = np.random.default_rng(cfg.seed)
    epsilon = manifest["config"]["epsilon"]
    returns = {name: (episode_returns(s), s["episode_policy"]) for name, s in splits.items()}
    train_ret = returns["train"][0]
    report = {
        "dataset": manifest.get("dataset", "ppo-sampled"), "game": cfg.game,
        "config": {**config_dict(cfg), "quick": cfg._args.quick},
        "logging": manifest.get("logging", {"epsilon": epsilon}),
        "returns": {name: describe_returns(r) for name, (r, _) in returns.items()},
        "target_return": cfg.target_return,
        "train_episodes_at_or_above_target": float((train_ret >= cfg.target_return).mean()),
        "data_return_max": float(train_ret.max()),
    }
    s = splits[cfg.split]
    starts = s["episode_starts"]
    n = int(starts[-1])
    stack = stack_index(starts)
    step_policy = np.repeat(s["episode_policy"], np.diff(starts))
    per_policy = []
    if not policies:  # random-policy data: every state has the uniform distribution
        h = float(np.log(atari.NUM_ACTIONS))
        report.update(data_per_state_entropy_nats=h, data_per_state_entropy_note="uniform random policy")
    else:
        weights, own_h = [], []
        for k, (model, kind, meta) in enumerate(policies):
            mine = np.flatnonzero(step_policy == k)
            idx = rng.choice(mine, min(cfg.own_states, len(mine)), replace=False) if len(mine) else mine
            h = entropy(policy_distributions(model, kind, states_at(s["frames"], stack, idx), epsilon, device))
            row = {"policy": k, "file": manifest["policies"][k]["file"], "kind": kind,
                   "agent_steps": meta.get("agent_steps"), "transitions": int(len(mine)),
                   "entropy_nats": float(h.mean()) if len(h) else None}
            for name, (r, pol) in returns.items():
                row[f"returns_{name}"] = describe_returns(r[pol == k]) if (pol == k).any() else None
            per_policy.append(row)
            if len(h):
                weights.append(len(mine))
                own_h.append(h.mean())
        report["data_per_state_entropy_nats"] = float(np.average(own_h, weights=weights))
        report["per_policy"] = per_policy
        common = rng.choice(n, min(cfg.states, n), replace=False)
        obs = states_at(s["frames"], stack, common)
        dists = np.stack([policy_distributions(m, kind, obs, epsilon, device) for m, kind, _ in policies])
        report["disagreement"] = disagreement(dists)
    report["uniform_entropy_nats"] = float(np.log(atari.NUM_ACTIONS))
    return report


def check(report: dict, cfg: Config) -> list[str]:
    """Reasons to refuse the data (empty: it passes)."""
    reasons = []
    if report["data_per_state_entropy_nats"] > cfg.max_entropy:
        reasons.append(f"per-state entropy {report['data_per_state_entropy_nats']:.3f} nats > {cfg.max_entropy}")
    if report["data_return_max"] < cfg.target_return:
        reasons.append(f"best train return {report['data_return_max']:.0f} < target return {cfg.target_return:.0f}")
    return reasons


def data_label(report: dict) -> str:
    """'<game> <dataset>', saying when the data came from a random policy or a quick run."""
    label = f"{report['game']} {report['dataset']}"
    if report.get("logging", {}).get("policy") == "uniform random":
        label += " (random policy)"
    return f"quick run, {label}" if report["config"].get("quick") else label


def plot(report: dict, returns: dict, path: Path):
    import matplotlib.pyplot as plt

    import plot_style
    plot_style.use()
    has_js = "disagreement" in report and report["disagreement"]["policies"] > 1
    fig, axes = plt.subplots(1, 3 if has_js else 2, figsize=(15 if has_js else 10, 3.8))
    ax = axes[0]
    all_r = np.concatenate([r for r in returns.values()])
    bins = np.linspace(all_r.min(), max(all_r.max(), report["target_return"]), 40)
    for name, r in returns.items():
        ax.hist(r, bins=bins, alpha=0.6, label=f"{name} ({len(r)} episodes)")
    ax.axvline(report["target_return"], color="k", ls="--", lw=1, label=f"target return {report['target_return']:.0f}")
    ax.set(xlabel="episode return", ylabel="episodes", title=f"{data_label(report)}: returns")
    ax.legend()
    ax = axes[1]
    rows = [p for p in report.get("per_policy", []) if p["returns_train"]]
    if rows:
        x = [p["agent_steps"] or p["policy"] for p in rows]
        ax.errorbar(x, [p["returns_train"]["mean"] for p in rows], [p["returns_train"]["std"] for p in rows],
                    fmt="o", ms=3, capsize=2, label="mean ± std")
        ax.plot(x, [p["returns_train"]["max"] for p in rows], "^", ms=3, label="max")
        ax.axhline(report["target_return"], color="k", ls="--", lw=1)
        ax.set(xlabel="agent steps of the snapshot", ylabel="episode return (train)",
               title=f"per snapshot; entropy {report['data_per_state_entropy_nats']:.2f} nats")
        ax.legend()
    if has_js:
        ax = axes[2]
        d = report["disagreement"]
        im = ax.imshow(np.array(d["pairwise_js_nats"]), cmap="viridis", vmin=0, vmax=np.log(2))
        ax.grid(False)
        ax.set(xlabel="snapshot", ylabel="snapshot",
               title=f"Jensen-Shannon on {d['states']} states (mean {d['pairwise_js_mean_nats']:.2f})")
        fig.colorbar(im, ax=ax, label="nats")
    return plot_style.save(fig, path)


def main(argv=None):
    cfg = parse_config(argv)
    device = pick_device(cfg.device)
    data = Path(cfg.data_dir)
    if not (data / "manifest.json").exists():
        raise SystemExit(f"error: no manifest.json in {data}: run make_dataset.py first")
    manifest = json.loads((data / "manifest.json").read_text())
    splits = {name: load_split(data / name) for name in ("train", "test") if (data / name / "frames.npy").exists()}
    policies = load_policies(cfg, manifest, device)
    report = analyse(cfg, manifest, splits, policies, device)
    reasons = check(report, cfg)
    report["check"] = {"passed": not reasons, "reasons": reasons, "max_entropy": cfg.max_entropy,
                       "forced": cfg.force}
    returns = {name: episode_returns(s) for name, s in splits.items()}
    figure = plot(report, returns, Path(cfg.figures) / f"{cfg.game}_{report['dataset']}_data")
    report["figure"] = figure.name
    write_json(data / "diagnostics.json", report)
    d = report.get("disagreement", {})
    print(f"{report['dataset']}: per-state entropy {report['data_per_state_entropy_nats']:.3f} nats, "
          f"pairwise JS {d.get('pairwise_js_mean_nats', float('nan')):.3f}, mixture entropy "
          f"{d.get('mixture_entropy_nats', float('nan')):.3f} nats; train returns mean "
          f"{report['returns']['train']['mean']:.0f} max {report['data_return_max']:.0f} "
          f"(target {cfg.target_return:.0f}); {data / 'diagnostics.json'}, {figure}")
    if reasons and not cfg.force:
        print(f"refused: {'; '.join(reasons)} (--force to go on)", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
