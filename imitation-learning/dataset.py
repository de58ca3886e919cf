"""The offline dataset as the Decision Transformer sees it: windows of `context` consecutive steps.

Loads a split written by make_dataset.py, converts actions to the joystick order, computes
returns-to-go (undiscounted sum of the rest of the episode's rewards, as the DT) and within-episode
timesteps, and gathers batches on the training device (frames live there as uint8, once).

Sampling follows the DT reference: an epoch visits every transition i once, in random order, and
i stands for the window that starts at i, moved back so that it ends at its episode's end when it
would cross it. Episodes shorter than `context` are left out (the reference would let their windows
run into the previous episode).
"""

from pathlib import Path

import numpy as np
import torch

import atari


def returns_to_go(rewards: np.ndarray, episode_starts: np.ndarray) -> np.ndarray:
    """rtg[i] = sum of rewards from step i to the end of i's episode (float64 cumulative sums)."""
    rtg = np.empty(len(rewards), dtype=np.float64)
    for s, e in zip(episode_starts[:-1], episode_starts[1:]):
        rtg[s:e] = np.cumsum(rewards[s:e][::-1], dtype=np.float64)[::-1]
    return rtg


def episode_positions(episode_starts: np.ndarray):
    """(episode id, timestep within the episode, end of the episode) of every transition."""
    lengths = np.diff(episode_starts)
    episode = np.repeat(np.arange(len(lengths)), lengths)
    timestep = np.arange(episode_starts[-1]) - episode_starts[episode]
    return episode, timestep, episode_starts[1:][episode]


def window_starts(episode_starts: np.ndarray, context: int) -> np.ndarray:
    """The window that transition i stands for: start min(i, end - context); short episodes dropped."""
    episode, _, end = episode_positions(episode_starts)
    i = np.arange(episode_starts[-1])
    keep = np.diff(episode_starts)[episode] >= context
    return np.minimum(i, end - context)[keep]


def stack_index(episode_starts: np.ndarray, num_frames: int = 4) -> np.ndarray:
    """(N, 4) frame ids of each state: steps t-3..t of its episode; before the start, N (a zero frame)."""
    episode, timestep, _ = episode_positions(episode_starts)
    n = episode_starts[-1]
    back = np.arange(num_frames - 1, -1, -1)  # oldest first, as the env's stack
    idx = np.arange(n)[:, None] - back[None, :]
    return np.where(timestep[:, None] >= back[None, :], idx, n).astype(np.int64)


def load_split(path) -> dict:
    path = Path(path)
    if not (path / "frames.npy").exists():
        raise FileNotFoundError(f"no dataset at {path}: run make_dataset.py first")
    return {name: np.load(path / f"{name}.npy", mmap_mode="r" if name == "frames" else None)
            for name in ("frames", "actions", "rewards", "episode_starts", "episode_policy")}


class WindowDataset:
    """All of a split on `device`; `batch(ids)` returns DT inputs for windows ids (indices into .starts)."""

    def __init__(self, path, context: int, device="cpu"):
        raw = load_split(path)
        starts = raw["episode_starts"]
        n = int(starts[-1])
        self.context = context
        self.num_transitions = n
        self.episode_returns = np.add.reduceat(raw["rewards"].astype(np.float64), starts[:-1]) if n else np.zeros(0)
        self.frames = torch.zeros((n + 1, 84, 84), dtype=torch.uint8, device=device)  # row n stays zero
        for a in range(0, n, 65536):  # chunks: the memory-mapped file is read once, never held twice
            b = min(n, a + 65536)
            self.frames[a:b] = torch.from_numpy(np.array(raw["frames"][a:b]))
        self.stack = torch.from_numpy(stack_index(starts)).to(device)
        self.actions = torch.from_numpy(atari.to_joystick(raw["actions"].astype(np.int64))).to(device)
        self.rtg = torch.from_numpy(returns_to_go(raw["rewards"], starts)).float().to(device)
        _, timestep, _ = episode_positions(starts)
        self.timesteps = torch.from_numpy(timestep).to(device)
        self.max_timestep = int(timestep.max()) if n else 0
        self.starts = torch.from_numpy(window_starts(starts, context)).to(device)

    def __len__(self):
        return len(self.starts)

    def batch(self, ids: torch.Tensor):
        """states (B,T,4,84,84) uint8, actions (B,T) joystick ids, rtg (B,T,1), timesteps (B,1,1)."""
        first = self.starts[ids]
        steps = first[:, None] + torch.arange(self.context, device=first.device)
        states = self.frames[self.stack[steps]]
        return states, self.actions[steps], self.rtg[steps][..., None], self.timesteps[first][:, None, None]
