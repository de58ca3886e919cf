"""Train one Chronos-style model (paper v1 §6 / Table 3) on KernelSynth + TSMixup, on one or several GPUs.

    python train.py --head fourier --num-frequencies 550                 # paper config (200k steps!)
    python train.py --quick                                              # CPU smoke run (seconds), runs/quick/
    torchrun --nproc-per-node 8 train.py --head linear                   # DDP; --batch-size is global

Defaults are the paper's (T5-efficient-mini, context 512, horizon 64, lr 1e-3 linearly decayed to 0,
no warmup, AdamW, grad clip 1.0, global batch 256, 200k steps, mixed binning, gamma 1e-6, Fourier init
weight/1000 bias/10). Training data: KernelSynth shards (data.py; generated here if missing) and
TSMixup over the bundled training pool, mixed with probability p_kernel_synth.

The run directory (named from the config) gets config.json, env.json (scaffold.provenance: the commit
from git, or FOURIER_HEAD_COMMIT where the checkout has no .git), log.jsonl, checkpoint.pt (every
ckpt_every steps and at the end: model, optimizer, schedule, step, data RNG) and train.json when done.
An interrupted run resumes from checkpoint.pt (log.jsonl and curve.jsonl are cut back to the
checkpoint's step, so no step is logged twice); a finished one (train.json) with the same settings is
skipped; a directory holding a run with other settings stops the program with the differing fields
named (--force empties it and starts again). With --bench-steps K the run only times K steps after a
warm-up and prints tokens/s (no run dir). --max-seconds S checkpoints and stops after S seconds
(resumable). Every flag, with its range: python train.py --help.
"""

import importlib.util
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub look-ups (they stall without network)

import data as tsdata
from model import SIZES, ModelConfig, build_model, count_parameters
from scaffold import (Field, Tracker, config_dict, parse_config, prepare_run, provenance,
                      setup_distributed, write_json)
from tokenizer import Tokenizer

HERE = Path(__file__).resolve().parent


@dataclass
class Config:
    # model
    size: str = Field("mini", "T5 size (mini = t5-efficient-mini, the paper's; smoke = CPU tests)",
                      choices=tuple(SIZES))
    head: str = Field("fourier", "output head", choices=("linear", "fourier"))
    num_frequencies: int = Field(550, "Fourier head: number of frequencies", low=1)
    gamma: float = Field(1e-6, "Fourier head: regulariser weight (added to the loss)", low=0.0)
    binning: str = Field("mixed", "tokenizer: mixed (the paper's) | uniform (Chronos') | equal_width",
                         choices=("mixed", "uniform", "equal_width"))
    # optimisation
    steps: int = Field(200_000, "training steps", low=1)
    batch_size: int = Field(256, "global batch (split over DDP ranks)", low=1)
    lr: float = Field(1e-3, "AdamW learning rate, decayed linearly to 0", low=0.0, low_open=True)
    weight_decay: float = Field(0.0, "AdamW weight decay", low=0.0)
    grad_clip: float = Field(1.0, "gradient-norm clip", low=0.0, low_open=True)
    # training windows
    context_length: int = Field(512, "context values per window", low=1)
    prediction_length: int = Field(64, "label values per window", low=1)
    min_past: int = Field(60, "observed context values per window, at least", low=1)
    # training data
    p_kernel_synth: float = Field(0.1, "share of KernelSynth windows (the rest TSMixup)", low=0.0, high=1.0)
    kernel_synth_series: int = Field(200_000, "KernelSynth series (generated on the run's device, cached)",
                                     low=2)
    tsmixup_series: int = Field(200_000, "TSMixup mixtures of the training pool", low=2)
    series_length: int = Field(1024, "length of the generated series", low=tsdata.MIN_MIXUP_LENGTH)
    kernel_synth_dir: str = Field("", "KernelSynth cache (default data/kernelsynth-n<N>-L<length>-s<data_seed>-bank33)")
    pool: str = Field(str(tsdata.POOL), "TSMixup pool: a prepare_pool.py file, or 'benchmark' (the 96 series in benchmark.npz)")
    heldout_fraction: float = Field(0.01, "last share of both banks: never trained on, scored as held-out CE",
                                    low=0.0, high=0.5)
    heldout_every: int = Field(500, "held-out training-mix cross-entropy every this many steps (0: off)", low=0)
    heldout_windows: int = Field(512, "held-out windows", low=1)
    eval_every: int = Field(0, "benchmark evaluation every this many steps -> curve.jsonl (0: off)", low=0)
    eval_num_samples: int = Field(20, "sample paths of those evaluations", low=1)
    data_seed: int = Field(0, "KernelSynth/TSMixup sets (the same for every model seed)", low=0)
    seed: int = Field(0, "initialisation, training windows, dropout", low=0)
    dropout: float = Field(0.1, "T5 dropout", low=0.0, high=0.99)
    # system
    precision: str = Field("bf16", "bf16 autocast (on a GPU) | fp32", choices=("bf16", "fp32"))
    compile: bool = Field(False, "torch.compile the model's forward (same math; scripts/compile_check.py "
                          "compares its gradients with eager ones and times both)")
    ckpt_every: int = Field(1000, "checkpoint every this many steps (and at the end)", low=1)
    log_every: int = Field(50, "log.jsonl line every this many steps", low=1)
    out_dir: str = Field(str(HERE / "runs"), "where run directories go (--quick: runs/quick)")
    name: str = Field("", "run directory name (default from the config)")
    device: str = Field("auto", "auto | cpu | cuda | cuda:N (ignored under torchrun: LOCAL_RANK's GPU)")
    wandb: bool = Field(False, "also log to wandb (offline unless WANDB_MODE says otherwise)")
    bench_steps: int = Field(0, "time this many steps, print tokens/s and exit (0: train)", low=0)
    max_seconds: float = Field(0.0, "checkpoint and stop (resumable) after this many seconds (0: no limit)",
                               low=0.0)


QUICK = dict(size="smoke", steps=20, batch_size=8, context_length=64, prediction_length=8, min_past=8,
             kernel_synth_series=64, tsmixup_series=64, series_length=128, ckpt_every=10, log_every=5,
             heldout_every=10, heldout_windows=16, heldout_fraction=0.1,
             out_dir=str(HERE / "runs" / "quick"), kernel_synth_dir=str(HERE / "runs" / "quick" / "kernelsynth-bank33"),
             num_frequencies=64, precision="fp32", pool="benchmark")
# may differ between the runs of one directory (where it runs, how it is watched, not what it trains)
SYSTEM_FIELDS = ("device", "out_dir", "name", "kernel_synth_dir", "wandb", "bench_steps", "max_seconds", "compile")


def parse(argv=None) -> Config:
    """Flags -> a validated Config; any bad value ends the program with one line, before any work."""
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK, extra=lambda p: p.add_argument(
        "--force", action="store_true", help="empty a run directory that holds other settings and start again"))
    problem = None
    if cfg.wandb and importlib.util.find_spec("wandb") is None:
        problem = "--wandb needs the wandb package (pip install wandb)"
    elif cfg.min_past > cfg.context_length:
        problem = f"--min-past {cfg.min_past} is longer than --context-length {cfg.context_length}"
    elif cfg.min_past + cfg.prediction_length > tsdata.MIN_MIXUP_LENGTH:
        problem = (f"--min-past + --prediction-length must be <= {tsdata.MIN_MIXUP_LENGTH}, the shortest TSMixup "
                   f"series (got {cfg.min_past} + {cfg.prediction_length})")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    return cfg


def run_config(cfg: Config) -> dict:
    """What config.json holds (and what a rerun is compared with)."""
    return {**config_dict(cfg), "quick": bool(getattr(cfg, "_args", None) and cfg._args.quick)}


def run_name(cfg: Config) -> str:
    if cfg.name:
        return cfg.name
    head = "linear" if cfg.head == "linear" else f"fourier{cfg.num_frequencies}_g{cfg.gamma:g}"
    return f"{cfg.size}_{head}_{cfg.binning}_steps{cfg.steps}_seed{cfg.seed}"


def model_config(cfg: Config) -> ModelConfig:
    return ModelConfig(size=cfg.size, head=cfg.head, num_frequencies=cfg.num_frequencies, gamma=cfg.gamma,
                       dropout=cfg.dropout)


def gpu_name(device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def claim_run_dir(cfg: Config, rank: int):
    """The run directory and its state, 'new' | 'resume' | 'done' (scaffold.prepare_run on rank 0; under
    torchrun the other ranks get its answer, or stop with it when it refuses the directory)."""
    run_dir = Path(cfg.out_dir) / run_name(cfg)
    try:
        state = prepare_run(run_dir, run_config(cfg), force=cfg._args.force, ignore=SYSTEM_FIELDS,
                            done_file="train.json") if rank == 0 else None
    except SystemExit as refusal:
        state = refusal
    if dist.is_initialized():
        shared = [state]
        dist.broadcast_object_list(shared, src=0)
        state = shared[0]
    if isinstance(state, SystemExit):
        if dist.is_initialized():
            dist.destroy_process_group()
        raise SystemExit(state.code if rank == 0 else 1)  # the one line, printed once
    return run_dir, state


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------

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


@dataclass
class Data:
    tokenizer: Tokenizer
    sampler: tsdata.WindowSampler   # random training windows of this rank
    rng: torch.Generator            # the sampler's generator (checkpointed)
    held_context: torch.Tensor      # fixed held-out windows: the same for every run of a data_seed
    held_label: torch.Tensor
    local_batch: int

    def batch(self):
        context, label = self.sampler.sample(self.local_batch)
        ids, mask, scale = self.tokenizer.encode_context(context)
        labels, _ = self.tokenizer.encode(label, scale)
        return ids, mask, labels


def load_data(cfg: Config, device, rank: int, world: int) -> Data:
    (ks_bank, ks_held), (mix_bank, mix_held) = load_banks(cfg, device, rank)
    rng = torch.Generator(device=device).manual_seed(cfg.seed * 1000 + rank)  # each rank its own windows
    sampler = tsdata.WindowSampler(ks_bank, mix_bank, cfg.context_length, cfg.prediction_length, cfg.min_past,
                                   cfg.p_kernel_synth, rng)
    held_rng = torch.Generator(device=device).manual_seed(10_000 + cfg.data_seed)
    held_context, held_label = tsdata.WindowSampler(ks_held, mix_held, cfg.context_length, cfg.prediction_length,
                                                    cfg.min_past, cfg.p_kernel_synth, held_rng).sample(cfg.heldout_windows)
    return Data(Tokenizer(cfg.binning), sampler, rng, held_context, held_label, cfg.batch_size // world)


# ------------------------------------------------------------------------------------------------
# model, optimiser, one step
# ------------------------------------------------------------------------------------------------

@dataclass
class Learner:
    model: torch.nn.Module
    wrapped: torch.nn.Module         # the model, or its DDP wrapper
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    autocast: torch.autocast
    grad_clip: float

    def step(self, data: Data):
        """One optimisation step -> (loss, loss parts, gradient norm), on the device (no sync)."""
        ids, mask, labels = data.batch()
        with self.autocast:
            loss, parts = self.model.loss_from_log_probs(self.wrapped(ids, mask, labels), labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.opt.step()
        self.sched.step()
        return loss.detach(), parts, gnorm


def build(cfg: Config, device, world: int) -> Learner:
    torch.manual_seed(cfg.seed)  # same initialisation on every rank
    model = build_model(model_config(cfg)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                            fused=device.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / cfg.steps))
    wrapped = model
    if world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    if cfg.compile:  # the forward only: the loss (and the head's regulariser, read after it) stays eager
        wrapped = torch.compile(wrapped)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16" and device.type == "cuda")
    return Learner(model, wrapped, opt, sched, autocast, cfg.grad_clip)


@torch.no_grad()
def heldout_ce(learner: Learner, data: Data) -> float:
    """Mean cross-entropy (nats/token, dropout off) on the held-out windows."""
    model, tok, b = learner.model, data.tokenizer, data.local_batch
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(data.held_context), b):
        ids, mask, scale = tok.encode_context(data.held_context[start:start + b])
        labels, _ = tok.encode(data.held_label[start:start + b], scale)
        with learner.autocast:
            _, parts = model.loss_from_log_probs(model(ids, mask, labels), labels)
        n = int((labels != 0).sum())
        total, count = total + parts["ce"].item() * n, count + n
    model.train()
    return total / max(count, 1)


def benchmark_eval(cfg: Config, learner: Learner, data: Data, device, run_dir: Path, step: int):
    """Benchmark scores of the current weights (no smoothness pass) -> one line of curve.jsonl."""
    import evaluate as tseval
    learner.model.eval()
    res = tseval.evaluate_model(learner.model, data.tokenizer, cfg.context_length, num_samples=cfg.eval_num_samples,
                                smoothness_items=0, device=device)[0]
    learner.model.train()
    rec = dict(step=step, mase=res["mase"], wql=res["wql"], eval_seconds=res["eval_seconds"],
               per_dataset={k: dict(relative_mase=v["relative_mase"], relative_wql=v["relative_wql"])
                            for k, v in res["per_dataset"].items()})
    with open(run_dir / "curve.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"eval at step {step}: MASE {rec['mase']:.4f} WQL {rec['wql']:.4f} ({rec['eval_seconds']:.0f} s)")


# ------------------------------------------------------------------------------------------------
# bench mode: time a few steps, no run directory
# ------------------------------------------------------------------------------------------------

def bench(cfg: Config, learner: Learner, data: Data, device, rank: int, world: int):
    learner.model.train()
    for _ in range(10):  # warm-up
        learner.step(data)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(cfg.bench_steps):
        loss, _, _ = learner.step(data)
    loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / cfg.bench_steps
    if rank == 0:
        tokens_per_step = cfg.batch_size * (cfg.context_length + cfg.prediction_length)
        res = dict(run=run_name(cfg), world_size=world, seconds_per_step=dt, tokens_per_second=tokens_per_step / dt,
                   batch_size=cfg.batch_size, parameters=count_parameters(learner.model), gpu=gpu_name(device))
        print("BENCH " + json.dumps(res))


# ------------------------------------------------------------------------------------------------
# checkpoints, logs, the time budget
# ------------------------------------------------------------------------------------------------

def save_checkpoint(run_dir: Path, cfg: Config, learner: Learner, data: Data, step: int, wall_seconds: float,
                    device, rank: int, world: int):
    """checkpoint.pt, replaced atomically (rank 0; every rank's data RNG state is gathered)."""
    states = [data.rng.get_state().cpu()]
    if world > 1:
        states = [None] * world
        dist.all_gather_object(states, data.rng.get_state().cpu())
    if rank == 0:
        torch.save(dict(model=learner.model.state_dict(), optimizer=learner.opt.state_dict(),
                        scheduler=learner.sched.state_dict(), step=step, data_rng=states,
                        torch_rng=torch.get_rng_state(),
                        cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                        wall_seconds=wall_seconds, model_config=asdict(model_config(cfg)), binning=cfg.binning),
                   run_dir / "checkpoint.tmp")
        os.replace(run_dir / "checkpoint.tmp", run_dir / "checkpoint.pt")


def resume(run_dir: Path, learner: Learner, data: Data, device, rank: int):
    """(step, wall seconds so far) from checkpoint.pt, with every state restored; (0, 0.0) without one."""
    if not (run_dir / "checkpoint.pt").exists():
        return 0, 0.0
    ckpt = torch.load(run_dir / "checkpoint.pt", map_location=device, weights_only=False)
    learner.model.load_state_dict(ckpt["model"])
    learner.opt.load_state_dict(ckpt["optimizer"])
    learner.sched.load_state_dict(ckpt["scheduler"])
    data.rng.set_state(ckpt["data_rng"][rank].cpu())
    torch.set_rng_state(ckpt["torch_rng"].cpu())  # dropout
    if ckpt.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(ckpt["cuda_rng"].cpu(), device)
    if rank == 0:
        print(f"resuming {run_dir.name} at step {ckpt['step']}")
    return ckpt["step"], ckpt.get("wall_seconds", 0.0)


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop the lines of a log past `step` (written after the checkpoint a run resumes from)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    keep = [line for line in lines if json.loads(line)["step"] <= step]
    if len(keep) < len(lines):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        os.replace(tmp, path)
        print(f"{path.name}: dropped {len(lines) - len(keep)} line(s) past step {step}")


class TimeBudget:
    """--max-seconds: after that long every rank stops at the same (logged) step; 0 never stops."""

    def __init__(self, seconds: float, device):
        self.seconds, self.device, self.t0 = seconds, device, time.perf_counter()

    def spent(self) -> bool:
        if not self.seconds:
            return False
        stop = torch.tensor(float(time.perf_counter() - self.t0 > self.seconds), device=self.device)
        if dist.is_initialized():
            dist.all_reduce(stop)
        return stop.item() > 0


# ------------------------------------------------------------------------------------------------
# the training loop
# ------------------------------------------------------------------------------------------------

class StepLog:
    """log.jsonl (rank 0) and the tracker: loss and its parts, gradient norm, lr, tokens/s, held-out CE."""

    def __init__(self, cfg: Config, run_dir: Path, step: int, wall_before: float, rank: int, world: int,
                 tracker: Tracker):
        self.cfg, self.rank, self.world, self.tracker = cfg, rank, world, tracker
        self.tokens_per_step = cfg.batch_size * (cfg.context_length + cfg.prediction_length)
        self.wall_before, self.t0 = wall_before, time.perf_counter()
        self.t_last, self.step_last = self.t0, step
        self.file = open(run_dir / "log.jsonl", "a") if rank == 0 else None

    def wall_seconds(self) -> float:
        return self.wall_before + time.perf_counter() - self.t0

    def write(self, step: int, loss, parts: dict, gnorm, learner: Learner, data: Data):
        if self.world > 1:
            dist.all_reduce(loss)
            loss /= self.world
        if self.rank != 0:
            return None
        now = time.perf_counter()
        rec = dict(step=step, loss=loss.item(), ce=parts["ce"].item(), reg=parts["reg"].item(),
                   grad_norm=gnorm.item(), lr=learner.sched.get_last_lr()[0],
                   tokens_per_second=self.tokens_per_step * (step - self.step_last) / (now - self.t_last),
                   wall_seconds=self.wall_before + now - self.t0)
        if self.cfg.heldout_every and step % self.cfg.heldout_every == 0:
            rec["heldout_ce"] = heldout_ce(learner, data)
        self.t_last, self.step_last = now, step
        self.file.write(json.dumps(rec) + "\n")
        self.file.flush()
        self.tracker.log(rec, step=step)
        return rec

    def close(self):
        if self.file is not None:
            self.file.close()


def train(cfg: Config, run_dir: Path, learner: Learner, data: Data, device, rank: int, world: int, tracker: Tracker):
    step, wall_before = resume(run_dir, learner, data, device, rank)
    if rank == 0:
        for name in ("log.jsonl", "curve.jsonl"):
            truncate_jsonl(run_dir / name, step)
        import transformers
        write_json(run_dir / "env.json", provenance(device, gpu=gpu_name(device), hostname=platform.node(),
                                                    transformers=transformers.__version__, world_size=world))
    budget = TimeBudget(cfg.max_seconds, device)
    log = StepLog(cfg, run_dir, step, wall_before, rank, world, tracker)

    def save():
        save_checkpoint(run_dir, cfg, learner, data, step, log.wall_seconds(), device, rank, world)

    learner.model.train()
    bar = tqdm(total=cfg.steps, initial=step, desc=run_dir.name, disable=rank != 0, mininterval=5)
    try:
        while step < cfg.steps:
            loss, parts, gnorm = learner.step(data)
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.steps:
                rec = log.write(step, loss, parts, gnorm, learner, data)
                if rec:
                    bar.set_postfix(loss=f"{rec['loss']:.3f}")
            if cfg.eval_every and rank == 0 and step % cfg.eval_every == 0 and step < cfg.steps:
                benchmark_eval(cfg, learner, data, device, run_dir, step)  # the final step: evaluate.py
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                save()
            if step % cfg.log_every == 0 and step < cfg.steps and budget.spent():
                save()
                if rank == 0:
                    print(f"stopping {run_dir.name} at step {step}: --max-seconds {cfg.max_seconds} reached "
                          "(resumable)")
                break
    finally:
        bar.close()
        log.close()
    if rank == 0 and step >= cfg.steps:
        write_summary(run_dir, step, log.tokens_per_step, log.wall_seconds(), count_parameters(learner.model))


def write_summary(run_dir: Path, step: int, tokens_per_step: int, wall: float, parameters: int):
    """train.json: its presence marks the run finished."""
    records = [json.loads(line) for line in open(run_dir / "log.jsonl")]
    tail = [r["tokens_per_second"] for r in records[len(records) // 2:]]  # second half: past warm-up
    summary = dict(steps=step, tokens_seen=step * tokens_per_step, tokens_per_step=tokens_per_step,
                   wall_seconds=wall, tokens_per_second=float(np.median(tail)) if tail else None,
                   final_loss=records[-1]["loss"] if records else None, parameters=parameters)
    write_json(run_dir / "train.json", summary)
    print(f"done {run_dir.name}: {json.dumps(summary)}")


def main(argv=None):
    # config
    cfg = parse(argv)
    rank, world, device = setup_distributed(cfg.device)
    if cfg.batch_size % world:
        raise SystemExit(f"error: --batch-size {cfg.batch_size} is not divisible by {world} processes")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    run_dir, tracker = None, Tracker(False, "", {})
    if not cfg.bench_steps:
        run_dir, state = claim_run_dir(cfg, rank)
        if state == "done":
            if rank == 0:
                print(f"{run_dir} is finished with these settings (train.json exists): nothing to do")
            if dist.is_initialized():
                dist.destroy_process_group()
            return
        tracker = Tracker(cfg.wandb and rank == 0, "fourier-head-chronos", run_config(cfg), name=run_dir.name,
                          directory=run_dir)
    # data -> model -> loop (or the bench)
    data = load_data(cfg, device, rank, world)
    learner = build(cfg, device, world)
    if cfg.bench_steps:
        bench(cfg, learner, data, device, rank, world)
    else:
        train(cfg, run_dir, learner, data, device, rank, world, tracker)
    tracker.finish()
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
