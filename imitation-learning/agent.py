"""The online agent whose experience becomes the offline dataset (DQN-replay cannot be downloaded).

    python agent.py --game Seaquest                       # PPO, ~2M agent steps (8M frames), GPU
    python agent.py --quick                                # a few thousand steps on a CPU

PPO (clipped objective, GAE) with a Nature-CNN actor-critic on `num_envs` ALE games stepped in C++
threads. The rollout/update loop follows the usual Atari PPO recipe (cleanrl's ppo_atari): rewards
clipped to their sign for learning, a life loss ends the GAE bootstrap (the game itself goes on),
learning rate annealed linearly to 0.

Along training it saves `snapshots` small policy snapshots (fp16 weights, evenly spaced in agent
steps): the learning agent of the dataset is this sequence of policies. make_dataset.py replays
them; only the snapshots need to be committed. A checkpoint (fp32 weights + optimizer) is written
with every snapshot, and a run with the same out dir resumes from it.
"""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

import atari
import scaffold
from scaffold import Field, config_dict, pick_device, provenance, write_json

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    game: str = Field("Seaquest", "game", choices=tuple(atari.GAMES))
    total_steps: int = Field(2_000_000, "agent steps (x4 emulator frames)", low=1)
    num_envs: int = Field(64, "games stepped at once", low=1)
    num_threads: int = Field(0, "ALE threads; 0: one per core", low=0)
    rollout_steps: int = Field(128, "steps per game and update", low=1)
    lr: float = Field(2.5e-4, "Adam learning rate, annealed linearly to 0", low=0.0, low_open=True)
    update_epochs: int = Field(4, "passes over each rollout", low=1)
    minibatch_size: int = Field(1024, "samples per minibatch", low=1)
    gamma: float = Field(0.99, "discount", low=0.0, high=1.0)
    gae_lambda: float = Field(0.95, "GAE lambda", low=0.0, high=1.0)
    clip: float = Field(0.1, "PPO ratio and value clip", low=0.0, low_open=True)
    ent_coef: float = Field(0.01, "entropy bonus", low=0.0)
    vf_coef: float = Field(0.5, "value-loss weight", low=0.0)
    max_grad_norm: float = Field(0.5, "gradient norm clip", low=0.0, low_open=True)
    hidden: int = Field(128, "units after the torso (small on purpose: each snapshot is ~1 MB in fp16)", low=1)
    snapshots: int = Field(8, "policy snapshots, evenly spaced in agent steps", low=1)
    max_seconds: float = Field(0.0, "stop early (and snapshot) after this wall time; 0: no limit", low=0.0)
    seed: int = Field(1, "seeds the network, the sampling and the games", low=0)
    out_dir: str = Field("", "default snapshots/<game> (--quick: runs/quick/snapshots/<game>)")
    device: str = Field("auto", "auto | cpu | cuda | cuda:N")


QUICK = dict(total_steps=4096, num_envs=8, rollout_steps=64, minibatch_size=128, snapshots=2, hidden=32)


def parse_config(argv=None) -> Config:
    cfg = scaffold.parse_config(Config, argv, description=__doc__, quick=QUICK)
    if not cfg.out_dir:
        cfg.out_dir = str(HERE / ("runs/quick/snapshots" if cfg._args.quick else "snapshots") / cfg.game)
    return cfg


class ActorCritic(nn.Module):
    """Nature-DQN torso (3 convs) -> hidden -> policy logits over the 18 ALE actions, and a value."""

    def __init__(self, hidden: int = 128, num_actions: int = atari.NUM_ACTIONS):
        super().__init__()
        self.torso = nn.Sequential(
            nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(), nn.Linear(3136, hidden), nn.ReLU())
        self.policy = nn.Linear(hidden, num_actions)
        self.value = nn.Linear(hidden, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.orthogonal_(m.weight, np.sqrt(2))
                nn.init.zeros_(m.bias)
        nn.init.orthogonal_(self.policy.weight, 0.01)
        nn.init.orthogonal_(self.value.weight, 1.0)

    def forward(self, obs_uint8):
        h = self.torso(obs_uint8.float() / 255.0)
        return self.policy(h), self.value(h).squeeze(-1)


def save_snapshot(model, path: Path, meta: dict):
    """fp16 weights + the metadata needed to rebuild the policy: about 1 MB with hidden=128."""
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, **meta}, path)


def load_snapshot(path, device="cpu") -> tuple[ActorCritic, dict]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = ActorCritic(blob["hidden"])
    model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    return model.to(device).eval(), {k: v for k, v in blob.items() if k != "state_dict"}


def main(argv=None):
    cfg = parse_config(argv)
    device = pick_device(cfg.device)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model = ActorCritic(cfg.hidden).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=1e-5)
    batch = cfg.num_envs * cfg.rollout_steps
    num_updates = cfg.total_steps // batch
    snap_at = {round(num_updates * (i + 1) / cfg.snapshots) for i in range(cfg.snapshots)}
    log, start_update = [], 0
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():  # resume: weights, optimizer, progress; the env restarts (new episodes)
        blob = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(blob["model"]); opt.load_state_dict(blob["opt"])
        start_update, log = blob["update"], blob["log"]
        print(f"resuming from update {start_update}")
    envs = atari.make_vector_env(cfg.game, cfg.num_envs, cfg.num_threads)
    obs_np, info = envs.reset(seed=cfg.seed + 1000 * start_update)
    lives = info["lives"].copy()
    obs = torch.zeros((cfg.rollout_steps, cfg.num_envs, 4, 84, 84), dtype=torch.uint8, device=device)
    actions = torch.zeros((cfg.rollout_steps, cfg.num_envs), dtype=torch.long, device=device)
    logps, values, rewards, dones = (torch.zeros((cfg.rollout_steps, cfg.num_envs), device=device) for _ in range(4))
    ep_return, ep_len = np.zeros(cfg.num_envs), np.zeros(cfg.num_envs, dtype=np.int64)
    finished = []  # (agent step, return, length) of finished games, unclipped score
    t0, env_seconds = time.time(), 0.0
    bar = tqdm(range(start_update, num_updates), desc=f"PPO {cfg.game}", mininterval=10, disable=None)
    for update in bar:
        frac = 1.0 - update / num_updates
        opt.param_groups[0]["lr"] = frac * cfg.lr
        next_obs = torch.as_tensor(obs_np, device=device)
        for t in range(cfg.rollout_steps):
            obs[t] = next_obs
            with torch.no_grad():
                logits, value = model(next_obs)
            dist = torch.distributions.Categorical(logits=logits)
            action = dist.sample()
            actions[t], logps[t], values[t] = action, dist.log_prob(action), value
            te = time.time()
            obs_np, reward, term, trunc, info = envs.step(action.cpu().numpy())
            env_seconds += time.time() - te
            ep_return += reward
            ep_len += 1
            game_over = term | trunc
            life_lost = info["lives"] < lives
            lives = info["lives"].copy()
            for i in np.flatnonzero(game_over):
                finished.append((update * batch + t * cfg.num_envs, float(ep_return[i]), int(ep_len[i])))
                ep_return[i], ep_len[i] = 0.0, 0
            rewards[t] = torch.as_tensor(np.sign(reward), device=device, dtype=torch.float32)
            dones[t] = torch.as_tensor(game_over | life_lost, device=device, dtype=torch.float32)
            next_obs = torch.as_tensor(obs_np, device=device)
        # GAE: dones[t] marks that step t ended the (life) episode, so step t+1 does not bootstrap it
        with torch.no_grad():
            _, next_value = model(next_obs)
            adv = torch.zeros_like(rewards)
            last = torch.zeros(cfg.num_envs, device=device)
            for t in reversed(range(cfg.rollout_steps)):
                nv = next_value if t == cfg.rollout_steps - 1 else values[t + 1]
                nonterminal = 1.0 - dones[t]
                delta = rewards[t] + cfg.gamma * nv * nonterminal - values[t]
                last = delta + cfg.gamma * cfg.gae_lambda * nonterminal * last
                adv[t] = last
            returns = adv + values
        b_obs, b_act = obs.reshape(-1, 4, 84, 84), actions.reshape(-1)
        b_logp, b_adv, b_ret, b_val = logps.reshape(-1), adv.reshape(-1), returns.reshape(-1), values.reshape(-1)
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(batch, device=device)
            for s in range(0, batch, cfg.minibatch_size):
                mb = perm[s:s + cfg.minibatch_size]
                logits, v = model(b_obs[mb])
                dist = torch.distributions.Categorical(logits=logits)
                ratio = (dist.log_prob(b_act[mb]) - b_logp[mb]).exp()
                a = b_adv[mb]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip, 1 + cfg.clip)).mean()
                v_clipped = b_val[mb] + (v - b_val[mb]).clamp(-cfg.clip, cfg.clip)
                vloss = 0.5 * torch.max((v - b_ret[mb]) ** 2, (v_clipped - b_ret[mb]) ** 2).mean()
                loss = pg - cfg.ent_coef * dist.entropy().mean() + cfg.vf_coef * vloss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                opt.step()
        steps_done = (update + 1) * batch
        recent = [r for _, r, _ in finished[-50:]]
        log.append({"update": update + 1, "agent_steps": steps_done, "seconds": round(time.time() - t0, 1),
                    "env_seconds": round(env_seconds, 1), "episodes": len(finished),
                    "mean_return_last50": float(np.mean(recent)) if recent else None})
        bar.set_postfix(ret=f"{log[-1]['mean_return_last50'] or 0:.0f}")
        out_of_time = cfg.max_seconds > 0 and time.time() - t0 > cfg.max_seconds
        if update + 1 in snap_at or out_of_time or update + 1 == num_updates:
            k = len(list(out.glob("policy_*.pt")))
            save_snapshot(model, out / f"policy_{k:02d}.pt",
                          {"hidden": cfg.hidden, "agent_steps": steps_done, "frames": 4 * steps_done,
                           "mean_return_last50": log[-1]["mean_return_last50"], "game": cfg.game})
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "update": update + 1, "log": log}, ckpt)
            print(f"snapshot {k}: {steps_done} agent steps, recent return {log[-1]['mean_return_last50']}", flush=True)
        if out_of_time:
            print(f"stopping after {time.time() - t0:.0f} s (max_seconds)")
            break
    envs.close()
    wall = time.time() - t0
    steps = log[-1]["agent_steps"] - start_update * batch if log else 0
    write_json(out / "agent.json", {
        "config": {**config_dict(cfg), "quick": cfg._args.quick}, "env": provenance(device, ale_py=atari.ale_version()),
        "wall_seconds": round(wall, 1), "agent_steps_this_run": steps,
        "agent_steps_per_second": round(steps / max(wall, 1e-9), 1), "env_seconds": round(env_seconds, 1),
        "finished_episodes": finished, "log": log})
    print(f"PPO: {steps} agent steps in {wall:.0f} s ({steps / max(wall, 1e-9):.0f} steps/s)")


if __name__ == "__main__":
    main()
