"""Does torch.compile train both heads as eager mode does, and is it faster? (issue 21, item 2)

For each head (linear = T5's tied output layer, Fourier-550): one batch through the model eager and
compiled (train.py's path: bf16 autocast on CUDA, the loss and the Fourier regulariser outside the
compiled forward), then per parameter tensor the relative difference of the gradients and whether
either is missing or zero. A gradient that is missing, all zero or off by more than `--tolerance` under
compile while eager has one is the bug the issue names. Then each head's step time, eager vs compiled
(train.py --bench-steps, its own data), unless --no-timing.

    python scripts/compile_check.py --out runs/compile_check.json      # GPU: ~3 min (compiles twice)
    python scripts/compile_check.py --size smoke --no-timing           # CPU: a quick check of the check
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from model import ModelConfig, build_model  # noqa: E402
from scaffold import pick_device, provenance, write_json  # noqa: E402
from tokenizer import N_SPECIAL  # noqa: E402

HEADS = {"linear": dict(head="linear"), "fourier-550": dict(head="fourier", num_frequencies=550)}


def gradients(model, fn, batch, amp: bool, device) -> dict:
    ids, mask, labels = batch
    model.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        loss, parts = model.loss_from_log_probs(fn(ids, mask, labels), labels)
    loss.backward()
    return {"loss": loss.item(), "ce": parts["ce"].item(), "reg": parts["reg"].item(),
            "grads": {n: None if p.grad is None else p.grad.detach().float().clone() for n, p in model.named_parameters()}}


def compare(eager: dict, comp: dict, tolerance: float) -> dict:
    rows, bad = {}, []
    for name, g in eager["grads"].items():
        c = comp["grads"][name]
        if g is None and c is None:
            continue
        if g is None or c is None:
            rows[name] = {"eager": g is not None, "compiled": c is not None}
            bad.append(name)
            continue
        rel = ((c - g).norm() / g.norm().clamp_min(1e-30)).item()
        rows[name] = {"eager_norm": g.norm().item(), "compiled_norm": c.norm().item(), "relative_difference": rel}
        if c.norm() == 0 < g.norm() or not rel <= tolerance:
            bad.append(name)
    return {"loss": [eager["loss"], comp["loss"]], "ce": [eager["ce"], comp["ce"]], "reg": [eager["reg"], comp["reg"]],
            "bad": bad, "max_relative_difference": max((r.get("relative_difference", float("inf")) for r in rows.values()),
                                                        default=0.0), "per_parameter": rows}


def bench(head: dict, compile_: bool, size: str, steps: int) -> dict:
    flags = ["--size", size, "--batch-size", "64", "--bench-steps", str(steps), "--head", head["head"],
             "--pool", "benchmark", "--kernel-synth-series", "2000", "--tsmixup-series", "2000"]
    flags += ["--num-frequencies", str(head["num_frequencies"])] if "num_frequencies" in head else []
    flags += ["--compile"] * compile_
    t = time.time()
    out = subprocess.run([sys.executable, str(HERE / "train.py"), *flags], capture_output=True, text=True, cwd=HERE)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:], "compile": compile_}
    return {**json.loads(line[6:]), "compile": compile_, "wall_seconds_with_startup": round(time.time() - t, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="mini")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--tolerance", type=float, default=0.05, help="relative gradient difference allowed (bf16)")
    ap.add_argument("--bench-steps", type=int, default=50)
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    amp = device.type == "cuda"
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(N_SPECIAL, 4096, (args.batch_size, 64), generator=g).to(device)
    batch = (ids, torch.ones_like(ids, dtype=torch.bool), torch.randint(N_SPECIAL, 4096, (args.batch_size, 16), generator=g).to(device))
    result = {"gradients": {}, "timing": []}
    for name, head in HEADS.items():
        torch.manual_seed(0)
        model = build_model(ModelConfig(size=args.size, dropout=0.0, **head)).to(device).train()
        eager = gradients(model, model, batch, amp, device)
        comp = gradients(model, torch.compile(model), batch, amp, device)
        result["gradients"][name] = r = compare(eager, comp, args.tolerance)
        print(f"{name}: loss eager {r['loss'][0]:.5f} compiled {r['loss'][1]:.5f}; max relative gradient difference "
              f"{r['max_relative_difference']:.2e}; bad: {r['bad'] or 'none'}", flush=True)
        if not args.no_timing:
            for c in (False, True):
                result["timing"].append(t := {"head": name, **bench(head, c, args.size, args.bench_steps)})
                print(json.dumps(t), flush=True)
    if args.out:
        write_json(Path(args.out), {**result, "args": vars(args), "provenance": provenance(device)})
    return 1 if any(r["bad"] for r in result["gradients"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
