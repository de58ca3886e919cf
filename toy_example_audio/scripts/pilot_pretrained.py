"""CPU pilot that chose the pretrained arm's encoder input (results/pilot_pretrained.json).

It never reads the test split: it draws `--clips` clips from the standard split's TRAIN side only,
splits them again into pilot-train / pilot-validation (by tempo-stratified shuffling), embeds them once
with frozen CREPE-tiny at a `--hop` ms hop, and trains the small temporal model of pretrained.py
(frozen encoder: CREPE on a CPU runs ~130 frames/s, too slow to fine-tune here) on three inputs:

  crepe+rms   CREPE-tiny frame embeddings plus the frame log-RMS (the pretrained arm's input)
  crepe       the embeddings alone (CREPE normalises every frame, so its gain is gone)
  rms         the log-RMS alone: no pretrained encoder at all (a control)

with a linear head (narrower than pretrained.py's, and frozen inputs, to fit a CPU), reporting validation
accuracy / macro F1 / MSE (BPM^2) / NLL / ECE. The embedding cache (data/, not committed) is reused.

    python scripts/pilot_pretrained.py --clips 480 --hop 20 --epochs 20    # embedding ~20 min + training ~15 min
                                                                           # on 2 busy CPU cores
"""

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
import crepe_encoder  # noqa: E402
import data  # noqa: E402
import metrics  # noqa: E402
import pretrained  # noqa: E402
from scaffold import Field, parse_config, provenance, write_json  # noqa: E402

INPUTS = ("crepe+rms", "crepe", "rms")


@dataclass
class Config:
    clips: int = Field(480, "clips drawn from the standard split's train side", low=8, high=2817)
    hop: int = Field(20, "frame hop in ms", low=1, high=1000)
    epochs: int = Field(40, "training epochs", low=1)
    seeds: tuple = Field((0,), "seeds of the temporal model", low=0)
    width: int = Field(32, "temporal model width (pretrained.py: 128)", low=1)
    batch_size: int = Field(16, "batch size", low=1)
    lr: float = Field(1e-3, "AdamW learning rate", low=0.0, low_open=True)
    inputs: tuple = Field(INPUTS, "which inputs to train on", choices=INPUTS)
    cache: str = Field(str(HERE / "data" / "pilot_pretrained_cache.npz"), "embedding cache (not committed)")
    out: str = Field(str(HERE / "results" / "pilot_pretrained.json"), "where the pilot's table is written")


def embed_subset(clips: np.ndarray, hop: int, batch_frames: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    enc = crepe_encoder.CrepeEncoder("tiny").eval()
    embs, rms = [], []
    with torch.no_grad():
        for i, clip in enumerate(clips):
            frames = crepe_encoder.frame(torch.from_numpy(clip.astype(np.float32) / 32768.0)[None], hop)[0]
            rms.append(crepe_encoder.frame_log_rms(frames).numpy())
            embs.append(torch.cat([enc(frames[j:j + batch_frames]) for j in range(0, len(frames), batch_frames)])
                        .half().numpy())
            if i % 50 == 0:
                print(f"embedded {i}/{len(clips)}", flush=True)
    return np.stack(embs), np.stack(rms)


def main(argv=None) -> None:
    args = parse_config(Config, argv, description=__doc__)
    cache = Path(args.cache)
    torch.set_num_threads(2)
    start = time.time()
    p = data.DatasetParams()
    folder = data.build_dataset(p)
    audio, meta = data.load_clips(folder)
    train_idx, _ = data.split_indices(meta["bpm"], "standard", 42)    # the test side is never touched
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(train_idx, size=args.clips, replace=False))
    if cache.exists() and np.array_equal(np.load(cache)["index"], pick):
        z = np.load(cache)
        emb, rms = z["emb"], z["rms"]
    else:
        emb, rms = embed_subset(audio[pick], args.hop * p.sample_rate // 1000)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, index=pick, emb=emb, rms=rms)
    embed_seconds = time.time() - start
    y = data.bucket(meta["bpm"][pick], 5)
    centers = data.bucket_centers(5)
    tr, va = data.validation_split(np.arange(len(pick)), 0.25, seed=0)
    rms_n = (rms - rms[tr].mean()) / rms[tr].std()
    inputs = {"crepe+rms": np.concatenate([emb.astype(np.float32), rms_n[..., None]], -1),
              "crepe": emb.astype(np.float32), "rms": rms_n[..., None].astype(np.float32)}
    rows = []
    for name, x in ((k, inputs[k]) for k in args.inputs):
        x = torch.from_numpy(x)
        for seed in args.seeds:
            torch.manual_seed(seed)
            model = pretrained.TemporalModel(x.shape[-1], 33, "linear", 0, 1e-6, width=args.width)
            opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
            yt = torch.from_numpy(y)
            for epoch in range(args.epochs):
                model.train()
                order = torch.from_numpy(tr)[torch.randperm(len(tr))]
                for i in range(0, len(order), args.batch_size):
                    idx = order[i:i + args.batch_size]
                    out, reg = model(x[idx])
                    loss = F.cross_entropy(out, yt[idx]) + reg
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            model.eval()
            with torch.no_grad():
                pmfs = model(x[torch.from_numpy(va)])[0].softmax(-1).numpy()
            m = metrics.tempo_metrics(pmfs, y[va], centers)
            rows.append({"input": name, "seed": seed, **{k: round(m[k], 4) for k in
                                                          ("accuracy", "f1", "mse_bpm", "nll", "ece")}})
            print(rows[-1], flush=True)
    out = {"what": "frozen CREPE-tiny pilot on a subset of the standard split's train side (no test clips)",
           "clips": args.clips, "pilot_train": len(tr), "pilot_val": len(va), "hop_ms": args.hop,
           "epochs": args.epochs, "width": args.width, "batch_size": args.batch_size, "lr": args.lr,
           "head": "linear", "rows": rows,
           "provenance": provenance("cpu", crepe_weights=crepe_encoder.CrepeEncoder("tiny").weights_file,
                                    threads=torch.get_num_threads(), embed_seconds=round(embed_seconds, 1),
                                    total_seconds=round(time.time() - start, 1))}
    write_json(args.out, out, indent=2)
    print(json.dumps(out["rows"]))


if __name__ == "__main__":
    main()
