"""Train the toy example's whole sweep (or any part of it) at once: paper v1 §4 / Table 1 / Figs 3, 8.

    python train.py                                  # the paper's full sweep (GPU: about two minutes)
    python train.py --quick                          # reduced sweep for a CPU (< 1 minute), under runs/quick/
    python train.py --datasets gmm2 --heads linear fourier --frequencies 12 --seeds 1 2

Every model is an MLP 2 -> 64 -> 32 with one head (see models.py). All selected models are stacked
and trained in one loop: per model the semantics are exactly those of training it alone (its own
torch seed for the initialisation and the shuffling, Adam 1e-3, batch 32, 500 epochs; the MLE heads
with cosine annealing to 1e-6 and gradient clipping at 0.1 per model).

Each model writes runs/paper/<dataset>/<config>/seed<k>/{config,env,metrics}.json and pmfs.npy (its 1000
test PMFs, float16); GMM heads also gmm_components.json (per component: std, share of test points whose
mean sits at the edge). A model whose run directory holds a finished run with the same settings is
skipped, so an interrupted sweep resumes; one holding a run with other settings (e.g. another --epochs)
stops the program before any training, naming the differing fields: use another --out-dir, or --force to
retrain the selected models in place. Then run aggregate.py (-> results/) and plot.py (-> figures/).
"""

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

import data as toy_data
from fourier_head import smoothness
from models import CLASSIFICATION_HEADS, HEADS, MLE_HEADS, Ensemble, ModelSpec
from scaffold import Field, Tracker, config_dict, parse_config, pick_device, prepare_runs, provenance, write_json

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    # the sweep: which models
    datasets: tuple = Field(("gaussian", "gmm2", "beta", "gmm"), "datasets (gmm is v1's GMM dataset)",
                            choices=toy_data.DATASETS)
    heads: tuple = Field(HEADS, "heads", choices=HEADS)
    seeds: tuple = Field((1, 2, 3, 42), "seeds: each sets the data draw, the initialisation and the batch order",
                         low=0)
    frequencies: tuple = Field(tuple(range(2, 21, 2)), "Fourier heads' N", low=1)
    gammas: tuple = Field((0.0, 1e-6), "Fourier regulariser weights (added to the loss)", low=0.0)
    # training
    epochs: int = Field(500, "passes over the training triples", low=1)
    batch_size: int = Field(32, "batch size", low=1)
    lr: float = Field(1e-3, "Adam learning rate", low=0.0, low_open=True)
    mle_lr_min: float = Field(1e-6, "cosine annealing floor (MLE heads)", low=0.0)
    mle_clip: float = Field(0.1, "gradient-norm clip per model (MLE heads)", low=0.0, low_open=True)
    # data
    n_samples: int = Field(5000, "triples drawn per (dataset, seed): 4/5 train, 1/5 test", low=10)
    var: float = Field(0.01, "noise variance of the datasets", low=0.0, low_open=True)
    num_bins: int = Field(50, "bins of z", low=2)
    mle_grid_bins: int = Field(1000, "grid of the MLE heads' KL", low=2)
    split_seed: int = Field(42, "seed of the train/test split", low=0)
    mixture_truth: str = Field("joint", "ground truth of the mixture datasets (gmm, gmm2): joint = the mixture's "
                               "density at the bin centres, renormalised (the committed results); per-component = "
                               "each Gaussian renormalised over the bins, then averaged (the authors'); use a "
                               "separate --out-dir", choices=toy_data.MIXTURE_TRUTHS)
    # evaluation, outputs, machine
    eval_every: int = Field(10, "epochs between test evaluations", low=1)
    snapshot_test_indices: tuple = Field((488, 331, 180), "test points whose PMFs are saved at every eval", low=0)
    out_dir: str = Field(str(HERE / "runs" / "paper"), "where run directories go (--quick: runs/quick)")
    device: str = Field("auto", "auto | cpu | cuda | cuda:N")
    cpu_threads: int = Field(1, "CPU threads (tiny batched matmuls: one thread is fastest)", low=1)
    cuda_graph: bool = Field(True, "replay each training step as a CUDA graph (GPU only)")
    dtype: str = Field("float32", "float64 for exact comparisons (tests)", choices=("float32", "float64"))
    wandb: bool = Field(False, "also log to wandb (offline unless WANDB_MODE says otherwise)")


# CPU preset: 3 datasets, 1 seed, N in {4, 12}, 20 epochs; flags given beside --quick win.
QUICK = dict(datasets=("gaussian", "gmm2", "beta"), seeds=(1,), frequencies=(4, 12), epochs=20,
             n_samples=1000, eval_every=5, out_dir=str(HERE / "runs" / "quick"))
SWEEP_FIELDS = ("datasets", "heads", "seeds", "frequencies", "gammas")  # in the run's spec instead
# Settings that do not change a run's numbers: a run made with other values of these is the same run.
SYSTEM_FIELDS = ("out_dir", "device", "cpu_threads", "cuda_graph", "wandb", "quick")


def force_flag(parser):
    parser.add_argument("--force", action="store_true",
                        help="retrain the selected models even where their run directory holds a run "
                             "(with the same or other settings), overwriting it")


def model_grid(cfg: Config):
    """Every (dataset, seed, head config) of the sweep."""
    specs = []
    for dataset in cfg.datasets:
        k = 1 if dataset == "gaussian" else 2
        for seed in cfg.seeds:
            for head in cfg.heads:
                if head in ("fourier", "fourier-mle"):
                    specs += [ModelSpec(dataset, seed, head, n, g) for g in cfg.gammas for n in cfg.frequencies]
                elif head in ("gmm", "gmm-mle"):
                    specs.append(ModelSpec(dataset, seed, head, num_gaussians=k))
                else:
                    specs.append(ModelSpec(dataset, seed, head))
    return specs


# ---- metrics ------------------------------------------------------------------------------------------

def kl_divergence(true, pred, eps=1e-10):
    """mean over rows of KL(true || pred), with log(pred + eps) as the reference's KLDivLoss(batchmean)."""
    terms = torch.where(true > 0, true * (torch.log(true.clamp_min(1e-300)) - torch.log(pred + eps)),
                        torch.zeros_like(true))
    return terms.sum(-1).mean(-1)


def classification_metrics(pred, labels, true, centers):
    """pred, true (..., n, m) PMFs; labels (..., n) -> dict of (...) tensors."""
    idx = torch.arange(pred.shape[-1], device=pred.device, dtype=pred.dtype)
    expected_bin = torch.round((pred * idx).sum(-1)).long().clamp(0, pred.shape[-1] - 1)
    target = centers[labels]
    return {
        "kl": kl_divergence(true, pred),
        "mse": (centers[expected_bin] - target).square().mean(-1),
        "mse_argmax": (centers[pred.argmax(-1)] - target).square().mean(-1),
        "accuracy": (pred.argmax(-1) == labels).float().mean(-1),
        "smoothness": smoothness(pred).mean(-1),
    }


# ---- training -----------------------------------------------------------------------------------------

def load_groups(cfg, specs, device, mle: bool):
    """Stacked data for the (dataset, seed) groups the specs use."""
    groups = sorted({(s.dataset, s.seed) for s in specs})
    draws = [toy_data.make_data(d, s, cfg.n_samples, cfg.var, cfg.num_bins, cfg.split_seed, cfg.mixture_truth)
             for d, s in groups]
    real = getattr(torch, cfg.dtype)
    t = lambda arrays, dtype=real: torch.tensor(np.stack(arrays), dtype=dtype, device=device)
    out = {
        "groups": groups, "draws": draws,
        "x_train": t([(d.x_train if mle else d.x_train_bins) for d in draws]),
        "x_test": t([(d.x_test if mle else d.x_test_bins) for d in draws]),
        "label_train": t([d.y_train for d in draws], torch.long),
        "label_test": t([d.y_test for d in draws], torch.long),
        "z_train": t([d.z_train for d in draws]),
        "z_test": t([d.z_test for d in draws]),
        "true_test": t([d.true_test_pmfs for d in draws]),
    }
    if mle:
        grid = toy_data.bin_centers(cfg.mle_grid_bins)
        out["true_grid"] = t([toy_data.true_pmfs(d.name, d.x_test, cfg.mle_grid_bins, cfg.var, cfg.mixture_truth)
                              for d in draws])
        out["grid"] = torch.tensor(grid, dtype=real, device=device)
    return out


@torch.no_grad()
def evaluate(ens: Ensemble, batch, model_group, cfg):
    """Test metrics of every model: dict name -> (M,) tensor, and the test PMFs (M, n, m)."""
    x = batch["x_test"][model_group]
    feats = ens.features(x)
    labels, true = batch["label_test"][model_group], batch["true_test"][model_group]
    metrics, pmfs = {}, torch.zeros(len(ens.specs), x.shape[1], cfg.num_bins, device=x.device, dtype=x.dtype)
    for kind in ens.kinds:
        sl = ens.slices[kind]
        if kind in ("linear", "gmm", "fourier"):
            pmfs[sl] = F.softmax(ens.log_probs(kind, feats[sl]), dim=-1)
        elif kind == "regression":
            value = ens.head_outputs(kind, feats[sl])[..., 0]
            pmfs[sl] = F.one_hot(torch.as_tensor(np.digitize(value.cpu().numpy(), np.linspace(-1, 1, cfg.num_bins + 1)) - 1,
                                                 device=x.device).clamp(0, cfg.num_bins - 1), cfg.num_bins).to(x.dtype)
        else:  # MLE heads: density on the 1000-bin grid (KL, as the reference) and at the 50 centres
            for start in range(sl.start, sl.stop, 16):  # chunks of models bound the (M, n, grid) memory
                csl = slice(start, min(start + 16, sl.stop))
                local = slice(csl.start - sl.start, csl.stop - sl.start)
                part = ens.densities_on_grid(kind, feats[csl], local, batch["grid"])
                q = (part * 2 / cfg.mle_grid_bins).clamp_min(1e-10)
                t = batch["true_grid"][model_group[csl]].clamp_min(1e-10)
                metrics.setdefault("kl_grid", []).append((csl, (t * (t.log() - q.log())).sum(-1).mean(-1)))
                at_z = ens.densities(kind, feats[csl], local)(batch["z_test"][model_group[csl]][..., None])[..., 0]
                metrics.setdefault("perplexity", []).append((csl, torch.exp(-torch.log(at_z.clamp_min(1e-10)).mean(-1))))
                coarse = ens.densities_on_grid(kind, feats[csl], local, ens.centers)
                pmfs[csl] = coarse / coarse.sum(-1, keepdim=True)
    out = classification_metrics(pmfs, labels, true, ens.centers)
    for name, parts in metrics.items():
        full = torch.full((len(ens.specs),), float("nan"), device=x.device, dtype=x.dtype)
        for csl, values in parts:
            full[csl] = values
        out[name] = full
    if "regression" in ens.kinds:  # a point prediction has no density: only its MSE means something
        sl = ens.slices["regression"]
        for name in ("kl", "smoothness", "mse"):
            out[name][sl] = float("nan") if name != "mse" else out["mse_argmax"][sl]
    return out, pmfs


def cosine_lr(cfg, epoch: int) -> float:
    """CosineAnnealingLR(T_max=epochs, eta_min) after `epoch` scheduler steps (closed form)."""
    return cfg.mle_lr_min + (cfg.lr - cfg.mle_lr_min) * (1 + math.cos(math.pi * epoch / cfg.epochs)) / 2


def train_family(cfg, specs, device, mle: bool, tracker: Tracker = None):
    """Train the given specs together; returns the trained ensemble, its data and the eval history."""
    batch = load_groups(cfg, specs, device, mle)
    group_of = {g: i for i, g in enumerate(batch["groups"])}
    ens = Ensemble(specs, cfg.num_bins).to(device=device, dtype=getattr(torch, cfg.dtype))
    model_group = torch.tensor([group_of[(s.dataset, s.seed)] for s in ens.specs], device=device)
    use_graph = device.type == "cuda" and cfg.cuda_graph
    # On a GPU the ~300 small kernels of one step are replayed as one CUDA graph: the learning rate
    # lives in a device tensor and Adam keeps its step count on the device (capturable=True).
    lr = torch.tensor(cfg.lr, device=device) if use_graph else cfg.lr
    optimizer = torch.optim.Adam(ens.parameters(), lr=lr, capturable=use_graph)
    gens = [torch.Generator().manual_seed(seed) for _, seed in batch["groups"]]
    n_train = batch["x_train"].shape[1]
    rows = torch.arange(len(gens), device=device)[:, None]
    running = torch.zeros(len(ens.specs), device=device, dtype=getattr(torch, cfg.dtype))
    step_idx = torch.zeros(len(gens), min(cfg.batch_size, n_train), dtype=torch.long, device=device)

    def train_step(idx):
        x = batch["x_train"][rows, idx][model_group]
        label = batch["label_train"][rows, idx][model_group]
        z = batch["z_train"][rows, idx][model_group]
        losses = ens.losses(x, label, z)
        losses.sum().backward()
        if mle:
            ens.clip_grad_norm_(cfg.mle_clip)
        optimizer.step()
        running.add_(losses.detach())

    graph, warmup = None, 3
    history, snapshots, seconds_eval = [], [], 0.0
    bar = tqdm(range(cfg.epochs), desc=f"{'mle' if mle else 'classification'} x{len(ens.specs)} models",
               mininterval=5, disable=None)
    for epoch in bar:
        if mle:  # the scheduler steps once per epoch
            value = cosine_lr(cfg, epoch)
            lr.fill_(value) if use_graph else optimizer.param_groups[0].__setitem__("lr", value)
        perms = torch.stack([torch.randperm(n_train, generator=g) for g in gens]).to(device)
        running.zero_()
        for start in range(0, n_train, cfg.batch_size):
            idx = perms[:, start:start + cfg.batch_size]
            if not use_graph or idx.shape[1] != step_idx.shape[1]:
                optimizer.zero_grad(set_to_none=True)
                train_step(idx)
            elif graph is None and warmup > 0:  # real steps, on a side stream, before capture
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    optimizer.zero_grad(set_to_none=True)
                    train_step(idx)
                torch.cuda.current_stream().wait_stream(side)
                warmup -= 1
            else:
                step_idx.copy_(idx)
                if graph is None:
                    optimizer.zero_grad(set_to_none=True)
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph):
                        train_step(step_idx)
                graph.replay()
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            t0 = time.time()
            metrics, pmfs = evaluate(ens, batch, model_group, cfg)
            steps = math.ceil(n_train / cfg.batch_size)
            history.append({"epoch": epoch + 1, "train_loss": (running / steps).cpu(),
                            **{k: v.cpu() for k, v in metrics.items()}})
            snapshots.append(pmfs[:, [i % pmfs.shape[1] for i in cfg.snapshot_test_indices]].cpu().numpy())
            bar.set_postfix(loss=f"{(running / steps).mean().item():.3f}")
            if tracker is not None:  # per head kind: the mean over its models
                tracker.log({"epoch": epoch + 1, **{f"{kind}/{name}": values[ens.slices[kind]].nanmean().item()
                                                    for kind in ens.kinds for name, values in history[-1].items()
                                                    if name != "epoch"}})
            seconds_eval += time.time() - t0
    extras = {"snapshots": np.stack(snapshots, axis=1), "eval_seconds": seconds_eval}
    if mle:  # the continuous densities at the snapshot test points, for the MLE figure
        with torch.no_grad():
            idx = [i % batch["x_test"].shape[1] for i in cfg.snapshot_test_indices]
            feats = ens.features(batch["x_test"][model_group][:, idx])
            grid = batch["grid"]
            dens = torch.cat([ens.densities_on_grid(k, feats[ens.slices[k]], slice(None), grid) for k in ens.kinds])
            extras["grid_density"] = dens.cpu().numpy()
            extras["true_grid_density"] = (batch["true_grid"][:, idx] * cfg.mle_grid_bins / 2).cpu().numpy()
    extras["gmm_components"] = gmm_components(ens, batch["x_test"][model_group])
    return ens, batch, model_group, history, extras, pmfs


@torch.no_grad()
def gmm_components(ens: Ensemble, x_test) -> dict:
    """GMM heads at the end of training: model index -> per component its std and the fraction of test
    points whose mean sits at the edge (|tanh| > 0.999, past the outermost bin centre 0.98). A component
    with a saturated mean or a std far above the data's shows where a run got stuck."""
    out = {}
    kinds = [k for k in ("gmm", "gmm-mle") if k in ens.kinds]
    feats = ens.features(x_test) if kinds else None  # (M, n, 32): the backbone is stacked over all models
    for kind in kinds:
        sl, name = ens.slices[kind], kind.replace("-", "_")
        means = torch.tanh(ens.head_outputs(kind, feats[sl]))  # (M_kind, n, K_max)
        stds = F.softplus(getattr(ens, f"{name}_log_stds"))
        for j, spec in enumerate(ens.specs[sl]):
            k = spec.num_gaussians
            out[sl.start + j] = {"std": stds[j, :k].tolist(),
                                 "edge_fraction": (means[j, :, :k].abs() > 0.999).double().mean(0).tolist()}
    return out


# ---- outputs ------------------------------------------------------------------------------------------

def run_config(cfg: Config, spec: ModelSpec, quick: bool) -> dict:
    """What defines one model's run: its spec and the training settings (JSON types, as config.json holds)."""
    settings = {k: v for k, v in config_dict(cfg).items() if k not in SWEEP_FIELDS}
    return json.loads(json.dumps({**asdict(spec), **settings, "quick": quick}))


def write_runs(cfg, ens, batch, history, extras, pmfs, env, seconds):
    out = Path(cfg.out_dir)
    for d, draw in zip(batch["groups"], batch["draws"]):
        path = out / draw.name / f"true_pmfs_seed{draw.seed}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, draw.true_test_pmfs.astype(np.float32))
        if "true_grid_density" in extras:
            g = batch["groups"].index(d)
            np.save(out / draw.name / f"true_grid_density_seed{draw.seed}.npy", extras["true_grid_density"][g])
    for i, spec in enumerate(ens.specs):
        run = out / spec.run_name  # config.json is already there (prepare_runs)
        series = [{k: (v if k == "epoch" else float(v[i])) for k, v in h.items()} for h in history]
        final = {k: v for k, v in series[-1].items() if not (isinstance(v, float) and math.isnan(v))}
        write_json(run / "env.json", {**env, "family_train_seconds": seconds, "models_trained_together": len(ens.specs)})
        np.save(run / "pmfs.npy", pmfs[i].cpu().numpy().astype(np.float16))
        np.save(run / "snapshots.npy", extras["snapshots"][i].astype(np.float16))
        if "grid_density" in extras:
            np.save(run / "grid_density.npy", extras["grid_density"][i].astype(np.float32))
        if i in extras.get("gmm_components", {}):
            write_json(run / "gmm_components.json", extras["gmm_components"][i])
        # metrics.json last: its presence marks the run as finished
        write_json(run / "metrics.json", {"final": final, "history": series})


def claim_runs(cfg: Config, specs, force: bool, quick: bool):
    """The specs still to train (scaffold.prepare_runs): a run directory holding another config stops the
    program (one line, before any training) unless `force`; finished runs with the same config are skipped."""
    out = Path(cfg.out_dir)
    states = prepare_runs({out / s.run_name: run_config(cfg, s, quick) for s in specs}, force=force,
                          ignore=SYSTEM_FIELDS)
    return [s for s in specs if states[out / s.run_name] != "done"]


def sweep(cfg: Config, force: bool = False, quick: bool = False):
    """Train every model of cfg's sweep that is not finished yet, one stacked loop per head family."""
    device = pick_device(cfg.device)
    if cfg.wandb:  # wandb keeps its files beside the runs
        Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    tracker = Tracker(cfg.wandb, "fourier-head-toy", config_dict(cfg), name=Path(cfg.out_dir).name,
                      directory=cfg.out_dir)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # keep the heads' float32 math exact
    else:
        torch.set_num_threads(cfg.cpu_threads)
    env = provenance(device)
    specs = model_grid(cfg)
    pending = claim_runs(cfg, specs, force, quick)
    print(f"{len(specs)} models in the sweep, {len(specs) - len(pending)} already done, device {device}")
    log_path = Path(cfg.out_dir) / "sweep_log.jsonl"
    for mle, family in ((False, CLASSIFICATION_HEADS), (True, MLE_HEADS)):
        todo = [s for s in pending if s.head in family]
        if not todo:
            continue
        t0 = time.time()
        ens, batch, model_group, history, extras, pmfs = train_family(cfg, todo, device, mle, tracker)
        seconds = time.time() - t0
        write_runs(cfg, ens, batch, history, extras, pmfs, env, seconds)
        with log_path.open("a") as f:
            f.write(json.dumps({"family": "mle" if mle else "classification", "models": len(todo),
                                "seconds": round(seconds, 2), "eval_seconds": round(extras["eval_seconds"], 2),
                                "epochs": cfg.epochs, **env}) + "\n")
        print(f"trained {len(todo)} {'MLE' if mle else 'classification'} models in {seconds:.1f} s")
    tracker.finish()


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK, extra=force_flag)
    sweep(cfg, force=cfg._args.force, quick=cfg._args.quick)


if __name__ == "__main__":
    main()
