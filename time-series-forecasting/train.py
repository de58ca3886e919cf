"""Train one Chronos-style model (paper v1 §6 / Table 3) on KernelSynth + TSMixup, on one or several GPUs.

    python train.py --head fourier --num-frequencies 550                 # paper config (200k steps!)
    python train.py --quick                                              # CPU smoke run (seconds)
    torchrun --nproc-per-node 8 train.py --head linear                   # DDP; --batch-size is global

Defaults are the paper's (T5-efficient-mini, context 512, horizon 64, lr 1e-3 linearly decayed to 0,
no warmup, AdamW, grad clip 1.0, global batch 256, 200k steps, mixed binning, gamma 1e-6, Fourier init
weight/1000 bias/10). Training data: KernelSynth shards (data.py; generated here if missing) and
TSMixup over the bundled training pool, mixed with probability p_kernel_synth.

The run directory (named from the config) gets config.json, env.json, log.jsonl, checkpoint.pt (every
ckpt_every steps and at the end: model, optimizer, schedule, step, data RNG) and train.json when
done. An interrupted run resumes from checkpoint.pt; a finished one (train.json) is skipped.
With --bench-steps K the run only times K steps after a warm-up and prints tokens/s (no run dir).
"""

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub look-ups (they stall without network)

import data as tsdata
from model import ModelConfig, build_model, count_parameters
from tokenizer import Tokenizer

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    size: str = "mini"
    head: str = "fourier"
    num_frequencies: int = 550
    gamma: float = 1e-6
    binning: str = "mixed"
    steps: int = 200_000
    batch_size: int = 256                 # global (split over DDP ranks)
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    context_length: int = 512
    prediction_length: int = 64
    min_past: int = 60
    p_kernel_synth: float = 0.1           # the paper's share of KernelSynth windows (TSMixup 0.9)
    kernel_synth_series: int = 200_000    # generated on the run's device, cached under data/ (data.py)
    tsmixup_series: int = 200_000         # mixtures of the training pool (benchmark/training_pool.npz)
    series_length: int = 1024
    kernel_synth_dir: str = ""            # default data/kernelsynth-n<N>-L<length>-s<data_seed>-bank33
    pool: str = str(tsdata.POOL)          # TSMixup pool (prepare_pool.py)
    heldout_fraction: float = 0.01        # last 1% of both banks: never trained on, scored every heldout_every
    heldout_every: int = 500              # held-out training-mix cross-entropy (0: off)
    heldout_windows: int = 512
    eval_every: int = 0                   # >0: benchmark evaluation every this many steps -> curve.jsonl
    eval_num_samples: int = 20
    data_seed: int = 0                    # KernelSynth/TSMixup sets (the same for every model seed)
    seed: int = 0
    dropout: float = 0.1
    precision: str = "bf16"               # bf16 autocast (GPU) | fp32
    ckpt_every: int = 1000
    log_every: int = 50
    out_dir: str = str(HERE / "runs")
    name: str = ""                        # run directory name; default from the config
    device: str = "auto"
    wandb: bool = False                   # optional; offline unless WANDB_MODE says otherwise
    bench_steps: int = 0                  # >0: time this many steps and exit
    max_seconds: float = 0.0              # >0: checkpoint and stop (unfinished, resumable) after this long
    quick: bool = False


QUICK = dict(size="smoke", steps=20, batch_size=8, context_length=64, prediction_length=8, min_past=8,
             kernel_synth_series=64, tsmixup_series=64, series_length=128, ckpt_every=10, log_every=5,
             heldout_every=10, heldout_windows=16, heldout_fraction=0.1,
             out_dir=str(HERE / "runs" / "quick"), kernel_synth_dir=str(HERE / "runs" / "quick" / "kernelsynth-bank33"),
             num_frequencies=64, precision="fp32")


def parse_config(argv=None) -> Config:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            p.add_argument(flag, type=type(f.default), default=None, help=f"default {f.default}")
    args = {k: v for k, v in vars(p.parse_args(argv)).items() if v is not None}
    values = dict(QUICK) if args.get("quick") else {}
    values.update(args)
    cfg = Config(**values)
    if cfg.head not in ("linear", "fourier"):
        p.error(f"--head must be linear or fourier, got {cfg.head!r}")
    if cfg.binning not in ("mixed", "uniform", "equal_width"):
        p.error(f"--binning must be mixed, uniform or equal_width, got {cfg.binning!r}")
    return cfg


def run_name(cfg: Config) -> str:
    if cfg.name:
        return cfg.name
    head = "linear" if cfg.head == "linear" else f"fourier{cfg.num_frequencies}_g{cfg.gamma:g}"
    return f"{cfg.size}_{head}_{cfg.binning}_steps{cfg.steps}_seed{cfg.seed}"


def model_config(cfg: Config) -> ModelConfig:
    return ModelConfig(size=cfg.size, head=cfg.head, num_frequencies=cfg.num_frequencies, gamma=cfg.gamma,
                       dropout=cfg.dropout)


def environment(device) -> dict:
    commit = os.environ.get("GIT_COMMIT", "")  # set it where the checkout has no (or a stale) .git
    if not commit:
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                    text=True).stdout.strip()
        except OSError:
            commit = ""
    import transformers
    return dict(python=platform.python_version(), torch=torch.__version__, transformers=transformers.__version__,
                numpy=np.__version__, gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                commit=commit, hostname=platform.node(),
                world_size=int(os.environ.get("WORLD_SIZE", "1")))


def load_banks(cfg: Config, device, rank: int):
    """KernelSynth (cached; generated on rank 0's device if missing) and TSMixup banks on `device`, each split
    into (training, held-out) series: the last `heldout_fraction` of each bank is never trained on."""
    ks_dir = Path(cfg.kernel_synth_dir) if cfg.kernel_synth_dir else tsdata.kernel_synth_dir(
        cfg.kernel_synth_series, cfg.series_length, cfg.data_seed)
    t0 = time.perf_counter()
    if rank == 0:
        ks = tsdata.kernel_synth_cached(ks_dir, cfg.kernel_synth_series, cfg.series_length, seed=cfg.data_seed,
                                        device=device)
    if dist.is_initialized():
        dist.barrier()
    if rank != 0:
        ks = tsdata.read_shards(ks_dir)
    pool, info, _ = tsdata.load_pool(cfg.pool)
    mix = tsdata.tsmixup(pool, cfg.tsmixup_series, cfg.series_length, seed=cfg.data_seed,
                         weights=tsdata.item_weights(info["items"]))
    if rank == 0:
        print(f"data: {len(ks)} KernelSynth + {len(mix)} TSMixup series ({len(pool)} pool series) "
              f"in {time.perf_counter() - t0:.0f} s")
    banks = []
    for bank in (ks, mix):
        n_held = max(1, int(round(len(bank) * cfg.heldout_fraction)))
        t = torch.tensor(bank, device=device)
        banks.append((t[:-n_held], t[-n_held:]))
    return banks


def main(cfg: Config):
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if ddp:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}") if torch.cuda.is_available() else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    else:
        rank, world = 0, 1
        device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)
    if cfg.batch_size % world:
        raise SystemExit(f"error: --batch-size {cfg.batch_size} is not divisible by {world} processes")
    local_batch = cfg.batch_size // world
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    run_dir = Path(cfg.out_dir) / run_name(cfg)
    if not cfg.bench_steps and (run_dir / "train.json").exists():
        if rank == 0:
            print(f"{run_dir} is finished (train.json exists), skipping")
        return

    # ---- data -------------------------------------------------------------------------------------
    tokenizer = Tokenizer(cfg.binning)
    (ks_bank, ks_held), (mix_bank, mix_held) = load_banks(cfg, device, rank)
    gen = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank)  # each rank its own windows
    sampler = tsdata.WindowSampler(ks_bank, mix_bank, cfg.context_length, cfg.prediction_length, cfg.min_past,
                                   cfg.p_kernel_synth, gen)
    # a fixed set of held-out windows (same for every run of this data_seed): the training-mix cross-entropy
    held_gen = torch.Generator(device=device).manual_seed(10_000 + cfg.data_seed)
    held_ctx, held_label = tsdata.WindowSampler(ks_held, mix_held, cfg.context_length, cfg.prediction_length,
                                                cfg.min_past, cfg.p_kernel_synth, held_gen).sample(cfg.heldout_windows)

    def batch():
        context, label = sampler.sample(local_batch)
        ids, mask, scale = tokenizer.encode_context(context)
        labels, _ = tokenizer.encode(label, scale)
        return ids, mask, labels

    # ---- model ------------------------------------------------------------------------------------
    torch.manual_seed(cfg.seed)  # same initialisation on every rank
    model = build_model(model_config(cfg)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=device.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / cfg.steps))
    wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None) if ddp else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16" and device.type == "cuda")
    tokens_per_step = cfg.batch_size * (cfg.context_length + cfg.prediction_length)

    def step_fn():
        ids, mask, labels = batch()
        with autocast:
            loss, parts = model.loss_from_log_probs(wrapped(ids, mask, labels), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        return loss.detach(), parts, gnorm

    @torch.no_grad()
    def heldout_ce() -> float:
        """Mean cross-entropy (nats/token, dropout off) on the held-out windows."""
        model.eval()
        total, count = 0.0, 0
        for start in range(0, len(held_ctx), local_batch):
            ids, mask, scale = tokenizer.encode_context(held_ctx[start:start + local_batch])
            labels, _ = tokenizer.encode(held_label[start:start + local_batch], scale)
            with autocast:
                _, parts = model.loss_from_log_probs(model(ids, mask, labels), labels)
            n = int((labels != 0).sum())
            total, count = total + parts["ce"].item() * n, count + n
        model.train()
        return total / max(count, 1)

    def benchmark_eval(step: int):
        """Benchmark scores of the current weights (no smoothness pass) -> one line of curve.jsonl."""
        import evaluate as tseval
        model.eval()
        res = tseval.evaluate_model(model, tokenizer, cfg.context_length, num_samples=cfg.eval_num_samples,
                                    smoothness_items=0, device=device)[0]
        model.train()
        rec = dict(step=step, mase=res["mase"], wql=res["wql"], eval_seconds=res["eval_seconds"],
                   per_dataset={k: dict(relative_mase=v["relative_mase"], relative_wql=v["relative_wql"])
                                for k, v in res["per_dataset"].items()})
        with open(run_dir / "curve.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"eval at step {step}: MASE {rec['mase']:.4f} WQL {rec['wql']:.4f} ({rec['eval_seconds']:.0f} s)")

    if cfg.bench_steps:
        model.train()
        for _ in range(10):
            step_fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(cfg.bench_steps):
            loss, _, _ = step_fn()
        loss.item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / cfg.bench_steps
        if rank == 0:
            res = dict(run=run_name(cfg), world_size=world, seconds_per_step=dt, tokens_per_second=tokens_per_step / dt,
                       batch_size=cfg.batch_size, parameters=count_parameters(model), gpu=environment(device)["gpu"])
            print("BENCH " + json.dumps(res))
        if ddp:
            dist.destroy_process_group()
        return

    step, wall_before = 0, 0.0
    if (run_dir / "checkpoint.pt").exists():
        ckpt = torch.load(run_dir / "checkpoint.pt", map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"]); opt.load_state_dict(ckpt["optimizer"]); sched.load_state_dict(ckpt["scheduler"])
        step, wall_before = ckpt["step"], ckpt.get("wall_seconds", 0.0)
        gen.set_state(ckpt["data_rng"][rank].cpu())
        torch.set_rng_state(ckpt["torch_rng"].cpu())  # dropout
        if ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"].cpu(), device)
        if rank == 0:
            print(f"resuming {run_dir.name} at step {step}")
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
        (run_dir / "env.json").write_text(json.dumps(environment(device), indent=1))
    wb = None
    if cfg.wandb and rank == 0:
        import wandb  # optional dependency
        os.environ.setdefault("WANDB_MODE", "offline")
        wb = wandb.init(project="fourier-head-chronos", name=run_dir.name, config=dataclasses.asdict(cfg), dir=str(run_dir))

    def save(final=False):
        states = [gen.get_state().cpu()]
        if ddp:
            states = [None] * world
            dist.all_gather_object(states, gen.get_state().cpu())
        if rank == 0:
            torch.save(dict(model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                            step=step, data_rng=states, torch_rng=torch.get_rng_state(),
                            cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda" else None, wall_seconds=wall_before + time.perf_counter() - t_start,
                            model_config=dataclasses.asdict(model_config(cfg)), binning=cfg.binning),
                       run_dir / "checkpoint.tmp")
            os.replace(run_dir / "checkpoint.tmp", run_dir / "checkpoint.pt")

    model.train()
    t_start = time.perf_counter()
    t_log, step_log = time.perf_counter(), step
    bar = tqdm(total=cfg.steps, initial=step, desc=run_dir.name, disable=rank != 0, mininterval=5)
    log = open(run_dir / "log.jsonl", "a") if rank == 0 else None
    while step < cfg.steps:
        loss, parts, gnorm = step_fn()
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            if ddp:
                dist.all_reduce(loss); loss /= world
            if rank == 0:
                now = time.perf_counter()
                rec = dict(step=step, loss=loss.item(), ce=parts["ce"].item(), reg=parts["reg"].item(),
                           grad_norm=gnorm.item(), lr=sched.get_last_lr()[0],
                           tokens_per_second=tokens_per_step * (step - step_log) / (now - t_log),
                           wall_seconds=wall_before + now - t_start)
                if cfg.heldout_every and step % cfg.heldout_every == 0:
                    rec["heldout_ce"] = heldout_ce()
                t_log, step_log = now, step
                log.write(json.dumps(rec) + "\n"); log.flush()
                bar.set_postfix(loss=f"{rec['loss']:.3f}")
                if wb:
                    wb.log(rec, step=step)
        if cfg.eval_every and rank == 0 and step % cfg.eval_every == 0 and step < cfg.steps:
            benchmark_eval(step)  # the final step is scored by evaluate.py (with smoothness)
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            save()
        if cfg.max_seconds and step % cfg.log_every == 0 and step < cfg.steps:
            stop = torch.tensor(float(time.perf_counter() - t_start > cfg.max_seconds), device=device)
            if ddp:
                dist.all_reduce(stop)  # every rank stops at the same step
            if stop.item() == 0:
                continue
            save()
            if rank == 0:
                print(f"stopping {run_dir.name} at step {step}: --max-seconds {cfg.max_seconds} reached (resumable)")
            break
    bar.close()
    if rank == 0 and step >= cfg.steps:
        wall = wall_before + time.perf_counter() - t_start
        records = [json.loads(line) for line in open(run_dir / "log.jsonl")]
        tail = [r["tokens_per_second"] for r in records[len(records) // 2:]]  # second half: past warm-up
        summary = dict(steps=step, tokens_seen=step * tokens_per_step, tokens_per_step=tokens_per_step,
                       wall_seconds=wall, tokens_per_second=float(np.median(tail)) if tail else None,
                       final_loss=records[-1]["loss"] if records else None, parameters=count_parameters(model))
        (run_dir / "train.json").write_text(json.dumps(summary, indent=1))
        print(f"done {run_dir.name}: {json.dumps(summary)}")
        if wb:
            wb.finish()
    if ddp:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(parse_config())
