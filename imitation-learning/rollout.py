"""Online evaluation: n episodes played at once, one batched DT forward per step for all of them.

Every env starts its episode at the same step, so all windows have the same length and one forward
serves all. An env whose episode has ended keeps stepping (its steps are ignored) until the last
episode ends. The conditioning return starts at the target and drops by each reward, as the DT.
Sampled actions are joystick indices; only the emulator gets ALE ids (atari.to_ale), so the action
history fed back to the model is in the order it was trained on.
"""

import time

import numpy as np
import torch

import atari


@torch.no_grad()
def play(model, game: str, episodes: int, target_return: float, seed: int, device, temperature: float = 1.0,
         max_steps: int = 0, num_threads: int = 2, amp: bool = True, pmf_trace_steps: int = 400) -> dict:
    """Returns episode returns and lengths, every next-action PMF of the active episodes (on CPU, float32)
    and a trace of the first `pmf_trace_steps` PMFs and actions of episode 0 (for the PMF figure)."""
    cfg = model.cfg
    was_training = model.training
    model.eval()
    envs = atari.make_vector_env(game, episodes, num_threads)
    obs, _ = envs.reset(seed=seed)
    n, ctx = episodes, cfg.context
    gen = torch.Generator(device=device).manual_seed(seed)
    states = torch.zeros((n, ctx, 4, 84, 84), dtype=torch.uint8, device=device)
    actions = torch.zeros((n, ctx), dtype=torch.long, device=device)
    rtg = torch.zeros((n, ctx, 1), device=device)
    target = torch.full((n,), float(target_return), device=device)
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    pmfs, trace_pmf, trace_action = [], [], []
    t, t0 = 0, time.time()
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16,
                              enabled=amp and torch.device(device).type == "cuda")
    while active.any() and (max_steps <= 0 or t < max_steps):
        # shift the windows left by one and append the newest state and return-to-go
        states = torch.roll(states, -1, dims=1)
        rtg = torch.roll(rtg, -1, dims=1)
        states[:, -1] = torch.as_tensor(obs, device=device)
        rtg[:, -1, 0] = target
        k = min(t + 1, ctx)
        first = torch.full((n, 1, 1), t - k + 1, dtype=torch.long, device=device)  # window's first timestep
        prev = actions[:, ctx - k + 1:] if k > 1 else None
        with autocast:
            logits = model(states[:, -k:], prev, rtg[:, -k:], first)[:, -1].float()
        probs = torch.softmax(logits / temperature, dim=-1)
        choice = torch.multinomial(probs, 1, generator=gen)[:, 0]
        actions = torch.roll(actions, -1, dims=1)
        actions[:, -1] = choice
        idx = torch.from_numpy(np.flatnonzero(active)).to(device)
        pmfs.append(probs[idx].cpu())
        if active[0] and t < pmf_trace_steps:
            trace_pmf.append(probs[0].cpu().numpy()); trace_action.append(int(choice[0]))
        obs, reward, term, trunc, _ = envs.step(atari.to_ale(choice.cpu().numpy()))
        returns[active] += reward[active]
        lengths[active] += 1
        target -= torch.as_tensor(reward, device=device, dtype=torch.float32)
        active &= ~(term | trunc)
        t += 1
    envs.close()
    model.train(was_training)
    return {"returns": returns.tolist(), "lengths": lengths.tolist(), "cut_short": int(active.sum()),
            "pmfs": torch.cat(pmfs).float(), "trace_pmf": np.array(trace_pmf, dtype=np.float32),
            "trace_action": np.array(trace_action, dtype=np.int64), "seconds": time.time() - t0, "steps": t}
