"""Time one training step of the pretrained (CREPE-tiny) arm under several ways of running the encoder.

Why: on an H200 a 2-epoch run of `pretrained.py` took ~740 s with 6 runs sharing the GPU (results/
gpu_pilot_pretrained_seed0), ~10x the FLOP estimate; the grid needs the step faster before it fits a session.
CREPE's convolutions are Conv2d with (k, 1) kernels (k = 512 stride 4, then 64) over ~1,600 frames per step;
the variants test where the time goes:

    default       the model as pretrained.py builds it (bf16 autocast on CUDA, cudnn.benchmark off; the
                  encoder's (k, 1) kernels applied as Conv1d)
    benchmark     the same with torch.backends.cudnn.benchmark = True (fixed shapes: autotuned conv algorithms)
    fp32          autocast off
    conv2d        the kernels applied as Conv2d on (frames, channels, samples, 1), as before 2026-12-01 (the
                  first GPU runs); same numbers
    compile       torch.compile on the encoder
    frozen        the encoder without gradients (linear probing): what the encoder's backward costs
    frozen-conv1  only CREPE's first layer (128 filters of 512 samples) frozen: its weight gradient's share

Each variant: `--warmup` steps, then the mean of `--steps` timed steps (forward, backward, AdamW; the clock
read after a device sync). One random batch of `--batch-size` clips of `--clip-seconds` at the config's hop.

    python scripts/pretrained_step_bench.py                    # all variants, prints ms/step
    python scripts/pretrained_step_bench.py --out runs/bench.json
    python scripts/pretrained_step_bench.py --clip-seconds 1 --steps 2 --warmup 1   # a quick CPU check
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))
import crepe_encoder  # noqa: E402
import pretrained  # noqa: E402
from scaffold import pick_device, provenance, write_json  # noqa: E402

VARIANTS = ("default", "benchmark", "fp32", "conv2d", "compile", "frozen", "frozen-conv1")


def build(variant: str, cfg: pretrained.Config, device: torch.device):
    torch.backends.cudnn.benchmark = variant == "benchmark"
    if variant in ("frozen", "frozen-conv1"):  # pretrained.py's own flags
        cfg = pretrained.parse_config(["--freeze-encoder"] if variant == "frozen" else ["--frozen-layers", "1"])
    model = pretrained.PretrainedTempoModel(cfg, 33).to(device)
    if variant == "conv2d":
        enc = model.encoder
        enc.forward = lambda frames: crepe_encoder.forward_conv2d(enc, frames)
    if variant == "compile":
        model.encoder = torch.compile(model.encoder)
    opt = torch.optim.AdamW(pretrained.param_groups(model, cfg))
    return model, opt


def time_variant(variant: str, cfg: pretrained.Config, device: torch.device, args) -> dict:
    torch.manual_seed(0)
    model, opt = build(variant, cfg, device)
    model.train()
    samples = int(args.clip_seconds * crepe_encoder.SAMPLE_RATE)
    audio = 0.1 * torch.randn(args.batch_size, samples, device=device)
    y = torch.randint(0, 33, (args.batch_size,), device=device)
    amp = device.type == "cuda" and variant != "fp32"

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out, reg = model(audio)
        loss = F.cross_entropy(out.float(), y) + reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step().detach()
    sync()
    ms = 1000 * (time.perf_counter() - t0) / args.steps
    frames = args.batch_size * (1 + samples // model.hop)
    return {"variant": variant, "ms_per_step": round(ms, 2), "frames_per_step": frames,
            "loss": round(loss.item(), 4)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from %s" % (VARIANTS,))
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--clip-seconds", type=float, default=4.0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="also write the numbers and provenance to this JSON file")
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    bad = [v for v in variants if v not in VARIANTS]
    if bad or min(args.batch_size, args.steps) < 1 or args.warmup < 0 or args.clip_seconds <= 0:
        ap.error(f"unknown variants {bad}" if bad else "--batch-size/--steps must be >= 1, --warmup >= 0, "
                 "--clip-seconds > 0")
    device = pick_device(args.device)
    cfg = pretrained.parse_config([])
    rows = []
    for v in variants:
        rows.append(time_variant(v, cfg, device, args))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        write_json(Path(args.out), {"rows": rows, "args": vars(args), "provenance": provenance(device)})


if __name__ == "__main__":
    main()
