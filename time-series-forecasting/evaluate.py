"""Zero-shot evaluation of trained runs on the offline benchmark (paper v1 §6: MASE, WQL, smoothness).

    python evaluate.py runs/<run>                  # every benchmark dataset
    python evaluate.py runs/quick/* --datasets m1_yearly classic_quarterly

Per dataset: the last `context_length` values of each item's past are tokenized, 20 sample paths of
length H are drawn (temperature 1, top-k 50, as Chronos), decoded, and their 0.1..0.9 quantiles and
median scored with metrics.py; the seasonal-naive baseline is scored the same way, and the
aggregate is the geometric mean over datasets of model / seasonal naive. Smoothness: the first 64
items of each dataset, one sample path, the PMF of every forecast step (fourier_head.smoothness).

Writes into the run directory metrics.json, forecasts.npz (quantile forecasts per dataset) and
pmf_examples.npz (one forecast's PMFs per dataset, for plot.py). Runs whose metrics.json exists are
skipped unless --force.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import data as tsdata
from fourier_head import smoothness
from metrics import QUANTILES, geometric_mean, mase, naive_scores, wql
from model import ModelConfig, build_model
from tokenizer import Tokenizer


def load_run(run_dir: Path, device):
    ckpt = torch.load(Path(run_dir) / "checkpoint.pt", map_location=device, weights_only=False)
    model = build_model(ModelConfig(**ckpt["model_config"])).to(device)
    model.load_state_dict(ckpt["model"])
    return model.eval(), Tokenizer(ckpt["binning"]), ckpt


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
    result = dict(run=Path(run_dir).name, **{k: v for k, v in res.items() if k != "per_dataset"},
                  step=ckpt["step"], per_dataset=res["per_dataset"])
    np.savez_compressed(Path(run_dir) / "forecasts.npz", **forecasts)
    np.savez_compressed(Path(run_dir) / "pmf_examples.npz", **examples)
    (Path(run_dir) / "metrics.json").write_text(json.dumps(result, indent=1))
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories (with checkpoint.pt)")
    p.add_argument("--datasets", nargs="+", default=None)
    p.add_argument("--num-samples", type=int, default=20)
    p.add_argument("--smoothness-items", type=int, default=64)
    p.add_argument("--batch-items", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--force", action="store_true")
    args = p.parse_args()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if args.datasets:
        known = json.loads(str(np.load(tsdata.BENCHMARK)["meta"]))["datasets"]
        bad = [d for d in args.datasets if d not in known]
        if bad:
            p.error(f"unknown dataset(s) {', '.join(bad)}; choose from {', '.join(known)}")
    for run in args.runs:
        run = Path(run)
        if not (run / "checkpoint.pt").exists():
            print(f"skipping {run}: no checkpoint.pt")
            continue
        if (run / "metrics.json").exists() and not args.force:
            print(f"skipping {run}: metrics.json exists")
            continue
        r = evaluate_run(run, args.datasets, args.num_samples, args.smoothness_items, args.seed, device, args.batch_items)
        print(f"{r['run']}: MASE {r['mase']:.4f}  WQL {r['wql']:.4f}  smoothness {r['smoothness']:.4f}  "
              f"({r['num_datasets']} datasets, {r['eval_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
