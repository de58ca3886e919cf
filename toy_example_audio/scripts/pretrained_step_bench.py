"""Time one training step of the pretrained (CREPE-tiny) arm under several ways of running the encoder.

Why: on an H200 a 2-epoch run of `pretrained.py` took ~740 s with 6 runs sharing the GPU (results/
gpu_pilot_pretrained_seed0), ~10x the FLOP estimate; the grid needs the step faster before it fits a session.
CREPE's convolutions are Conv2d with (k, 1) kernels (k = 512 stride 4, then 64) over ~1,600 frames per step;
a variant is tokens joined by "+", each testing where the time goes:

    conv1d | gemm | polyphase   how CREPE's first layer (kernel 512, stride 4, one input channel) runs
                  (crepe_encoder.CONV1_IMPLS; the same numbers); bf16 autocast on CUDA, the (k, 1) kernels of
                  the other layers as Conv1d. "default" = conv1d, the model as pretrained.py builds it
    bench         torch.backends.cudnn.benchmark = True (fixed shapes: autotuned conv algorithms)
    fp32          autocast off
    conv2d        the kernels applied as Conv2d on (frames, channels, samples, 1), as before 2026-12-01 (the
                  first GPU runs); same numbers
    compile       torch.compile on the encoder
    frozen        the encoder without gradients (linear probing): what the encoder's backward costs
    frozen1       only CREPE's first layer (128 filters of 512 samples) frozen: its weight gradient's share

Each row also gives the pretrained.py flags of its variant (`flags`, None where pretrained.py has none, as
for compile/conv2d/fp32); `--pick` prints the flags of the fastest full fine-tune among them (the GPU job
passes them to the sweep: same numbers, the speed of this device).

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

IMPLS = crepe_encoder.CONV1_IMPLS
TOKENS = IMPLS + ("bench", "fp32", "conv2d", "compile", "frozen", "frozen1")
VARIANTS = ("default", "conv1d+bench", "gemm", "gemm+bench", "polyphase", "polyphase+bench", "fp32", "conv2d",
            "compile", "frozen", "frozen1")


def tokens(variant: str) -> list[str]:
    parts = ["conv1d"] if variant == "default" else variant.split("+")
    bad = [t for t in parts if t not in TOKENS]
    if bad or sum(t in IMPLS for t in parts) > 1 or not parts:
        raise ValueError(f"variant {variant!r}: tokens joined by '+' from {TOKENS}, at most one of {IMPLS}")
    return parts


def flags(variant: str) -> list[str] | None:
    """pretrained.py's flags for `variant`, or None where it has none (compile, conv2d, fp32)."""
    t = tokens(variant)
    if {"compile", "conv2d", "fp32"} & set(t):
        return None
    impl = next((x for x in t if x in IMPLS), "conv1d")
    return (["--conv1-impl", impl] + (["--cudnn-benchmark"] * ("bench" in t))
            + (["--freeze-encoder"] * ("frozen" in t)) + (["--frozen-layers", "1"] * ("frozen1" in t)))


def build(variant: str, device: torch.device):
    t = tokens(variant)
    # pretrained.py's config for the tokens it has flags for; the others are applied below
    cfg = pretrained.parse_config(flags("+".join(x for x in t if x not in ("compile", "conv2d", "fp32")) or "default"))
    torch.backends.cudnn.benchmark = "bench" in t
    model = pretrained.PretrainedTempoModel(cfg, 33).to(device)
    if "conv2d" in t:
        enc = model.encoder
        enc.forward = lambda frames: crepe_encoder.forward_conv2d(enc, frames)
    if "compile" in t:
        model.encoder = torch.compile(model.encoder)
    opt = torch.optim.AdamW(pretrained.param_groups(model, cfg))
    return model, opt


def time_variant(variant: str, device: torch.device, args) -> dict:
    torch.manual_seed(0)
    model, opt = build(variant, device)
    model.train()
    samples = int(args.clip_seconds * crepe_encoder.SAMPLE_RATE)
    audio = 0.1 * torch.randn(args.batch_size, samples, device=device)
    y = torch.randint(0, 33, (args.batch_size,), device=device)
    amp = device.type == "cuda" and "fp32" not in tokens(variant)

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
            "loss": round(loss.item(), 4), "flags": flags(variant), "full_finetune": not {"frozen", "frozen1"} & set(tokens(variant))}


def pick(rows: list[dict]) -> list[str]:
    """The pretrained.py flags of the fastest full fine-tune that pretrained.py can run."""
    ok = [r for r in rows if r["flags"] is not None and r["full_finetune"]]
    return min(ok, key=lambda r: r["ms_per_step"])["flags"] if ok else []


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from %s" % (VARIANTS,))
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--clip-seconds", type=float, default=4.0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="also write the numbers and provenance to this JSON file")
    ap.add_argument("--pick", action="store_true", help="print, last, the flags of the fastest full fine-tune")
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    bad = []
    for v in variants:
        try:
            tokens(v)
        except ValueError:
            bad.append(v)
    if bad or min(args.batch_size, args.steps) < 1 or args.warmup < 0 or args.clip_seconds <= 0:
        ap.error(f"unknown variants {bad}" if bad else "--batch-size/--steps must be >= 1, --warmup >= 0, "
                 "--clip-seconds > 0")
    device = pick_device(args.device)
    rows = []
    for v in variants:
        rows.append(time_variant(v, device, args))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        write_json(Path(args.out), {"rows": rows, "pick": pick(rows), "args": vars(args),
                                    "provenance": provenance(device)})
    if args.pick:
        print(" ".join(pick(rows)))


if __name__ == "__main__":
    main()
