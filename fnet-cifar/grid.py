"""
The ablation grid: every variant below x every seed x the data sets, trained in this one process
(torch and the data are loaded once), seed-major so that a grid cut short still has every variant at its
first seeds. Finished runs are skipped, so re-running resumes; a run directory holding other settings
stops the grid with the differing fields named (--force overwrites).

    python fnet-cifar/grid.py --epochs-fmnist 30 --epochs-synthetic 30 --out-dir fnet-cifar/runs/converged
    python fnet-cifar/grid.py --quick                # tiny CPU chain under runs/quick/ (seconds)
    python fnet-cifar/grid.py --time-batches 8       # time each variant on 8 batches here, estimate the grid

Exits non-zero when any run failed, so `run.sh` never aggregates a broken grid.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import train
from scaffold import Field, parse_config, write_json

# name -> (what it is, overrides of train.Config). Each Spectracles row changes one thing from "head".
VARIANTS = {
    "head": ("real-ified FFT (Re and Im), sinusoidal positional channels F=8: the seed's HEAD", {}),
    "real-only": ("FNet-style: Re of the FFT only", {"mix": "real"}),
    "pe-none": ("no positional channels", {"pe": "none"}),
    "pe-simple": ("2 simple positional channels (row, column)", {"pe": "simple"}),
    "legacy-layout": ("the seed's pre-fix scrambled re/im layout (all its logged numbers)", {"mix": "legacy"}),
    "seed-run3": ("the seed's best logged run (its run 3): width 64, one conv per block, simple PE, no "
                  "standardization, scrambled layout, batch 256",
                  {"width": 64, "single_conv": True, "pe": "simple", "norm_dims": "none", "mix": "legacy",
                   "batch_size": 256}),
    "fnet-patches": ("FNet encoder on 4x4 patches (Re of 2-D DFT token mixing)",
                     {"model": "fnet", "dim": 64, "ffn": 160}),
    "attention-patches": ("self-attention encoder on 4x4 patches", {"model": "attention", "dim": 48, "ffn": 128}),
    "logistic-regression": ("anchor: logistic regression on the pixels", {"model": "logistic-regression"}),
    "mlp": ("anchor: one hidden layer of 112 ReLU units", {"model": "mlp"}),
    "cnn": ("anchor: small CNN, three 3x3 conv + max-pool stages", {"model": "cnn"}),
}
DATASETS = ("fashion-mnist", "synthetic")
# Tiny model settings for --quick (they override the variants' own sizes).
QUICK_MODEL = {k: v for k, v in train.QUICK.items() if k not in ("dataset", "epochs", "out_dir")}


@dataclass
class GridConfig:
    seeds: tuple = Field((0, 1, 2), "seeds", low=0)
    datasets: tuple = Field(DATASETS, "data sets", choices=DATASETS)
    variants: tuple = Field(tuple(VARIANTS), "variants", choices=tuple(VARIANTS))
    epochs_fmnist: int = Field(30, "epochs on Fashion-MNIST", low=1)
    epochs_synthetic: int = Field(30, "epochs on the synthetic set", low=1)
    device: str = Field("auto", "auto | cpu | cuda | cuda:N")
    compile: bool = Field(False, "torch.compile every run (halves the epoch time after a minute of compiling)")
    out_dir: str = Field(str(train.HERE / "runs" / "converged"), "root of the run directories (--quick: runs/quick)")
    data_dir: str = Field(str(train.HERE / "data"), "folder holding fashion-mnist/")
    time_batches: int = Field(0, "only time each variant on this many batches here and estimate the grid", low=0)


QUICK = dict(datasets=("synthetic",), variants=("head", "real-only", "seed-run3", "fnet-patches", "mlp"), seeds=(0,),
             epochs_fmnist=1, epochs_synthetic=1, device="cpu", out_dir=str(train.HERE / "runs" / "quick"))


def run_config(g: GridConfig, dataset: str, variant: str, seed: int, quick: bool) -> train.Config:
    over = dict(VARIANTS[variant][1])
    if quick:
        over = {**over, **QUICK_MODEL}
    epochs = g.epochs_fmnist if dataset == "fashion-mnist" else g.epochs_synthetic
    return train.Config(**{**over, "dataset": dataset, "variant": variant, "seed": seed, "epochs": epochs,
                           "device": g.device, "compile": g.compile, "out_dir": g.out_dir, "data_dir": g.data_dir,
                           "progress": False})


def time_variants(g: GridConfig, quick: bool) -> dict:
    """Seconds per epoch of each (dataset, variant) on this machine, from `time_batches` batches after one
    warm-up batch, and the grid's total at these epoch counts (training only, no evaluation)."""
    import torch

    rows = {}
    for dataset in g.datasets:
        for variant in g.variants:
            cfg = run_config(g, dataset, variant, 0, quick)
            device = train.pick_device(cfg.device)
            data, in_ch, (x, y, _, _) = train.load(cfg, device)
            model = train.build_model(cfg, in_ch, len(data.classes), data.shape[1:]).to(device)
            opt = torch.optim.Adam(model.parameters(), 1e-3)
            times = []
            for step in range(g.time_batches + 1):
                t0 = time.perf_counter()
                idx = torch.randint(0, len(y), (cfg.batch_size,), device=device)
                loss = torch.nn.functional.cross_entropy(model(train.prepare(x[idx], in_ch)), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            per_epoch = sum(times[1:]) / g.time_batches * -(-len(y) // cfg.batch_size)
            rows[f"{dataset}/{variant}"] = {"seconds_per_epoch": per_epoch, "epochs": cfg.epochs,
                                            "params": train.count_parameters(model)}
            print(f"{dataset}/{variant}: {per_epoch:.1f} s/epoch here ({rows[f'{dataset}/{variant}']['params']:,} "
                  f"params)", flush=True)
    total = sum(r["seconds_per_epoch"] * r["epochs"] for r in rows.values()) * len(g.seeds)
    print(f"grid estimate on this machine: {total / 3600:.1f} h for {len(g.seeds)} seeds (training only)")
    return {"per_variant": rows, "total_seconds": total}


def main(argv=None) -> None:
    g = parse_config(GridConfig, argv, description=__doc__, quick=QUICK,
                     extra=lambda p: p.add_argument("--force", action="store_true",
                                                    help="overwrite run directories holding other settings"))
    quick, force = g._args.quick, g._args.force
    configs = [run_config(g, d, v, s, quick) for s in g.seeds for d in g.datasets for v in g.variants]
    for cfg in configs:  # every combination checked before the first run starts
        try:
            train.check(cfg)
        except ValueError as e:
            sys.exit(f"error: {cfg.variant}: {e}")
    if g.time_batches:
        time_variants(g, quick)
        return

    t_start = time.perf_counter()
    done, failed = [], []
    for cfg in configs:
        name = f"{cfg.dataset}/{cfg.variant}/seed{cfg.seed}"
        try:
            train.train(cfg, force=force, quick=quick)
            done.append(name)
        except SystemExit as e:  # another run's settings in the directory: stop, naming the fields
            sys.exit(e.code)
        except Exception as e:  # noqa: BLE001 - keep the rest of the grid going; the failure is recorded
            failed.append(f"{name}: {type(e).__name__}: {e}")
            print("FAILED", failed[-1], file=sys.stderr, flush=True)
    wall = time.perf_counter() - t_start
    call = {**train.config_dict(g), "quick": quick, "done": done, "failed": failed, "wall_seconds": wall,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    # one record per call (a later call on other variants of the same data and seeds must not replace it)
    shard = f"{'-'.join(g.datasets)}_seeds{'-'.join(map(str, g.seeds))}_{time.strftime('%Y%m%dT%H%M%S')}"
    write_json(Path(g.out_dir) / "grid_calls" / f"{shard}.json", call)
    print(f"grid: {len(done)} runs done, {len(failed)} failed, {wall:.0f} s")
    if failed:
        sys.exit(f"error: {len(failed)} of {len(configs)} runs failed (first: {failed[0]})")


if __name__ == "__main__":
    main()
