"""Atari environment, action order and score tables shared by the agent, the dataset and the DT.

Preprocessing (DQN / Decision Transformer): 84x84 grayscale, frame skip 4 with a max-pool over the
last two frames, a stack of 4, up to 30 no-op starts, no sticky actions (by default), episodes capped at 108k
frames, the full 18-action set. `ale_py.vector_env.AtariVectorEnv` does all of it in C++ threads.
Rewards are left unclipped (the dataset and the evaluation need the real score).
"""

import numpy as np

# The four games of the camera-ready's Atari table, with the settings of the authors' multi-game scripts, read
# on branch `chronos-dataset-size-ablation` (last commit 1e5417f) of the reference repository, imitation-learning/:
# - target_return: mingpt/trainer_atari.py lines 221-250 (`returns_map`, the return the DT is conditioned on);
# - random, human: scripts/eval/atari_expert_scores.py lines 42-102 (DeepMind's Atari-57 random and human scores;
#   lines 49, 61, 67, 85), used by scripts/eval/atari_graph_varying_freqs.py line 34 as 100 * (R - random) /
#   (human - random), of the best of the 5 epochs' 10-episode evaluations (lines 25-39);
# - authors_frequencies: atari_graph_varying_freqs.py lines 15-17 (range(2, 34, 2) for exactly these four games;
#   README.md lines 116-119 trains them);
# - the linear baseline: Seaquest's is the DT paper's 2.53 (atari_graph_varying_freqs.py lines 49-54, 190-191),
#   the other games' the authors' own linear runs (lines 57-61).
# Settings shared by all four (AUTHORS below): scripts/train/exps_linear.sh and exps_fourier.sh lines 3-25.
AUTHORS_FREQUENCIES = tuple(range(2, 34, 2))  # the authors' sweep, 2, 4, ..., 32
SWEEP = (2, 8, 14, 20, 26, 32)  # ours (issue 20), coarse: every third of theirs
GAMES = {
    "Seaquest": dict(rom="seaquest", target_return=1150, random=68.4, human=42054.7,
                     authors_frequencies=AUTHORS_FREQUENCIES),
    "BankHeist": dict(rom="bank_heist", target_return=700, random=14.2, human=753.1,
                      authors_frequencies=AUTHORS_FREQUENCIES),
    "DoubleDunk": dict(rom="double_dunk", target_return=-10, random=-18.6, human=-16.4,
                       authors_frequencies=AUTHORS_FREQUENCIES),
    "Gravitar": dict(rom="gravitar", target_return=250, random=173.0, human=3351.4,
                     authors_frequencies=AUTHORS_FREQUENCIES),
}
AUTHORS = dict(  # the same for all four: exps_linear.sh / exps_fourier.sh lines 3-25, run_dt_atari.py lines 25-41
    seeds=(123, 231, 312, 42), context_length=30, epochs=5, batch_size=128, num_steps=500_000, num_buffers=50,
    trajectories_per_buffer=10, model_type="reward_conditioned",
    eval_episodes_per_epoch=10,  # trainer_atari.py line 275, no sticky actions (line 340)
    test_split="Seaquest only (DQN-replay run 2, run_dt_atari.py lines 92-96); the others train on run 1 alone",
    notes="README.md lines 47 and 51: Gravitar 'doesn't work on seed 321 (shape error)'; exps_*_Gravitar.sh "
          "run seed 231 alone into output/Gravitar-v3/")

# What the authors' plots show, read by eye (the plots print no numbers), at our sweep's N: branch
# chronos-dataset-size-ablation, imitation-learning/scripts/eval/atari_graph_varying_freqs_<game>.png, drawn by
# atari_graph_varying_freqs.py: normalized return x100 of each seed's best epoch (10 episodes each), mean over the
# seeds; smoothness of the rollout PMFs. Approximate (about +-10% of each axis' range); NOT paper numbers: the
# camera-ready's multi-game table could not be read. Seaquest's numbers are the paper's (v1 Table 2, aggregate.PAPER);
# its branch plot uses the DT paper's linear 2.53 and peaks at ~3.47 (N = 24).
AUTHORS_PLOTS = {
    "BankHeist": dict(linear=-0.1, linear_smoothness=0.70, peak=(30, 0.9),
                      fourier={2: 0.4, 8: 0.25, 14: 0.2, 20: 0.1, 26: 0.15, 32: 0.0},
                      fourier_smoothness={2: 0.07, 8: 0.23, 14: 0.40, 20: 0.52, 26: 0.68, 32: 0.51}),
    "DoubleDunk": dict(linear=-73.0, linear_smoothness=0.54, peak=(6, 46.0),
                       fourier={2: 34.0, 8: -18.0, 14: -32.0, 20: 20.0, 26: -25.0, 32: 20.0},
                       fourier_smoothness={2: 0.07, 8: 0.25, 14: 0.35, 20: 0.40, 26: 0.48, 32: 0.37}),
    "Gravitar": dict(linear=1.35, linear_smoothness=0.64, peak=(32, 6.6),
                     fourier={2: 4.6, 8: 2.65, 14: 3.5, 20: 3.45, 26: 5.7, 32: 6.6},
                     fourier_smoothness={2: 0.03, 8: 0.12, 14: 0.26, 20: 0.32, 26: 0.35, 32: 0.24}),
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
