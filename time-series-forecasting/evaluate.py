"""Zero-shot evaluation of trained runs on the offline benchmark (paper v1 §6: MASE, WQL, smoothness).

    python evaluate.py runs/<run>                  # every benchmark dataset
    python evaluate.py runs/quick/* --datasets m1_yearly classic_quarterly

Per dataset: the last `context_length` values of each item's past are tokenized, 20 sample paths of
length H are drawn (temperature 1, top-k 50, as Chronos), decoded, and their 0.1..0.9 quantiles and
median scored with metrics.py; the seasonal-naive baseline is scored the same way, and the
aggregate is the geometric mean over datasets of model / seasonal naive. Smoothness: the first 64
items of each dataset, one sample path, the PMF of every forecast step (fourier_head.smoothness).

Writes into the run directory metrics.json (with the evaluation settings), forecasts.npz (quantile
forecasts per dataset) and pmf_examples.npz (one forecast's PMFs per dataset, for plot.py). A run
evaluated with the same settings at its checkpoint's step is skipped; one evaluated with other settings
stops the program with the differing fields named (--force re-evaluates); one whose checkpoint moved on
since is evaluated again. A named folder that is missing or has no checkpoint.pt is an error.
"""

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import data as tsdata
from fourier_head import smoothness
from metrics import QUANTILES, geometric_mean, mase, naive_scores, wql
from model import ModelConfig, build_model
from scaffold import Field, config_differences, parse_config, pick_device, write_json
from tokenizer import Tokenizer

CHECKPOINT_KEYS = ("model", "model_config", "binning", "step")


def load_checkpoint(path, device):
    """A train.py checkpoint or an export.py forecaster file -> (model in eval mode, float32, tokenizer, the
    file's dict). ValueError with the cause when the file is neither."""
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # torch's messages run over many lines; the first says what it is
        raise ValueError(f"cannot read {path} as a torch checkpoint ({str(e).splitlines()[0] or type(e).__name__})")
    from export import is_forecaster, state_dict_of

    missing = [] if is_forecaster(ckpt) else [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ValueError(f"{path} is not a train.py checkpoint or an export.py forecaster (no {', '.join(missing)})")
    model = build_model(ModelConfig(**ckpt["model_config"])).to(device)
    model.load_state_dict(state_dict_of(ckpt) if is_forecaster(ckpt) else ckpt["model"])
    return model.eval(), Tokenizer(ckpt["binning"]), ckpt


def load_run(run_dir: Path, device):
    return load_checkpoint(Path(run_dir) / "checkpoint.pt", device)


def left_pad(arrays, length: int) -> torch.Tensor:
    """Last `length` values of each array, left-padded with NaN to a common width."""
    width = min(length, max(len(a) for a in arrays))
    out = np.full((len(arrays), width), np.nan, dtype=np.float32)
    for i, a in enumerate(arrays):
        tail = a[-width:]
        out[i, width - len(tail):] = tail
    return torch.from_numpy(out)


@torch.no_grad()
def forecast(model, tokenizer, pasts, horizon, context_length=512, num_samples=20, batch_items=64, seed=0,
             device="cpu", top_k=50, return_pmfs=False, progress=False):
    """Sample paths (n, num_samples, horizon) as float64 numpy (and PMFs (n, horizon, n_values) of sample 0)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    samples, pmfs = [], []
    starts = range(0, len(pasts), batch_items)
    for start in tqdm(starts, disable=not progress, leave=False):
        context = left_pad(pasts[start:start + batch_items], context_length).to(device)
        ids, mask, scale = tokenizer.encode_context(context)
        with torch.autocast(device.type if isinstance(device, torch.device) else str(device).split(":")[0],
                            dtype=torch.bfloat16, enabled=str(device).startswith("cuda")):
            out, pmf = model.sample(ids, mask, horizon, num_samples, top_k=top_k, generator=gen, return_pmfs=return_pmfs)
        samples.append(tokenizer.decode(out, scale.double()).cpu().numpy())
        if return_pmfs:
            pmfs.append(pmf[:, 0].float())
    if return_pmfs:
        return np.concatenate(samples), torch.cat(pmfs)
    return np.concatenate(samples)


def evaluate_model(model, tokenizer, context_length: int, datasets=None, num_samples=20, smoothness_items=64,
                   seed=0, device="cpu", batch_items=64, benchmark=tsdata.BENCHMARK):
    """Score a model (in eval mode) on the benchmark -> (result dict, quantile forecasts, example PMFs).
    smoothness_items=0 skips the smoothness pass (the intermediate evaluations of train.py)."""
    t0 = time.perf_counter()
    bench, _ = tsdata.load_benchmark(benchmark, datasets)
    per_dataset, forecasts, examples = {}, {}, {}
    for k, (name, ds) in enumerate(bench.items()):
        pasts = [p for _, p, _ in ds["items"]]
        future = np.stack([f for _, _, f in ds["items"]])
        H, season = ds["prediction_length"], ds["season"]
        paths = forecast(model, tokenizer, pasts, H, context_length, num_samples, batch_items, seed + k, device)
        q = np.quantile(paths, QUANTILES, axis=1).transpose(1, 0, 2)  # (n, 9, H)
        median = np.median(paths, axis=1)
        naive = naive_scores(ds)
        m, w = mase(pasts, future, median, season), wql(future, q)
        per_dataset[name] = dict(mase=m, wql=w, naive_mase=naive["mase"], naive_wql=naive["wql"],
                                 relative_mase=m / naive["mase"], relative_wql=w / naive["wql"],
                                 num_items=len(pasts), prediction_length=H, freq=ds["freq"])
        forecasts[f"{name}/quantiles"] = q.astype(np.float32)
        if smoothness_items:
            # smoothness: one sample path, PMF at every step, first `smoothness_items` items
            _, pmfs = forecast(model, tokenizer, pasts[:smoothness_items], H, context_length, 1, batch_items,
                               seed + 1000 + k, device, return_pmfs=True)
            s = smoothness(pmfs.reshape(-1, pmfs.shape[-1])).cpu().numpy()
            per_dataset[name].update(smoothness_mean=float(s.mean()), smoothness_std=float(s.std()))
            examples[name] = pmfs[0].cpu().numpy().astype(np.float32)  # (H, n_values), first item
    result = dict(mase=geometric_mean(v["relative_mase"] for v in per_dataset.values()),
                  wql=geometric_mean(v["relative_wql"] for v in per_dataset.values()),
                  num_datasets=len(per_dataset), num_samples=num_samples, seed=seed)
    if smoothness_items:
        sm = np.array([v["smoothness_mean"] for v in per_dataset.values()])
        sd = np.array([v["smoothness_std"] for v in per_dataset.values()])
        result.update(smoothness=float(sm.mean()), smoothness_std=float(np.sqrt((sd ** 2).mean())))  # paper: sqrt(mean var)
    result.update(eval_seconds=time.perf_counter() - t0, per_dataset=per_dataset)
    return result, forecasts, examples


def evaluate_run(run_dir: Path, datasets=None, num_samples=20, smoothness_items=64, seed=0, device="cpu",
                 batch_items=64, benchmark=tsdata.BENCHMARK):
    model, tokenizer, ckpt = load_run(run_dir, device)
    cfg = json.loads((Path(run_dir) / "config.json").read_text())
    res, forecasts, examples = evaluate_model(model, tokenizer, cfg["context_length"], datasets, num_samples,
                                              smoothness_items, seed, device, batch_items, benchmark)
    settings = dict(datasets=sorted(res["per_dataset"]), num_samples=num_samples, smoothness_items=smoothness_items,
                    seed=seed)
    result = dict(run=Path(run_dir).name, **{k: v for k, v in res.items() if k != "per_dataset"},
                  step=ckpt["step"], settings=settings, per_dataset=res["per_dataset"])
    np.savez_compressed(Path(run_dir) / "forecasts.npz", **forecasts)
    np.savez_compressed(Path(run_dir) / "pmf_examples.npz", **examples)
    write_json(Path(run_dir) / "metrics.json", result)  # last: its presence marks the run evaluated
    return result


@dataclass
class Config:
    datasets: tuple = Field((), "benchmark datasets (default: all)", choices=tuple(tsdata.benchmark_names()))
    num_samples: int = Field(20, "sample paths per forecast", low=1)
    smoothness_items: int = Field(64, "series per dataset whose PMFs are scored for smoothness (0: skip)", low=0)
    batch_items: int = Field(64, "series per sampling batch", low=1)
    seed: int = Field(0, "sampling seed", low=0)
    device: str = Field("auto", "auto | cpu | cuda | cuda:N")


def saved_settings(metrics: dict) -> dict:
    """The settings an existing metrics.json was made with (older files: what they record)."""
    return metrics.get("settings") or dict(datasets=sorted(metrics["per_dataset"]), num_samples=metrics["num_samples"],
                                           seed=metrics["seed"])


def checkpoint_step(run: Path) -> int:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False, mmap=True)["step"]


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__, extra=lambda p: (
        p.add_argument("runs", nargs="+", help="run directories (with checkpoint.pt)"),
        p.add_argument("--force", action="store_true", help="evaluate again, whatever metrics.json holds")))

    def fail(message: str):
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)

    device = pick_device(cfg.device)
    runs = [Path(r) for r in cfg._args.runs]
    for run in runs:
        if not run.is_dir():
            fail(f"{run}: no such run directory")
        if not (run / "checkpoint.pt").exists():
            fail(f"{run}: no checkpoint.pt (not a train.py run directory, or its training has not saved one yet)")
    datasets = sorted(cfg.datasets or tsdata.benchmark_names())
    wanted = dict(datasets=datasets, num_samples=cfg.num_samples, smoothness_items=cfg.smoothness_items, seed=cfg.seed)
    todo = []
    for run in runs:
        if (run / "metrics.json").exists() and not cfg._args.force:
            met = json.loads((run / "metrics.json").read_text())
            saved = saved_settings(met)
            diff = config_differences(saved, wanted, ignore=set(wanted) - set(saved))
            if diff:
                fail(f"{run}/metrics.json was made with other settings ({'; '.join(diff)}); --force evaluates again")
            step = checkpoint_step(run)
            if met["step"] == step:
                print(f"skipping {run}: evaluated at step {step} with these settings (--force evaluates again)")
                continue
            print(f"{run}: metrics.json is of step {met['step']}, the checkpoint of step {step}: evaluating again")
        todo.append(run)
    for run in todo:
        r = evaluate_run(run, list(cfg.datasets) or None, cfg.num_samples, cfg.smoothness_items, cfg.seed, device,
                         cfg.batch_items)
        smooth = f"  smoothness {r['smoothness']:.4f}" if "smoothness" in r else ""
        print(f"{r['run']}: MASE {r['mase']:.4f}  WQL {r['wql']:.4f}{smooth}  "
              f"({r['num_datasets']} datasets, {r['eval_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
