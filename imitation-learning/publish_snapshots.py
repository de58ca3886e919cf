"""Copy the PQN snapshots that the dqn-replay-like data needs from the agent's run to the committed folder.

    python publish_snapshots.py                                  # runs/pqn/Seaquest -> snapshots/pqn/Seaquest, 50
    python publish_snapshots.py --count 50 --min-agent-steps 250000

The agent's run folder (pqn.py, runs/pqn/<game>) holds a snapshot every 125k agent steps (80 in 10M steps,
0.56 MB each) and the checkpoint; only `count` snapshots, evenly spread from the first to the last (as
make_dataset.spread), and curve.json are copied: 50 of them (28 MB) fit, with the rest of the repository,
in the 64 MiB that travel to a GPU session, where make_dataset.py --dataset dqn-replay-like replays them.
Snapshots already in the target folder that are not chosen are removed (the folder holds one selection).
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

import atari
from make_dataset import spread
from scaffold import Field, parse_config

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    game: str = Field("Seaquest", "game", choices=tuple(atari.GAMES))
    source: str = Field("", "default runs/pqn/<game> (pqn.py's out dir)")
    target: str = Field("", "default snapshots/pqn/<game> (make_dataset.py's for dqn-replay-like)")
    count: int = Field(50, "snapshots kept, evenly spread over those at or after min_agent_steps", low=1)
    min_agent_steps: int = Field(0, "leave out snapshots saved before this many agent steps", low=0)


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__)
    source = Path(cfg.source or HERE / "runs/pqn" / cfg.game)
    target = Path(cfg.target or HERE / "snapshots/pqn" / cfg.game)
    if not (source / "curve.json").exists():
        raise SystemExit(f"error: no curve.json in {source}: the snapshots come with their learning curve")
    found = [f for f in sorted(source.glob("policy_*.pt"))
             if torch.load(f, map_location="cpu", weights_only=True)["agent_steps"] >= cfg.min_agent_steps]
    if not found:
        raise SystemExit(f"error: no snapshot with >= {cfg.min_agent_steps} agent steps in {source}")
    chosen = [found[i] for i in spread(len(found), cfg.count)]
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("policy_*.pt"):
        if old.name not in {f.name for f in chosen}:
            old.unlink()
    for f in chosen + [source / "curve.json"]:
        shutil.copy2(f, target / f.name)
    size = sum(f.stat().st_size for f in target.iterdir()) / 2**20
    print(f"{len(chosen)} of {len(found)} snapshots ({chosen[0].name} .. {chosen[-1].name}) and curve.json "
          f"in {target}: {size:.1f} MiB")
    games = [g for g in atari.GAMES if any((target.parent / g).glob("policy_*.pt"))]
    if len(games) > 1:  # README, "Four games", step 2
        total = sum(f.stat().st_size for g in games for f in (target.parent / g).glob("policy_*.pt")) / 2**20
        print(f"warning: {target.parent} holds the snapshots of {len(games)} games ({', '.join(games)}; {total:.0f} MiB): "
              f"what travels to a GPU machine is 64 MiB with the repository, so keep one game's snapshots in the tree "
              f"(git rm the others' once their results are committed)")


if __name__ == "__main__":
    main()
