"""gpu_job.sh's shard list: every variant x data set x seed once, SKIP leaving out what ran elsewhere."""
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "gpu_job.sh"


def shards(skip: str = "", seeds: str = "0 1") -> list[tuple[str, str, str]]:
    """(dataset, seed, variant) of every run in the job's shards, from the script's own functions."""
    snippet = (f'source <(sed -n "/^GROUP_A=/,/^ALL=/p;/^keep()/,/^}}/p;/^shards()/,/^}}/p" "{SCRIPT}"); '
               f'SEEDS="{seeds}"; shards')
    out = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True, check=True,
                         env={**os.environ, "SKIP": skip}).stdout
    return [(d, s, v) for line in out.splitlines() for d, s, *vs in [line.split()] for v in vs]


def test_shards_cover_the_grid_once_and_skip_leaves_out_what_it_names():
    from grid import VARIANTS

    full = shards()
    assert sorted(full) == sorted((d, s, v) for d in ("fashion-mnist", "synthetic") for s in "01" for v in VARIANTS)
    skip = "logistic-regression mlp cnn fnet-patches synthetic/attention-patches"
    left = shards(skip)
    gone = {"logistic-regression", "mlp", "cnn", "fnet-patches"}
    assert sorted(left) == sorted(r for r in full if r[2] not in gone and r[:3:2] != ("synthetic", "attention-patches"))
    assert ("fashion-mnist", "0", "attention-patches") in left
