"""Training-step time of real models of this repository with a linear head vs a Fourier head.

    python misc/benchmarks/end_to_end.py --commit <sha> [--merge-into misc/benchmarks/head_speed.json]

Models (each exactly as its experiment trains it):
  toy MLP         toy-example-synthetic: MLP 2 -> 64 -> 32, head over 50 bins, batch 32, Adam;
                  Fourier N = 12, gamma = 0 (Table 1's setting)
  audio encoder   toy_example_audio: AST-style spectrogram transformer (0.8 M parameters), 33 classes,
                  batch 64, bf16 autocast, AdamW + clipping; Fourier N = 2, gamma = 1e-6
A step is zero_grad + forward + loss (+ regulariser) + backward (+ clip) + optimizer step, timed with CUDA
events; the reported time is the median over interleaved rounds of the median of `--steps` steps.
"""

import argparse
import datetime
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from fourier_head import Fourier_Head

ROOT = Path(__file__).resolve().parents[2]


def load_audio_module():
    """toy_example_audio/train.py, whose sibling imports need its folder on sys.path."""
    folder = ROOT / "toy_example_audio"
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location("audio_train", folder / "train.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


def toy_setup(head: str, device):
    torch.manual_seed(0)
    out = nn.Linear(32, 50) if head == "linear" else Fourier_Head(32, 50, 12)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), out).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randint(0, 50, (32, 2), device=device).float()
    y = torch.randint(0, 50, (32,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y) + getattr(out, "loss_regularization", 0)
        loss.backward()
        opt.step()
    return step, "batch 32, Adam; Fourier N=12, gamma=0"


def audio_setup(head: str, device):
    audio = load_audio_module()
    cfg = audio.Config(head=head, num_frequencies=2, regularization_gamma=1e-6)
    torch.manual_seed(0)
    model = audio.TempoClassifier(32, cfg.num_frames, 33, cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x = torch.randn(cfg.batch_size, 32, cfg.num_frames, device=device)
    y = torch.randint(0, 33, (cfg.batch_size,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits, reg = model(x)
        loss = F.cross_entropy(logits.float(), y) + reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
    return step, f"batch {cfg.batch_size}, bf16 autocast, AdamW; Fourier N=2, gamma=1e-6"


MODELS = {"toy MLP": toy_setup, "audio encoder": audio_setup}


def time_steps(step, device, steps: int) -> float:
    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--merge-into", type=Path, default=None,
                        help="also add the rows as 'end_to_end' to this head_speed.json")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for name, setup in MODELS.items():
        steps = {head: setup(head, device) for head in ("linear", "fourier")}
        times = {head: [] for head in steps}
        for _ in range(args.rounds):
            for head, (step, _) in steps.items():
                times[head].append(time_steps(step, device, args.steps))
        lin, four = statistics.median(times["linear"]), statistics.median(times["fourier"])
        rows.append({"model": name, "setting": steps["fourier"][1], "linear_step_ms": round(lin, 4),
                     "fourier_step_ms": round(four, 4), "ratio": round(four / lin, 3)})
        print(json.dumps(rows[-1]), flush=True)
    provenance = {
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "commit": args.commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "timing": f"median over {args.rounds} interleaved rounds of the median of {args.steps} training steps",
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"provenance": provenance, "rows": rows}, indent=1) + "\n")
    if args.merge_into:
        data = json.loads(args.merge_into.read_text())
        data["end_to_end"] = rows
        data["end_to_end_provenance"] = provenance
        args.merge_into.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
