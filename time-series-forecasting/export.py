"""A trained run -> one small forecaster file, the kind forecast.py loads by default (issue 21, item 6).

    python export.py --run runs/slice/<run>                      # -> model/forecaster.pt, int8 weights
    python export.py --run runs/slice/<run> --weights float16 --out /tmp/f16.pt
    python forecast.py --csv sales.csv --horizon 12              # uses model/forecaster.pt when it exists

A train.py checkpoint holds the optimizer and float32 weights (a T5-mini: ~250 MB); the forecaster file
holds what forecasting needs:

    format          "fourier-head-forecaster/1"
    model_config    ModelConfig fields (model.py), binning (tokenizer.py), context_length, step
    weights         every tensor of the state dict once: T5 ties its embedding to the decoder's input and
                    the linear head, so the state dict names one tensor several times (`aliases` maps the
                    other names to it). float16, or with --weights int8 every 2-D weight as int8 codes
                    q (rows × columns) and one float32 scale s per row, w ≈ s·q with s = max|w_row| / 127,
                    q = round(w / s) (symmetric, round to nearest); 1-D tensors stay float16
    scores          the run's benchmark scores from metrics.json (relative MASE / WQL, the datasets), if any
    fidelity        on a fixed batch of synthetic contexts (seasonal, trend, noise), the exported model's
                    next-token distributions against the original's: mean and max KL (nats per position)
    provenance      the run's env.json and the export's own (file size, dtype, command)

Sizes (parameters are unique tensors): T5-mini linear 20.5 M → 41 MB float16, 20.5 MB int8;
T5-tiny 8.4 M → 16.8 MB float16. The export refuses to write when the mean KL exceeds --max-kl or the
file would exceed --max-mb. Loading (`evaluate.load_checkpoint`) turns the weights back into float32.
Every problem ends with one line "error: ..." and exit status 2 before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from forecast import SHIPPED, run_context_length  # noqa: E402  (SHIPPED: forecast.py's default model)
from model import ModelConfig, build_model  # noqa: E402
from scaffold import Field, parse_config, provenance  # noqa: E402
from tokenizer import Tokenizer  # noqa: E402

FORMAT = "fourier-head-forecaster/1"


@dataclass
class Config:
    run: str = Field("", "run directory of train.py (or its checkpoint.pt); required")
    out: str = Field(str(SHIPPED), "forecaster file to write")
    weights: str = Field("int8", "weight storage", choices=("int8", "float16"))
    max_kl: float = Field(1e-2, "refuse when the mean KL (nats per position) to the original exceeds this", low=0)
    max_mb: float = Field(20.0, "refuse when the file would exceed this many MB (1e6 bytes)", low=0)
    force: bool = Field(False, "overwrite an existing --out")


# ------------------------------------------------------------------------------------------------
# weights: each tensor once, then float16 or int8 codes with per-row scales
# ------------------------------------------------------------------------------------------------

def unique_tensors(state: dict) -> tuple[dict, dict]:
    """(name -> tensor with each storage once, alias name -> the kept name)."""
    kept, aliases, seen = {}, {}, {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            kept[name] = t
    return kept, aliases


def pack(t: torch.Tensor, weights: str):
    """One tensor -> its stored form: a float16 tensor, or {"q": int8 (R, C), "scale": float32 (R, 1)}."""
    t = t.detach().float().cpu()
    if weights == "float16" or t.dim() != 2:
        return t.half()
    scale = t.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
    return {"q": torch.round(t / scale).clamp(-127, 127).to(torch.int8), "scale": scale}


def unpack(stored) -> torch.Tensor:
    if isinstance(stored, dict):
        return stored["q"].float() * stored["scale"]
    return stored.float()


def state_dict_of(forecaster: dict) -> dict:
    """The float32 state dict a forecaster file stands for (aliases restored)."""
    state = {name: unpack(v) for name, v in forecaster["weights"].items()}
    for alias, name in forecaster["aliases"].items():
        state[alias] = state[name]
    return state


def is_forecaster(obj) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


# ------------------------------------------------------------------------------------------------
# fidelity: the exported model's next-token distributions against the original's
# ------------------------------------------------------------------------------------------------

def probe_batch(tokenizer: Tokenizer, context: int = 256, horizon: int = 16, n: int = 8, seed: int = 0):
    """Deterministic synthetic series (seasonal, trend, noise, spikes) -> (ids, mask, labels)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(context + horizon, dtype=torch.float32)
    rows = []
    for i in range(n):
        period = (12, 7, 24, 52)[i % 4]
        y = 10 + 3 * torch.sin(2 * math.pi * t / period) + 0.02 * (i + 1) * t + torch.randn(len(t), generator=g)
        if i % 3 == 2:
            y = y * (torch.rand(len(t), generator=g) > 0.7)  # intermittent
        rows.append(y)
    y = torch.stack(rows)
    ids, mask, scale = tokenizer.encode_context(y[:, :context])
    labels, _ = tokenizer.encode(y[:, context:], scale)
    return ids, mask, labels


@torch.no_grad()
def fidelity(original, exported, tokenizer: Tokenizer) -> dict:
    ids, mask, labels = probe_batch(tokenizer)
    p, q = original(ids, mask, labels), exported(ids, mask, labels)  # log-probabilities (B, H, V)
    kl = (p.exp() * (p - q)).sum(-1)
    top1 = (p.argmax(-1) == q.argmax(-1)).float().mean()
    return {"kl_mean": kl.mean().item(), "kl_max": kl.max().item(), "top1_agreement": top1.item(),
            "positions": int(kl.numel())}


# ------------------------------------------------------------------------------------------------
# the export
# ------------------------------------------------------------------------------------------------

def fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def export(cfg: Config) -> dict:
    from evaluate import load_checkpoint

    run = Path(cfg.run)
    ckpt_path = run / "checkpoint.pt" if run.is_dir() else run
    if not ckpt_path.exists():
        fail(f"{ckpt_path}: no such file (name a train.py run directory or its checkpoint.pt)")
    out = Path(cfg.out)
    if out.exists() and not cfg.force:
        fail(f"{out} exists; pass --force to overwrite it, or another --out")
    try:
        model, tokenizer, ckpt = load_checkpoint(ckpt_path, "cpu")
    except ValueError as e:
        fail(str(e))
    if is_forecaster(ckpt):
        fail(f"{ckpt_path} is already a forecaster file")
    run_dir = ckpt_path.parent
    metrics = read_json(run_dir / "metrics.json")
    kept, aliases = unique_tensors(model.state_dict())
    forecaster = {
        "format": FORMAT, "model_config": ckpt["model_config"], "binning": ckpt["binning"], "step": ckpt["step"],
        "context_length": run_context_length(ckpt_path, ckpt),  # the run's config.json, else 512
        "weights": {name: pack(t, cfg.weights) for name, t in kept.items()}, "aliases": aliases,
        "scores": None if metrics is None else {k: metrics.get(k) for k in ("mase", "wql", "datasets", "num_samples")
                                                if k in metrics},
    }
    exported = build_model(ModelConfig(**ckpt["model_config"])).eval()
    exported.load_state_dict(state_dict_of(forecaster))
    forecaster["fidelity"] = fidelity(model, exported, tokenizer)
    if forecaster["fidelity"]["kl_mean"] > cfg.max_kl:
        fail(f"the {cfg.weights} weights change the next-token distributions too much (mean KL "
             f"{forecaster['fidelity']['kl_mean']:.2e} > --max-kl {cfg.max_kl:g}); try --weights float16")
    forecaster["provenance"] = {"run": read_json(run_dir / "env.json"), "run_name": run_dir.name,
                                "export": {**provenance(), "weights": cfg.weights,
                                           "parameters": sum(t.numel() for t in kept.values())}}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(forecaster, tmp)
    size = tmp.stat().st_size
    if size > cfg.max_mb * 1e6:
        tmp.unlink()
        fail(f"the {cfg.weights} forecaster would be {size / 1e6:.1f} MB > --max-mb {cfg.max_mb:g}")
    os.replace(tmp, out)  # atomic: a file at --out is always a whole forecaster
    return {"out": str(out), "mb": size / 1e6, **forecaster["fidelity"]}


def main(argv=None) -> None:
    cfg = parse_config(Config, argv, description=__doc__)
    if not cfg.run:
        fail("name the run to export (--run runs/slice/<run>); see --help")
    result = export(cfg)
    print(f"wrote {result['out']} ({result['mb']:.1f} MB); against the original: mean KL {result['kl_mean']:.2e}, "
          f"max {result['kl_max']:.2e} nats per position, top-1 token agreement {result['top1_agreement']:.3f}")


if __name__ == "__main__":
    main()
