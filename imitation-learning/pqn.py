"""PQN: the DQN-family online agent whose snapshots log the `dqn-replay-like` dataset (issue 19).

    python pqn.py --game Seaquest --total-steps 10000000 --max-seconds 1380   # GPU; rerun to resume
    python pqn.py --quick                                                    # CPU, about a minute, runs/quick/

Why this agent: DQN-replay was logged by a DQN agent acting epsilon-greedily (greedy w.p. 0.99) while it
learned, so every logging policy is nearly deterministic. DQN itself needs a replay buffer of millions of
frames, which cannot travel between our GPU sessions; PQN (Gallici et al. 2024, "Simplifying Deep Temporal
Difference Learning") learns Q-values from the current rollout of many parallel games, as PPO does, so
its whole state is the network and the optimizer (3.4 MB with hidden=64) and it runs about as fast.

Algorithm (the paper's Atari settings, read in its code; the rest as agent.py's PPO):
- `num_envs` games stepped in C++ threads, `num_steps` steps each per update; each game acts
  epsilon-greedily on the Q-network, epsilon decaying linearly from 1 to `eps_end` over `eps_decay_steps`
  (0.01, DQN-replay's training epsilon; PQN's code goes to 0.001);
- Q(lambda) targets over the rollout, no target network:
  G_t = r_t + gamma (1 - d_t) [(1 - lambda) max_a Q(s_t+1, a) + lambda G_t+1], and G_T = max_a Q(s_T, a);
  r_t is the reward clipped to its sign, d_t marks the end of the game or of a life (the game goes on);
- `update_epochs` passes over the rollout in `num_minibatches` minibatches, loss 0.5 (Q(s_t, a_t) - G_t)^2,
  RAdam at a constant learning rate, gradient norm clipped at 10;
- Q-network: the Nature-DQN torso with a LayerNorm after each layer (GroupNorm with one group: each conv
  output normalized over channels and positions together, as cleanrl's PQN; PQN's own code normalizes each
  position over its channels), `hidden` units, 18 Q-values. hidden=64 (a 0.56 MB fp16 snapshot) rather
  than PQN's 512: 50 snapshots must fit in the 64 MiB that travel to a GPU session.

Environment: atari.make_vector_env (full 18 actions, no episodic life, unclipped scores) with sticky actions
p = `sticky` (0.25: DQN-replay's agent learned and logged with them). `eval_envs` more games in the same
vector env play epsilon-greedily with `eval_epsilon` (0.01) and are never learned from: the "greedy"
return of the learning curve. An evaluation episode spans the updates made while it lasts.

Outputs in `out_dir` (default runs/pqn/<game>, git-ignored: nothing of it travels to a GPU session unless
carried; publish_snapshots.py then copies the snapshots the data needs to snapshots/pqn/<game>, committed):
  policy_KKK.pt   fp16 Q-network once the run passes K * snapshot_every agent steps (names from the grid,
                  not from a counter, so they do not depend on where a session stopped)
  curve.json      config, learning curve, snapshots, finished episodes, sessions with their throughput
  checkpoint.pt   fp32 weights, RAdam state, RNG states, counters (written with every snapshot and at the
                  end). A rerun with the same out dir resumes from it: the emulators restart (ALE cannot
                  save them), everything else continues; only total_steps, max_seconds, device,
                  num_threads and out_dir may change. SIGTERM stops after the update in progress, saved.
Bad flags stop with one line before any work; --wandb also logs the learning curve to wandb (offline unless
WANDB_MODE says otherwise).
"""

import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import atari
import scaffold
from scaffold import Field, Tracker, config_dict, pick_device, provenance, write_json

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    game: str = Field("Seaquest", "game", choices=tuple(atari.GAMES))
    total_steps: int = Field(10_000_000, "stop after this many agent steps (x4 frames); may be raised when resuming",
                             low=1)
    num_envs: int = Field(128, "training games (PQN: 128)", low=1)
    num_steps: int = Field(32, "steps per game and update (PQN: 32)", low=1)
    num_minibatches: int = Field(32, "minibatches per pass over a rollout (PQN: 32)", low=1)
    update_epochs: int = Field(2, "passes over each rollout (PQN: 2)", low=1)
    lr: float = Field(2.5e-4, "RAdam learning rate, constant (PQN Atari)", low=0.0, low_open=True)
    gamma: float = Field(0.99, "discount", low=0.0, high=1.0)
    q_lambda: float = Field(0.65, "lambda of the Q(lambda) targets (PQN: 0.65)", low=0.0, high=1.0)
    eps_start: float = Field(1.0, "exploration epsilon at step 0", low=0.0, high=1.0)
    eps_end: float = Field(0.01, "epsilon after the decay (DQN-replay's agent: 0.01)", low=0.0, high=1.0)
    eps_decay_steps: int = Field(1_000_000, "agent steps of the linear epsilon decay", low=0)
    max_grad_norm: float = Field(10.0, "gradient norm clip (PQN: 10)", low=0.0, low_open=True)
    hidden: int = Field(64, "units after the torso; 64 -> 0.56 MB fp16 snapshot", low=1)
    life_loss_terminal: bool = Field(True, "a lost life ends the bootstrap of the targets (the game goes on)")
    sticky: float = Field(0.25, "sticky-action probability (DQN-replay: 0.25)", low=0.0, high=1.0)
    eval_envs: int = Field(8, "extra games acting with eval_epsilon, not learned from", low=0)
    eval_epsilon: float = Field(0.01, "epsilon of the evaluation games", low=0.0, high=1.0)
    snapshot_every: int = Field(125_000, "agent steps between fp16 snapshots (80 in 10M steps)", low=1)
    log_every: int = Field(50_000, "agent steps between learning-curve rows", low=1)
    max_seconds: float = Field(0.0, "stop (checkpoint saved) after this many seconds of this process; 0: no limit",
                               low=0.0)
    seed: int = Field(1, "seeds the network, exploration, minibatches and games", low=0)
    num_threads: int = Field(0, "ALE threads; 0: one per core", low=0)
    out_dir: str = Field("", "default runs/pqn/<game> (quick: runs/quick/snapshots/pqn/<game>, where make_dataset "
                         "--quick looks)")
    device: str = Field("auto", "auto | cpu | cuda | cuda:1")


QUICK = dict(total_steps=1024, num_envs=8, num_steps=16, num_minibatches=4, eval_envs=2, hidden=16,
             eps_decay_steps=512, snapshot_every=256, log_every=128, num_threads=1)
# may differ between the sessions of one run; anything else must match the checkpoint's
RESUMABLE_CHANGES = ("total_steps", "max_seconds", "num_threads", "out_dir", "device")


def parse_config(argv=None) -> Config:
    cfg = scaffold.parse_config(Config, argv, description=__doc__, quick=QUICK, extra=lambda p: p.add_argument(
        "--wandb", action="store_true", help="also log the learning curve to wandb (offline unless WANDB_MODE says "
        "otherwise)"))
    if (cfg.num_envs * cfg.num_steps) % cfg.num_minibatches:
        raise SystemExit("error: --num-minibatches must divide --num-envs * --num-steps")
    if not cfg.out_dir:
        cfg.out_dir = str(HERE / ("runs/quick/snapshots/pqn" if cfg._args.quick else "runs/pqn") / cfg.game)
    return cfg


def run_config(cfg: Config) -> dict:
    """The config as the checkpoint and curve.json store it (with `quick`, as before the scaffold)."""
    return {**config_dict(cfg), "quick": cfg._args.quick}


# ---- network and snapshots ------------------------------------------------------------------------

class QNetwork(nn.Module):
    """uint8 frames (B, 4, 84, 84) -> Q-values (B, 18): Nature-DQN convs, each followed by a LayerNorm over
    the whole layer (GroupNorm with one group), then hidden units with a LayerNorm."""

    def __init__(self, hidden: int = 64, num_actions: int = atari.NUM_ACTIONS):
        super().__init__()
        layers = []
        for c_in, c_out, k, s in ((4, 32, 8, 4), (32, 64, 4, 2), (64, 64, 3, 1)):
            layers += [nn.Conv2d(c_in, c_out, k, stride=s), nn.GroupNorm(1, c_out), nn.ReLU()]
        layers += [nn.Flatten(), nn.Linear(3136, hidden), nn.LayerNorm(hidden), nn.ReLU()]
        self.torso = nn.Sequential(*layers)
        self.q = nn.Linear(hidden, num_actions)
        for m in self.torso:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # He normal, as PQN
                nn.init.zeros_(m.bias)

    def forward(self, obs_uint8):
        return self.q(self.torso(obs_uint8.float() / 255.0))


def save_snapshot(model: QNetwork, path: Path, meta: dict):
    """fp16 weights + what is needed to rebuild the policy (0.56 MB with hidden=64)."""
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": state, "algorithm": "pqn", **meta}, tmp)
    tmp.replace(path)


def load_snapshot(path, device="cpu") -> tuple[QNetwork, dict]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = QNetwork(blob["hidden"])
    model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    return model.to(device).eval(), {k: v for k, v in blob.items() if k != "state_dict"}


# ---- the two pieces of arithmetic -----------------------------------------------------------------

def epsilon_greedy(greedy: np.ndarray, epsilon, rng: np.random.Generator) -> np.ndarray:
    """The greedy action, or w.p. epsilon (scalar or per game) a uniform one of the 18 (possibly the greedy
    one). Always draws 2n numbers, so the stream does not depend on the outcome."""
    n = len(greedy)
    explore = rng.random(n) < epsilon
    return np.where(explore, rng.integers(0, atari.NUM_ACTIONS, n), greedy)


def q_lambda_targets(rewards, dones, next_max_q, gamma: float, lam: float):
    """Q(lambda) targets of one rollout, (T, N) tensors.

    rewards[t], dones[t]: the reward of step t and whether step t ended the (life) episode;
    next_max_q[t] = max_a Q(s_t+1, a), the state after step t (not used where dones[t]).
    G_t = r_t + gamma (1 - d_t) [(1 - lam) next_max_q[t] + lam G_t+1], starting from G_T = next_max_q[T-1].
    """
    targets = torch.empty_like(rewards)
    g = next_max_q[-1]
    for t in reversed(range(rewards.shape[0])):
        g = rewards[t] + gamma * (1.0 - dones[t]) * ((1.0 - lam) * next_max_q[t] + lam * g)
        targets[t] = g
    return targets


def epsilon_at(cfg: Config, step: int) -> float:
    return max(cfg.eps_end, cfg.eps_start + (cfg.eps_end - cfg.eps_start) * step / max(cfg.eps_decay_steps, 1))


def make_envs(cfg: Config):
    """Training games first, then the evaluation games (tests replace this with a fake)."""
    return atari.make_vector_env(cfg.game, cfg.num_envs + cfg.eval_envs, cfg.num_threads,
                                 repeat_action_probability=cfg.sticky)


# ---- checkpoint ----------------------------------------------------------------------------------

def load_checkpoint(cfg: Config, out: Path, device):
    ckpt = out / "checkpoint.pt"
    if not ckpt.exists():
        if any(out.glob("policy_*.pt")):
            raise SystemExit(f"error: {out} holds snapshots but no checkpoint.pt: bring the checkpoint back "
                             f"(carry it) to resume, or use another --out-dir")
        return None
    blob = torch.load(ckpt, map_location=device, weights_only=False)
    mine = run_config(cfg)
    differ = [k for k in mine if k not in RESUMABLE_CHANGES and blob["config"].get(k) != mine[k]]
    if differ:
        raise SystemExit(f"error: {ckpt} was made with other settings ({', '.join(differ)}); "
                         f"use the same ones or another --out-dir")
    return blob


# ---- training -------------------------------------------------------------------------------------

def learn(net, opt, perm_gen, b_obs, b_act, b_tgt, cfg: Config) -> float:
    """update_epochs passes over one rollout (flattened) in num_minibatches minibatches; the last loss."""
    batch = len(b_tgt)
    minibatch = batch // cfg.num_minibatches
    for _ in range(cfg.update_epochs):
        perm = torch.randperm(batch, generator=perm_gen).to(b_tgt.device)
        for s in range(0, batch, minibatch):
            mb = perm[s:s + minibatch]
            q_taken = net(b_obs[mb]).gather(1, b_act[mb, None]).squeeze(1)
            loss = 0.5 * (q_taken - b_tgt[mb]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
            opt.step()
    return loss.item()


def curve_row(cfg: Config, state: dict, window: dict, seconds: float, steps_per_second: float) -> dict:
    """One row of the learning curve: returns of the games that ended since the last row (and trailing)."""
    def mean(v):
        return round(float(np.mean(v)), 1) if v else None
    steps = state["agent_steps"]
    return {"agent_steps": steps, "frames": 4 * steps, "seconds": round(seconds, 1),
            "epsilon": round(epsilon_at(cfg, steps), 4),
            "train_episodes": len(window["train"]), "train_return_mean": mean(window["train"]),
            "eval_episodes": len(window["eval"]), "eval_return_mean": mean(window["eval"]),
            "train_return_last100": mean([e[1] for e in state["train_episodes"][-100:]]),
            "eval_return_last16": mean([e[1] for e in state["eval_episodes"][-16:]]),
            "td_loss": round(window["loss"] / max(window["n"], 1), 5),
            "q_mean": round(window["q"] / max(window["n"], 1), 3),
            "agent_steps_per_second": round(steps_per_second, 1)}


def main(argv=None):
    cfg = parse_config(argv)
    device = pick_device(cfg.device)
    if device.type == "cuda":  # speed over bitwise reproducibility on the GPU (the CPU run is deterministic)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(cfg._args.wandb, "fourier-head-pqn", run_config(cfg), name=f"pqn/{cfg.game}", directory=out)
    N, E, T = cfg.num_envs, cfg.eval_envs, cfg.num_steps
    batch = N * T

    torch.manual_seed(cfg.seed)
    net = QNetwork(cfg.hidden).to(device)
    opt = torch.optim.RAdam(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng([cfg.seed, 1])                # exploration
    perm_gen = torch.Generator().manual_seed(cfg.seed + 1)    # minibatch order (CPU: device independent)
    state = {"agent_steps": 0, "updates": 0, "seconds": 0.0, "rows": [], "snapshots": [], "sessions": [],
             "train_episodes": [], "eval_episodes": [], "window": None}
    blob = load_checkpoint(cfg, out, device)
    envs = make_envs(cfg)
    if blob is None:
        obs_np, info = envs.reset(seed=cfg.seed * 1_000_003)
        running = None
    else:
        net.load_state_dict(blob["model"])
        opt.load_state_dict(blob["opt"])
        rng.bit_generator.state = blob["rng"]
        perm_gen.set_state(blob["perm_gen"])
        state = blob["state"]
        running = blob.get("running")
        if running is not None and hasattr(envs, "set_state"):  # a fake env in the tests: exact resume
            envs.set_state(running["env"])
            obs_np, info = running["obs"], {"lives": running["lives"]}
        else:  # ALE: new games, seeded by where the run stands
            running = None
            obs_np, info = envs.reset(seed=cfg.seed * 1_000_003 + state["updates"])
        print(f"resuming at {state['agent_steps']:,} agent steps ({len(state['snapshots'])} snapshots)", flush=True)
    lives = np.asarray(info["lives"]).copy()
    ep_return = running["ep_return"] if running else np.zeros(N + E)
    ep_len = running["ep_len"] if running else np.zeros(N + E, dtype=np.int64)
    window = state["window"] or {"train": [], "eval": [], "loss": 0.0, "q": 0.0, "n": 0}

    obs = torch.zeros((T, N, 4, 84, 84), dtype=torch.uint8, device=device)
    actions = torch.zeros((T, N), dtype=torch.long, device=device)
    max_q = torch.zeros((T, N), device=device)
    rewards, dones = np.zeros((T, N), np.float32), np.zeros((T, N), np.float32)
    eps_eval = np.full(E, cfg.eval_epsilon)

    stop = {"signal": False}
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop.update(signal=True))
    t0, start_steps = time.time(), state["agent_steps"]
    seconds_before, previous_sessions = state["seconds"], state["sessions"]
    clock = {"env": 0.0, "act": 0.0, "learn": 0.0}

    env_info = provenance(device, ale_py=atari.ale_version())

    def save():
        """checkpoint.pt and curve.json as the run stands now (the session so far included)."""
        elapsed = time.time() - t0
        state["seconds"] = seconds_before + elapsed
        state["window"] = window
        session = {"start_agent_steps": start_steps, "end_agent_steps": state["agent_steps"],
                   "wall_seconds": round(elapsed, 1),
                   "agent_steps_per_second": round((state["agent_steps"] - start_steps) / max(elapsed, 1e-9), 1),
                   **{f"{name}_seconds": round(v, 1) for name, v in clock.items()}, "env": env_info}
        sessions = previous_sessions + [session]
        running = {"env": envs.get_state(), "obs": obs_np.copy(), "lives": lives.copy(),
                   "ep_return": ep_return.copy(), "ep_len": ep_len.copy()} if hasattr(envs, "get_state") else None
        tmp = out / "checkpoint.tmp"
        torch.save({"config": run_config(cfg), "model": net.state_dict(), "opt": opt.state_dict(),
                    "rng": rng.bit_generator.state, "perm_gen": perm_gen.get_state(), "running": running,
                    "state": {**state, "sessions": sessions}}, tmp)
        tmp.replace(out / "checkpoint.pt")
        write_json(out / "curve.json", {"config": run_config(cfg), "algorithm": "PQN", "rows": state["rows"],
                                        "snapshots": state["snapshots"], "sessions": sessions,
                                        "train_episodes": state["train_episodes"],
                                        "eval_episodes": state["eval_episodes"]})
        return session

    while state["agent_steps"] < cfg.total_steps and not stop["signal"]:
        # ---- rollout: N training games + E evaluation games, one forward per step
        step0 = state["agent_steps"]
        for t in range(T):
            ta = time.time()
            x = torch.as_tensor(obs_np).to(device, non_blocking=True)
            with torch.no_grad():
                q = net(x)
            q_best, greedy = q.max(1)
            eps = np.concatenate([np.full(N, epsilon_at(cfg, step0 + t * N)), eps_eval])
            a = epsilon_greedy(greedy.cpu().numpy(), eps, rng)
            obs[t], max_q[t] = x[:N], q_best[:N]
            actions[t] = torch.as_tensor(a[:N], device=device)
            te = time.time()
            obs_np, reward, term, trunc, info = envs.step(a)
            clock["env"] += time.time() - te
            clock["act"] += te - ta
            ep_return += reward
            ep_len += 1
            game_over = term | trunc
            life_lost = info["lives"] < lives
            lives = np.asarray(info["lives"]).copy()
            for i in np.flatnonzero(game_over):  # SameStep autoreset: obs_np[i] is already the next game's
                row = [step0 + (t + 1) * N, float(ep_return[i]), int(ep_len[i])]
                (window["train"] if i < N else window["eval"]).append(row[1])
                (state["train_episodes"] if i < N else state["eval_episodes"]).append(row)
                ep_return[i], ep_len[i] = 0.0, 0
            rewards[t] = np.sign(reward[:N])
            dones[t] = (game_over | (life_lost & cfg.life_loss_terminal))[:N]
        # ---- Q(lambda) targets with the network that acted, then minibatch updates
        tl = time.time()
        with torch.no_grad():
            last = net(torch.as_tensor(obs_np[:N]).to(device)).max(1).values
            next_max_q = torch.cat([max_q[1:], last[None]])
            targets = q_lambda_targets(torch.as_tensor(rewards, device=device), torch.as_tensor(dones, device=device),
                                       next_max_q, cfg.gamma, cfg.q_lambda)
        loss = learn(net, opt, perm_gen, obs.reshape(batch, 4, 84, 84), actions.reshape(batch),
                     targets.reshape(batch), cfg)
        window["loss"] += loss
        window["q"] += max_q.mean().item()
        window["n"] += 1
        clock["learn"] += time.time() - tl
        state["agent_steps"] += batch
        state["updates"] += 1
        steps = state["agent_steps"]

        out_of_time = cfg.max_seconds > 0 and time.time() - t0 > cfg.max_seconds
        if steps // cfg.log_every > (steps - batch) // cfg.log_every or steps >= cfg.total_steps:
            r = curve_row(cfg, state, window, seconds_before + time.time() - t0,
                          (steps - start_steps) / max(time.time() - t0, 1e-9))
            state["rows"].append(r)
            tracker.log({k: v for k, v in r.items() if isinstance(v, (int, float))}, step=steps)
            print(f"{steps:>11,} steps  eps {r['epsilon']:.3f}  return: train {r['train_return_mean']} "
                  f"(last 100: {r['train_return_last100']}), eval {r['eval_return_mean']} (last 16: "
                  f"{r['eval_return_last16']})  td {r['td_loss']:.4f}  q {r['q_mean']:.2f}  "
                  f"{r['agent_steps_per_second']:.0f} steps/s", flush=True)
            window = {"train": [], "eval": [], "loss": 0.0, "q": 0.0, "n": 0}
        k = steps // cfg.snapshot_every
        if k > (steps - batch) // cfg.snapshot_every:
            name = f"policy_{k:03d}.pt"
            recent = [e[1] for e in state["train_episodes"][-50:]]
            recent_eval = [e[1] for e in state["eval_episodes"][-16:]]
            meta = {"hidden": cfg.hidden, "game": cfg.game, "agent_steps": steps, "frames": 4 * steps,
                    "epsilon_train": epsilon_at(cfg, steps), "sticky": cfg.sticky,
                    "train_return_last50": float(np.mean(recent)) if recent else None,
                    "eval_return_last16": float(np.mean(recent_eval)) if recent_eval else None}
            save_snapshot(net, out / name, meta)
            state["snapshots"].append({"file": name, **{key: v for key, v in meta.items()
                                                        if key not in ("hidden", "game")}})
            save()
            print(f"snapshot {name}: {steps:,} agent steps", flush=True)
        if out_of_time:
            print(f"stopping after {time.time() - t0:.0f} s (max_seconds)", flush=True)
            break
    if stop["signal"]:
        print("stopping on SIGTERM", flush=True)
    s = save()
    envs.close()
    tracker.finish()
    signal.signal(signal.SIGTERM, previous_handler)
    print(f"PQN: {s['end_agent_steps'] - s['start_agent_steps']:,} agent steps in {s['wall_seconds']:.0f} s "
          f"({s['agent_steps_per_second']:.0f} steps/s; env {s['env_seconds']:.0f} s, act {s['act_seconds']:.0f} s, "
          f"learn {s['learn_seconds']:.0f} s); {state['agent_steps']:,} in all", flush=True)


if __name__ == "__main__":
    main()
