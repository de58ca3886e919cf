"""Atari environment, action order and score tables shared by the agent, the dataset and the DT.

Preprocessing (DQN / Decision Transformer): 84x84 grayscale, frame skip 4 with a max-pool over the
last two frames, a stack of 4, up to 30 no-op starts, no sticky actions (by default), episodes capped at 108k
frames, the full 18-action set. `ale_py.vector_env.AtariVectorEnv` does all of it in C++ threads.
Rewards are left unclipped (the dataset and the evaluation need the real score).
"""

import numpy as np

# game -> ROM name, DT target return (reference repo), DeepMind random and human scores (Atari-57)
GAMES = {
    "Seaquest": dict(rom="seaquest", target_return=1150, random=68.4, human=42054.7),
    "BankHeist": dict(rom="bank_heist", target_return=700, random=14.2, human=753.1),
    "DoubleDunk": dict(rom="double_dunk", target_return=-10, random=-18.6, human=-16.4),
    "Gravitar": dict(rom="gravitar", target_return=250, random=173.0, human=3351.4),
}

ALE_ACTIONS = ("NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT",
               "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE",
               "DOWNLEFTFIRE")
# The paper's joystick order: neighbouring bins are neighbouring stick directions, so a smooth PMF
# over bins means something. Position k holds ALE action JOYSTICK_ORDER[k].
JOYSTICK_ORDER = np.array([0, 4, 7, 2, 6, 3, 8, 5, 9, 12, 15, 10, 14, 11, 16, 13, 17, 1], dtype=np.int64)
JOYSTICK_NAMES = tuple(ALE_ACTIONS[a] for a in JOYSTICK_ORDER)
ALE_TO_JOYSTICK = np.argsort(JOYSTICK_ORDER)  # ALE id -> position in the joystick order
NUM_ACTIONS = 18


def ale_version():
    """ale-py's version for the provenance files, None without it."""
    try:
        import ale_py
    except ImportError:
        return None
    return ale_py.__version__


def to_joystick(ale_actions):
    """ALE action ids -> joystick-order indices (what the DT sees as inputs and targets)."""
    return ALE_TO_JOYSTICK[np.asarray(ale_actions)]


def to_ale(joystick_actions):
    """Joystick-order indices (what the DT samples) -> ALE action ids (what the emulator takes)."""
    return JOYSTICK_ORDER[np.asarray(joystick_actions)]


def game_info(game: str) -> dict:
    if game not in GAMES:
        raise ValueError(f"unknown game {game!r}; choose from {', '.join(GAMES)}")
    return GAMES[game]


def normalized_return(game: str, score):
    """100 * (score - random) / (human - random), as the DT paper and the reference graphs."""
    g = game_info(game)
    return 100.0 * (np.asarray(score, dtype=np.float64) - g["random"]) / (g["human"] - g["random"])


def make_vector_env(game: str, num_envs: int, num_threads: int = 0, repeat_action_probability: float = 0.0,
                    max_episode_steps: int = 27_000):
    """num_envs independent games in C++ threads; obs (num_envs, 4, 84, 84) uint8, unclipped rewards.

    SameStep autoreset: the step that ends an episode already returns the next episode's first obs.
    repeat_action_probability > 0: sticky actions (DQN-replay: 0.25), the emulator repeats the previous
    action instead of the new one with that probability; the DT's evaluation has none (the default).
    max_episode_steps: agent steps (4 frames each) after which an episode is truncated (108k frames).
    """
    from ale_py.vector_env import AtariVectorEnv  # imported here so that tests of the rest need no ALE

    return AtariVectorEnv(game_info(game)["rom"], num_envs, num_threads=num_threads, full_action_space=True,
                          repeat_action_probability=repeat_action_probability,
                          max_num_frames_per_episode=4 * max_episode_steps, img_height=84, img_width=84,
                          grayscale=True, stack_num=4, frameskip=4, maxpool=True, noop_max=30, episodic_life=False,
                          reward_clipping=False, use_fire_reset=False, autoreset_mode="SameStep")
