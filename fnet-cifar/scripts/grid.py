"""
The ablation grid: every variant below x every seed x {Fashion-MNIST, synthetic}, trained in this one
process (torch and the data are loaded once), seed-major so that a grid cut short still has every variant
at its first seeds. Finished runs (metrics.json present) are skipped, so re-running resumes.

    python fnet-cifar/scripts/grid.py --epochs-fmnist 6 --epochs-synthetic 10          # fixed lengths
    python fnet-cifar/scripts/grid.py --budget-s 480                                    # lengths fitted to a budget
    python fnet-cifar/scripts/grid.py --quick --device cpu                              # tiny CPU chain (tests)

With an epoch count of 0 (the default) the grid first times each variant on 2 short epochs
(runs/_probe/) and picks the largest epoch count per data set that fits `--budget-s`. The plan, the probe
timings and the grid's wall time go to <out-dir>/grid.json, which aggregate.py reads for provenance.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import train  # sibling script: scripts/train.py

# name -> (what it is, overrides of train.Config). Each Spectracles row changes one thing from "head".
VARIANTS = {
    "head": ("real-ified FFT (Re and Im), sinusoidal positional channels F=8: the seed's HEAD", {}),
    "real-only": ("FNet-style: Re of the FFT only", {"mix": "real"}),
    "pe-none": ("no positional channels", {"pe": "none"}),
    "pe-simple": ("2 simple positional channels (row, column)", {"pe": "simple"}),
    "legacy-layout": ("the seed's pre-fix scrambled re/im layout (all its logged numbers)", {"mix": "legacy"}),
    "fnet-patches": ("FNet encoder on 4x4 patches (Re of 2-D DFT token mixing)", {"model": "fnet", "dim": 64, "ffn": 160}),
    "attention-patches": ("self-attention encoder on 4x4 patches", {"model": "attention", "dim": 48, "ffn": 128}),
}
DATASETS = ("fashion-mnist", "synthetic")
# Tiny settings for --quick: the whole chain in seconds on a CPU.
QUICK = {"synthetic_train": 256, "synthetic_test": 128, "synthetic_size": 16, "width": 8, "depth": 1, "n_linear": 0,
         "pe_freqs": 2, "dim": 16, "ffn": 32, "layers": 1, "heads": 2, "batch_size": 64, "progress": False}


def run_config(base: train.Config, dataset: str, variant: str, seed: int, epochs: int, out_dir: Path,
               quick: bool) -> train.Config:
    over = dict(VARIANTS[variant][1])
    if quick:
        over = {**over, **QUICK, "dim": QUICK["dim"], "ffn": QUICK["ffn"]}
    return dataclasses.replace(base, **over, dataset=dataset, variant=variant, seed=seed, epochs=epochs,
                               out_dir=str(out_dir))


def probe(base: train.Config, dataset: str, variant: str, out_dir: Path, quick: bool, steps: int = 40) -> dict:
    """Seconds per full epoch and per full evaluation, from 2 epochs of `steps` batches (epoch 1 is warm-up)."""
    cfg = run_config(base, dataset, variant, 0, 2, out_dir / "_probe", quick)
    cfg = dataclasses.replace(cfg, limit_train=steps * cfg.batch_size, progress=False)
    m = train.main(cfg)
    n_full = len(train.load_dataset(dataset, cfg.data_dir, n_train=cfg.synthetic_train, n_test=cfg.synthetic_test,
                                    noise=cfg.synthetic_noise, size=cfg.synthetic_size).y_train)
    return {"epoch_s": m["seconds_per_epoch"] * n_full / m["n_train"], "eval_s": m["history"][-1]["eval_seconds"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--epochs-fmnist", type=int, default=None, help="0 or unset = fit to --budget-s (--quick: 1)")
    p.add_argument("--epochs-synthetic", type=int, default=None, help="0 or unset = fit to --budget-s (--quick: 1)")
    p.add_argument("--max-epochs", type=int, default=30, help="cap on a fitted epoch count")
    p.add_argument("--budget-s", type=float, default=480, help="this call's wall-clock budget: no run starts that would overrun it")
    p.add_argument("--plan-budget-s", type=float, default=None,
                   help="budget the epoch counts are fitted to (default --budget-s); larger when the grid is to be "
                        "finished by later calls that resume it")
    p.add_argument("--fmnist-share", type=float, default=0.7, help="share of the budget for Fashion-MNIST when fitting")
    p.add_argument("--compile-check", action=argparse.BooleanOptionalAction, default=True,
                   help="afterwards, if time is left, time one torch.compile'd run of 'head' (in a subprocess)")
    p.add_argument("--compile-reserve-s", type=float, default=60, help="budget kept back for the compile check")
    p.add_argument("--compile", action="store_true", help="torch.compile every run (pays off for long runs)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out-dir", default=str(train.EXP_ROOT / "runs"))
    p.add_argument("--quick", action="store_true", help="tiny synthetic-only grid for a CPU smoke test")
    args = p.parse_args()

    t_start = time.perf_counter()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = train.Config(device=args.device, compile=args.compile, progress=False)  # one line per run, no bars
    datasets = ["synthetic"] if args.quick else args.datasets
    epochs = {"fashion-mnist": args.epochs_fmnist, "synthetic": args.epochs_synthetic}
    epochs = {d: (1 if args.quick else 0) if e is None else e for d, e in epochs.items()}

    # ---- plan: fit epoch counts to the budget from short timed runs ----
    timing = {}  # probed only when an epoch count is to be fitted
    for d in [d for d in datasets if epochs[d] == 0]:
        for v in args.variants:
            timing[f"{d}/{v}"] = probe(base, d, v, out_dir, args.quick)
    left = (args.plan_budget_s or args.budget_s) - (time.perf_counter() - t_start) \
        - (args.compile_reserve_s if args.compile_check else 0)
    shares = {"fashion-mnist": args.fmnist_share, "synthetic": 1 - args.fmnist_share} if len(datasets) == 2 else {datasets[0]: 1.0}
    for d in datasets:
        if epochs[d] == 0:
            per_epoch = sum(timing[f"{d}/{v}"]["epoch_s"] + timing[f"{d}/{v}"]["eval_s"] for v in args.variants)
            epochs[d] = max(1, min(args.max_epochs, math.floor(0.85 * left * shares[d] / (per_epoch * len(args.seeds)))))
    plan = {"epochs": epochs, "seeds": args.seeds, "variants": args.variants, "datasets": datasets,
            "budget_s": args.budget_s, "plan_budget_s": args.plan_budget_s, "probe": timing, "quick": args.quick}
    print(json.dumps(plan, indent=1))

    # ---- the grid, seed-major, never starting a run that would overrun the budget ----
    reserve = args.compile_reserve_s if args.compile_check and not args.quick else 0
    done, skipped, failed = [], [], []
    for seed in args.seeds:
        for d in datasets:
            for v in args.variants:
                cfg = run_config(base, d, v, seed, epochs[d], out_dir, args.quick)
                t = timing.get(f"{d}/{v}", {"epoch_s": 0, "eval_s": 0})
                est = epochs[d] * (t["epoch_s"] + t["eval_s"])
                finished = (train.run_dir(cfg) / "metrics.json").exists()
                if not finished and time.perf_counter() - t_start + est > args.budget_s - reserve:
                    skipped.append(f"{d}/{v}/seed{seed}")
                    continue
                try:
                    train.main(cfg)
                    done.append(f"{d}/{v}/seed{seed}")
                except Exception as e:  # keep the rest of the grid going; the failure is recorded
                    failed.append(f"{d}/{v}/seed{seed}: {type(e).__name__}: {e}")
                    print("FAILED", failed[-1], file=sys.stderr)

    # ---- where torch.compile helps: one compiled run of "head" (2 epochs), if time is left ----
    left = args.budget_s - (time.perf_counter() - t_start)
    if args.compile_check and not args.quick and left > 60:
        d = datasets[0]
        cfg = run_config(base, d, "head", 0, 2, out_dir / "_compile", False)
        argv = [f"--{k.replace('_', '-')}={v}" for k, v in dataclasses.asdict(cfg).items() if not isinstance(v, bool)]
        argv += ["--compile", "--no-progress", "--variant=head-compiled"]  # full epochs: recompiles for the last batch count
        try:
            subprocess.run([sys.executable, str(Path(__file__).with_name("train.py")), *argv], timeout=left - 20,
                           env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except subprocess.TimeoutExpired:
            print("compile check ran out of time", file=sys.stderr)

    wall = time.perf_counter() - t_start
    plan.update(done=done, skipped=skipped, failed=failed, wall_seconds=wall)
    # A resumed grid appends its call: the total wall time is the sum over calls.
    calls = json.loads((out_dir / "grid.json").read_text())["calls"] if (out_dir / "grid.json").exists() else []
    train.write_json(out_dir / "grid.json", {"calls": calls + [plan], "wall_seconds": sum(c["wall_seconds"] for c in calls) + wall})
    print(f"grid: {len(done)} runs done, {len(skipped)} skipped for time, {len(failed)} failed, {wall:.0f} s")


if __name__ == "__main__":
    main()
