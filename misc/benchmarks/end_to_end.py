"""Training-step time of real models of this repository with a linear head vs a Fourier head.

    python misc/benchmarks/end_to_end.py [--merge-into misc/benchmarks/head_speed.json]

Models (each exactly as its experiment trains it):
  toy MLP         toy-example-synthetic: MLP 2 -> 64 -> 32, head over 50 bins, batch 32, Adam;
                  Fourier N = 12, gamma = 0 (Table 1's setting)
  audio encoder   toy_example_audio: AST-style spectrogram transformer (0.8 M parameters), 33 classes,
                  batch 64, bf16 autocast, AdamW + clipping; Fourier N = 2, gamma = 1e-6
  decision transformer   imitation-learning: the Atari DT (6 layers, 128 dims, context 30, conv state
                  encoder), 18 actions, batch 128, bf16 autocast, AdamW + clipping; Fourier N = 14, gamma = 1e-6
  chronos T5 mini  time-series-forecasting: T5-efficient-mini encoder-decoder, 4094 value bins, context
                  512, horizon 64, batch 32, bf16 autocast, fused AdamW + clipping; Fourier N = 550,
                  gamma = 1e-6 (linear = the tied embedding head)
A step is zero_grad + forward + loss (+ regulariser) + backward (+ clip) + optimizer step, timed with CUDA
events; the reported time is the median over interleaved rounds of the median of `--steps` steps.
`--modes compiled` puts the forward and the loss under torch.compile (default mode), for both heads.
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

from fourier_head import Fourier_Head, regularization_loss
from scaffold import git_commit

ROOT = Path(__file__).resolve().parents[2]


def load_module(folder: str, file: str, name: str):
    """An experiment's module, whose sibling imports need its folder on sys.path."""
    path = ROOT / folder
    sys.path.insert(0, str(path))
    try:
        spec = importlib.util.spec_from_file_location(name, path / file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # torch.compile looks modules up by name
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path))
    return module


def load_audio_module():
    return load_module("toy_example_audio", "train.py", "audio_train")


def toy_setup(head: str, device):
    torch.manual_seed(0)
    out = nn.Linear(32, 50) if head == "linear" else Fourier_Head(32, 50, 12)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), out).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randint(0, 50, (32, 2), device=device).float()
    y = torch.randint(0, 50, (32,), device=device)

    def loss():
        return F.cross_entropy(model(x), y) + regularization_loss(model)
    return model, opt, loss, None, "batch 32, Adam; Fourier N=12, gamma=0"


def audio_setup(head: str, device):
    audio = load_audio_module()
    cfg = audio.Config(head=head, num_frequencies=2, regularization_gamma=1e-6)
    torch.manual_seed(0)
    model = audio.TempoClassifier(32, cfg.num_frames, 33, cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    x = torch.randn(cfg.batch_size, 32, cfg.num_frames, device=device)
    y = torch.randint(0, 33, (cfg.batch_size,), device=device)

    def loss():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits, reg = model(x)
        return F.cross_entropy(logits.float(), y) + reg
    return model, opt, loss, cfg.grad_clip, f"batch {cfg.batch_size}, bf16 autocast, AdamW; Fourier N=2, gamma=1e-6"


def dt_setup(head: str, device, batch: int = 128):
    dt = load_module("imitation-learning", "model.py", "dt_model")
    torch.manual_seed(0)
    cfg = dt.DTConfig(head=head, num_frequencies=14 if head == "fourier" else 0, max_timestep=3000)
    model = dt.build_model(cfg).to(device)
    opt = torch.optim.AdamW(model.optim_groups(0.1), lr=6e-4, betas=(0.9, 0.95))
    t = cfg.context
    states = torch.randint(0, 256, (batch, t, 4, 84, 84), dtype=torch.uint8, device=device)
    actions = torch.randint(0, 18, (batch, t), device=device)
    rtg = torch.rand(batch, t, 1, device=device) * 1000
    timesteps = torch.randint(0, 2000, (batch, 1, 1), device=device)

    def loss():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(states, actions, rtg, timesteps)
        return model.loss(logits, actions)
    return model, opt, loss, 1.0, f"batch {batch} x context 30, bf16 autocast, AdamW; Fourier N=14, gamma=1e-6"


def chronos_setup(head: str, device, batch: int = 32, context: int = 512, horizon: int = 64):
    chronos = load_module("time-series-forecasting", "model.py", "chronos_model")
    torch.manual_seed(0)
    model = chronos.build_model(chronos.ModelConfig(size="mini", head=head, num_frequencies=550)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    ids = torch.randint(2, 4096, (batch, context), device=device)
    mask = torch.ones_like(ids)
    labels = torch.randint(2, 4096, (batch, horizon), device=device)

    def loss():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            return model.loss(ids, mask, labels)[0]
    return (model, opt, loss, 1.0,
            f"batch {batch}, context {context}, horizon {horizon}, bf16 autocast, AdamW; Fourier N=550, gamma=1e-6")


def make_step(setup, head: str, device, compiled: bool):
    """One training step: zero_grad, forward + loss (compiled with torch.compile if asked), backward,
    clipping, optimizer step."""
    model, opt, loss, clip, setting = setup(head, device)
    if compiled:
        loss = torch.compile(loss)

    def step():
        opt.zero_grad(set_to_none=True)
        loss().backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return step, setting


MODELS = {"toy MLP": toy_setup, "audio encoder": audio_setup, "decision transformer": dt_setup,
          "chronos T5 mini": chronos_setup}


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
    parser.add_argument("--commit", default=git_commit(),
                        help="commit of the code measured (default: git, else $FOURIER_HEAD_COMMIT)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--modes", nargs="+", default=["eager"], choices=["eager", "compiled"],
                        help="compiled: the forward and loss under torch.compile (both heads)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows, failed = [], []
    for name in args.models:
        for mode in args.modes:
            steps = {head: make_step(MODELS[name], head, device, mode == "compiled") for head in ("linear", "fourier")}
            times = {head: [] for head in steps}
            try:
                for _ in range(args.rounds):
                    for head, (step, _) in steps.items():
                        times[head].append(time_steps(step, device, args.steps))
            except RuntimeError as error:  # e.g. a model that does not compile: report it, measure the rest
                failed.append({"model": name, "mode": mode, "error": f"{type(error).__name__}: {error}"[:300]})
                print(f"failed: {name} ({mode}): {failed[-1]['error']}", flush=True)
                continue
            lin, four = statistics.median(times["linear"]), statistics.median(times["fourier"])
            rows.append({"model": name, "mode": mode, "setting": steps["fourier"][1], "linear_step_ms": round(lin, 4),
                         "fourier_step_ms": round(four, 4), "ratio": round(four / lin, 3)})
            del steps
            print(json.dumps(rows[-1]), flush=True)
    provenance = {
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "commit": args.commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "timing": f"median over {args.rounds} interleaved rounds of the median of {args.steps} training steps",
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"provenance": provenance, "rows": rows, "failed": failed}, indent=1) + "\n")
    if args.merge_into:  # replaces the rows of the modes run; keeps the others if measured on the same code
        data = json.loads(args.merge_into.read_text())
        old = data.get("end_to_end_provenance", {})
        same = all(old.get(k) == provenance[k] for k in ("gpu", "torch", "commit"))
        kept = [r for r in data.get("end_to_end", []) if same and r.get("mode", "eager") not in args.modes]
        data["end_to_end"] = kept + rows
        data["end_to_end_provenance"] = provenance
        args.merge_into.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    main()
