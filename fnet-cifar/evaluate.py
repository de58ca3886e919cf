"""
Re-score a finished run: rebuild its model from config.json, load model.pt, and score every test image.

    python fnet-cifar/evaluate.py fnet-cifar/runs/converged/fashion-mnist/head/seed0
    python fnet-cifar/evaluate.py RUN_DIR --device cpu --data-dir /elsewhere

Prints the accuracy next to the one in metrics.json (they agree up to bf16 rounding when the device differs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

import train
from scaffold import pick_device


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="a run directory holding config.json, model.pt and metrics.json")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--data-dir", default=None, help="where the data set is, if not where the run found it")
    args = p.parse_args(argv)
    run = Path(args.run_dir)
    missing = [n for n in ("config.json", "model.pt") if not (run / n).is_file()]
    if missing:
        sys.exit(f"error: {run} is not a finished run directory (no {', '.join(missing)})")
    saved = json.loads((run / "config.json").read_text())
    fields = {f.name for f in dataclasses.fields(train.Config)}
    cfg = train.Config(**{k: v for k, v in saved.items() if k in fields})
    if args.data_dir:
        cfg = dataclasses.replace(cfg, data_dir=args.data_dir)
    device = pick_device(args.device)
    try:
        data, in_ch, (_, _, x_test, y_test) = train.load(cfg, device)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    model = train.build_model(cfg, in_ch, len(data.classes), data.shape[1:]).to(device)
    model.load_state_dict(torch.load(run / "model.pt", map_location=device, weights_only=True))
    amp = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    result = train.evaluate(model, x_test, y_test, in_ch, cfg.eval_batch_size, amp)
    logged = json.loads((run / "metrics.json").read_text())["test/acc"] if (run / "metrics.json").exists() else None
    print(json.dumps({"run": str(run), **result, "logged test/acc": logged}))


if __name__ == "__main__":
    main()
