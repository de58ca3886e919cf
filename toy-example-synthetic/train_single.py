"""Train ONE toy model, the plain way: the file to copy when you fork the toy example.

    python train_single.py --dataset gmm2 --head fourier --num-frequencies 12      # ~1 min on a CPU
    python train_single.py --dataset beta --head linear --epochs 50

An MLP (x, y) -> 64 -> 32 -> head predicts the distribution of z over 50 bins (paper v1 §4). Same model,
data, seed semantics and metrics as the stacked sweep of train.py (a test checks the two agree to 1e-9
in float64), without the stacking: config -> data -> model -> loop -> metrics. Writes
runs/single/<dataset>/<head config>/seed<k>/{config,metrics}.json.
"""

from dataclasses import dataclass
from pathlib import Path

import torch

import data as toy_data
from fourier_head import smoothness
from models import ModelSpec, build_single, single_loss
from scaffold import Field, Tracker, config_dict, parse_config, pick_device, prepare_run, provenance, write_json
from train import classification_metrics

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    dataset: str = Field("gmm2", "dataset", choices=toy_data.DATASETS)
    head: str = Field("fourier", "output head", choices=("linear", "gmm", "fourier"))
    num_frequencies: int = Field(12, "Fourier head: N", low=1)
    gamma: float = Field(0.0, "Fourier head: regulariser weight", low=0.0)
    seed: int = Field(1, "data draw, initialisation and batch order", low=0)
    epochs: int = Field(500, "passes over the training triples", low=1)
    batch_size: int = Field(32, "batch size", low=1)
    lr: float = Field(1e-3, "Adam learning rate", low=0.0, low_open=True)
    num_bins: int = Field(50, "bins of z", low=2)
    n_samples: int = Field(5000, "triples drawn: 4/5 train, 1/5 test", low=10)
    dtype: str = Field("float32", "float32, or float64 for exact comparisons", choices=("float32", "float64"))
    device: str = Field("cpu", "cpu | cuda | auto (tiny model: the CPU is fine)")
    out_dir: str = Field(str(HERE / "runs" / "single"), "where the run directory goes")
    wandb: bool = Field(False, "also log to wandb (offline unless WANDB_MODE says otherwise)")


def train(cfg: Config, draw: toy_data.ToyData, device, tracker: Tracker = None) -> torch.Tensor:
    """Train one model on `draw`; return its test PMFs (n_test, num_bins)."""
    dtype = getattr(torch, cfg.dtype)
    fourier, gmm = cfg.head == "fourier", cfg.head == "gmm"
    spec = ModelSpec(cfg.dataset, cfg.seed, cfg.head, cfg.num_frequencies if fourier else 0, cfg.gamma if fourier else 0.0,
                     (1 if cfg.dataset == "gaussian" else 2) if gmm else 0)  # K as in the sweep
    model = build_single(spec, cfg.num_bins).to(device, dtype)  # seeds torch with the seed, then builds
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)             # the batch order
    x = torch.tensor(draw.x_train_bins, dtype=dtype, device=device)
    label = torch.tensor(draw.y_train, device=device)
    centers = torch.tensor(toy_data.bin_centers(cfg.num_bins), dtype=dtype, device=device)
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen).to(device)
        total = torch.zeros((), dtype=dtype, device=device)
        for start in range(0, len(x), cfg.batch_size):
            i = perm[start:start + cfg.batch_size]
            loss = single_loss(spec, model, x[i], label[i], None, centers)  # + the Fourier regulariser
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach() * len(i)
        if tracker is not None:
            tracker.log({"epoch": epoch + 1, "train_loss": total.item() / len(x)})
    with torch.no_grad():
        return torch.softmax(model(torch.tensor(draw.x_test_bins, dtype=dtype, device=device)), dim=-1)


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__, extra=lambda p: p.add_argument(
        "--force", action="store_true", help="overwrite a finished run with other settings"))
    device = pick_device(cfg.device)
    tag = cfg.head + (f"-f{cfg.num_frequencies}-g{cfg.gamma:g}" if cfg.head == "fourier" else "")
    run_dir = Path(cfg.out_dir) / cfg.dataset / tag / f"seed{cfg.seed}"
    if cfg.wandb:  # wandb keeps its files beside the runs
        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    tracker = Tracker(cfg.wandb, "fourier-head-toy", config_dict(cfg), name=str(run_dir.relative_to(cfg.out_dir)),
                      directory=cfg.out_dir)
    if prepare_run(run_dir, config_dict(cfg), force=cfg._args.force, ignore=("device", "out_dir", "wandb")) == "done":
        tracker.finish()
        return print(f"{run_dir} is finished with these settings: nothing to do")
    draw = toy_data.make_data(cfg.dataset, cfg.seed, n_samples=cfg.n_samples, num_bins=cfg.num_bins)
    pmfs = train(cfg, draw, device, tracker)
    true = torch.tensor(draw.true_test_pmfs, dtype=pmfs.dtype, device=pmfs.device)
    labels = torch.tensor(draw.y_test, device=pmfs.device)
    centers = torch.tensor(toy_data.bin_centers(cfg.num_bins), dtype=pmfs.dtype, device=pmfs.device)
    metrics = {k: float(v) for k, v in classification_metrics(pmfs, labels, true, centers).items()}
    metrics["smoothness_std"] = float(smoothness(pmfs).std())
    write_json(run_dir / "metrics.json", {"final": metrics, "provenance": provenance(device)})  # marks it done
    tracker.log(metrics)
    tracker.finish()
    print(" ".join(f"{k} {v:.4f}" for k, v in metrics.items()), f"-> {run_dir}")


if __name__ == "__main__":
    main()
