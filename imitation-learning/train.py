"""Train one Decision Transformer (linear or Fourier head) on the offline dataset; evaluate online after
every epoch. Paper v1 §5 / Table 2.

    python train.py --head fourier --num-frequencies 14 --seed 123           # the paper's setting (GPU)
    python train.py --dataset dqn-replay-like --head linear --seed 123       # on the DQN-replay-like data
    python train.py --quick                                                  # tiny CPU smoke run, runs/quick/
    torchrun --nproc-per-node 4 train.py --head linear --seed 123           # several GPUs (DDP)

Training as the reference: AdamW 6e-4, betas (0.9, 0.95), weight decay 0.1 on matmul weights, gradient
clip 1.0, linear warmup over 512*20 tokens then cosine decay to 10% at 2 * epoch_samples * 90 tokens,
batch 128, 5 epochs of `epoch_samples` windows (default: one per transition, as the reference). The
Fourier regulariser (gamma = 1e-6) IS added to the loss (the reference computed it and dropped it).
After each epoch: cross-entropy on test windows, then `eval_episodes` (10) online episodes with the
game's target return; the next-action PMFs of every rollout step give the smoothness. After the last
epoch, a final evaluation of `final_eval_episodes` (50) episodes on other env seeds (seed + 1000) gives
the run's final return; the best epoch is the best of the per-epoch evaluations (the reference's protocol).
The training loss is logged as its two terms: the cross-entropy and the Fourier regulariser.

Writes, for `--dataset ppo-sampled` (the first data; its committed results use this layout)
runs/<game>/<head>/seed<k>/, for any other dataset runs/<dataset>/<game>/<head>/seed<k>/ (`run_dir`):
config.json, env.json (versions, GPU, commit, the hashes of the data trained on), history.json (after
every epoch), pmf_trace_epoch<e>.npz, pmf_trace_final.npz, ckpt.pt (every `ckpt_every` steps, every
epoch and after the final evaluation; a rerun with the same settings resumes from it) and metrics.json
last (written atomically; its presence marks the run finished, and a rerun with the same settings then
exits at once). A rerun with other settings in the same folder stops with one line naming the fields
that differ (use another --out-dir, or --force to start that folder afresh); one on other data (hashes)
is refused. Bad flags (--epochs 0, --head nosuch, --device cuda without a GPU, ...) and missing data stop
with one line before any work. --wandb also logs to wandb (offline unless WANDB_MODE says otherwise).
"""

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

import atari
import scaffold
from dataset import WindowDataset, window_starts
from fourier_head import smoothness
from make_dataset import DATASETS
from model import DTConfig, build_model, num_params
from rollout import play
from scaffold import Field, Tracker, config_dict, prepare_run, provenance, setup_distributed, write_json

HERE = Path(__file__).resolve().parent
LEGACY_DATASET = "ppo-sampled"    # the first dataset: its runs keep the layout runs/<game>/<head>/seed<k>
FINAL_EVAL_SEED_OFFSET = 1000     # the final evaluation's env seeds: seed + 1000 + i (per epoch: seed + epoch + i)
# fields that may differ when a run resumes (where and how long it runs, not what it computes)
IDENTITY_IGNORE = ("device", "max_seconds", "eval_threads", "final_eval_threads", "ckpt_every", "data_dir",
                   "out_dir", "quick")
# what train.py adds to config.json once it knows the data and the speed (never compared)
DERIVED = ("epoch_samples_resolved", "steps_per_epoch", "world_size", "num_params", "train_transitions",
           "train_windows", "sized_by_time_budget")


@dataclass
class Config:
    # data
    game: str = Field("Seaquest", "Atari game", choices=tuple(atari.GAMES))
    dataset: str = Field("ppo-sampled", "offline data (make_dataset.DATASETS): picks the data and run folders",
                         choices=tuple(DATASETS))
    data_dir: str = Field("", "default: the dataset's (data/<game>, data/dqn-replay-like/<game>; --quick: under "
                          "runs/quick/)")
    # model
    head: str = Field("linear", "action head", choices=("linear", "fourier"))
    num_frequencies: int = Field(0, "the Fourier head's N (>= 1 with --head fourier; 0 with linear)", low=0)
    gamma: float = Field(1e-6, "weight of the Fourier regulariser, added to the loss", low=0.0)
    context: int = Field(30, "steps per window (3 tokens each)", low=1)
    n_layer: int = Field(6, "transformer blocks", low=1)
    n_head: int = Field(8, "attention heads (must divide --n-embd)", low=1)
    n_embd: int = Field(128, "embedding width", low=1)
    dropout: float = Field(0.1, "dropout probability", low=0.0, high=0.999)
    # optimisation
    seed: int = Field(123, "seeds the model, the window order and the evaluation games", low=0)
    epochs: int = Field(5, "epochs of epoch_samples windows", low=1)
    epoch_samples: int = Field(0, "windows per epoch; 0: one per transition (the reference)", low=0)
    time_budget: float = Field(0.0, ">0: size epoch_samples so that training + evaluations fit this many seconds, "
                               "from the speed measured over steps 100-200 (single process)", low=0.0)
    eval_reserve: float = Field(25.0, "seconds set aside per evaluation when sizing by --time-budget", low=0.0)
    batch_size: int = Field(128, "global batch (split over DDP ranks)", low=1)
    lr: float = Field(6e-4, "AdamW peak learning rate", low=0.0, low_open=True)
    beta1: float = Field(0.9, "AdamW beta1", low=0.0, high=0.999999)
    beta2: float = Field(0.95, "AdamW beta2", low=0.0, high=0.999999)
    weight_decay: float = Field(0.1, "AdamW weight decay on the matmul weights", low=0.0)
    grad_clip: float = Field(1.0, "gradient norm clip", low=0.0, low_open=True)
    warmup_tokens: int = Field(512 * 20, "tokens of linear learning-rate warmup", low=0)
    # evaluation
    eval_episodes: int = Field(10, "online episodes after every epoch", low=1)
    final_eval_episodes: int = Field(50, "episodes of the final evaluation after the last epoch (0: none; the "
                                     "run's final return is then the last epoch's)", low=0)
    final_eval_threads: int = Field(0, "ALE threads of the final evaluation; 0: eval_threads", low=0)
    target_return: float = Field(0.0, "return the DT is conditioned on; 0: the game's (Seaquest 1150)")
    temperature: float = Field(1.0, "sampling temperature of the rollouts", low=0.0, low_open=True)
    eval_max_steps: int = Field(0, "0: until every episode ends (the env caps them at 108k frames)", low=0)
    eval_threads: int = Field(2, "ALE threads of the per-epoch evaluations (0: one per core)", low=0)
    test_windows: int = Field(4096, "test windows for the held-out cross-entropy", low=1)
    # system
    amp: bool = Field(True, "bf16 autocast on a GPU (the Fourier head runs in float32 regardless)")
    ckpt_every: int = Field(500, "steps between checkpoints", low=1)
    max_seconds: float = Field(0.0, "stop cleanly (checkpoint) after this wall time; 0: no limit", low=0.0)
    out_dir: str = Field("", "default: run_dir(...) under runs/ (--quick: runs/quick/)")
    device: str = Field("auto", "auto | cpu | cuda | cuda:N")


QUICK = dict(epochs=1, epoch_samples=64, batch_size=16, n_layer=1, n_head=2, n_embd=32, context=8,
             eval_episodes=1, final_eval_episodes=2, eval_max_steps=40, test_windows=32, ckpt_every=2, amp=False)


def head_name(cfg) -> str:
    return "linear" if cfg.head == "linear" else f"fourier{cfg.num_frequencies}"


def run_dir(runs: Path, dataset: str, game: str, head: str, seed: int) -> Path:
    """runs/<game>/<head>/seed<k> for ppo-sampled (the committed results' layout), runs/<dataset>/<game>/
    <head>/seed<k> for every other dataset. Dataset names are never game names, so the two never meet."""
    base = Path(runs) / game if dataset == LEGACY_DATASET else Path(runs) / dataset / game
    return base / head / f"seed{seed}"


def extra_flags(parser) -> None:
    parser.add_argument("--force", action="store_true", help="start afresh in a run folder that holds a run "
                        "(other settings, or finished)")
    parser.add_argument("--wandb", action="store_true", help="also log to wandb (offline unless WANDB_MODE says "
                        "otherwise)")


# ---- 1. config ------------------------------------------------------------------------------------

def parse_config(argv=None) -> Config:
    """Flags -> a validated Config with its folders and target return filled in (one line per bad value)."""
    cfg = scaffold.parse_config(Config, argv, description=__doc__, quick=QUICK, extra=extra_flags)
    if (cfg.head == "fourier") != (cfg.num_frequencies > 0):
        raise SystemExit("error: --head linear (no --num-frequencies) or --head fourier --num-frequencies N (N >= 1)")
    if cfg.n_embd % cfg.n_head:
        raise SystemExit(f"error: --n-head {cfg.n_head} must divide --n-embd {cfg.n_embd}")
    quick = cfg._args.quick
    root = HERE / "runs/quick" if quick else HERE
    cfg.data_dir = cfg.data_dir or str(root / DATASETS[cfg.dataset]["data"].format(game=cfg.game))
    cfg.out_dir = cfg.out_dir or str(run_dir(HERE / "runs" / ("quick" if quick else ""), cfg.dataset, cfg.game,
                                             head_name(cfg), cfg.seed))
    cfg.target_return = cfg.target_return or atari.GAMES[cfg.game]["target_return"]
    return cfg


def run_config(cfg: Config) -> dict:
    """The run's identity as config.json stores it (plus `quick`: aggregate.py keeps quick runs out of results/)."""
    return {**config_dict(cfg), "quick": cfg._args.quick}


def data_identity(data_dir: Path, dataset: str) -> dict:
    """What the run trains on, from the dataset's manifest: its name and the hashes of the actions and rewards
    of each split (the frames follow from the snapshots and seeds). Refuses data of another dataset."""
    path = Path(data_dir) / "manifest.json"
    if not path.exists():
        return {"dataset_manifest": None, "data_sha256_actions_rewards": None}
    m = json.loads(path.read_text())
    found = m.get("dataset", LEGACY_DATASET)
    if found != dataset:
        raise SystemExit(f"error: {data_dir} holds the {found} dataset, not {dataset} (--dataset or --data-dir)")
    return {"dataset_manifest": str(path), "data_dataset": found,
            "data_sha256_actions_rewards": {k: v.get("sha256_actions_rewards") for k, v in m["splits"].items()}}


def check_data(cfg: Config) -> dict:
    """The data must be there and be the dataset asked for; returns data_identity."""
    data = Path(cfg.data_dir)
    for split in ("train", "test"):
        if not (data / split / "frames.npy").exists():
            how = "--quick " if cfg._args.quick else ""
            how += "" if cfg.dataset == LEGACY_DATASET else f"--dataset {cfg.dataset} "
            raise SystemExit(f"error: no dataset at {data} ({split} split missing): run `python make_dataset.py "
                             f"{how}--game {cfg.game}` first, or give --data-dir")
    if cfg.epoch_samples:  # an epoch visits each window at most once
        windows = len(window_starts(np.load(data / "train" / "episode_starts.npy"), cfg.context))
        if cfg.epoch_samples > windows:
            raise SystemExit(f"error: --epoch-samples {cfg.epoch_samples} is more than the {windows} windows of "
                             f"{data / 'train'} (context {cfg.context})")
    return data_identity(data, cfg.dataset)


def claim_run(cfg: Config, ident: dict, rank: int, world: int) -> str:
    """scaffold.prepare_run on rank 0: 'new', 'resume' (same settings, not finished) or 'done'; other settings
    stop here with one line naming them (--force starts afresh). A resumed run must see the same data."""
    out = Path(cfg.out_dir)
    status = None
    if rank == 0:
        try:
            status = prepare_run(out, run_config(cfg), force=cfg._args.force, ignore=IDENTITY_IGNORE + DERIVED)
            if status == "resume" and (out / "env.json").exists():
                before = json.loads((out / "env.json").read_text()).get("data_sha256_actions_rewards")
                if before and ident["data_sha256_actions_rewards"] and before != ident["data_sha256_actions_rewards"]:
                    raise SystemExit(f"error: the data in {cfg.data_dir} differs from what {out} trained on (hashes)")
        except SystemExit as refusal:
            if world == 1:
                raise
            status = refusal.code  # told to every process, so that all of them stop
    if world > 1:
        shared = [status]
        dist.broadcast_object_list(shared, src=0)
        status = shared[0]
        if status not in ("new", "resume", "done"):
            dist.destroy_process_group()
            raise SystemExit(status if rank == 0 else 1)
    return status


# ---- 2. data, 3. model ----------------------------------------------------------------------------

def load_data(cfg: Config, device):
    """Train and test windows on the device, and the fixed test windows of the held-out cross-entropy."""
    train_data = WindowDataset(Path(cfg.data_dir) / "train", cfg.context, device)
    test_data = WindowDataset(Path(cfg.data_dir) / "test", cfg.context, device)
    g = torch.Generator().manual_seed(cfg.seed)
    test_ids = torch.randperm(len(test_data), generator=g)[:cfg.test_windows].to(device)
    return train_data, test_data, test_ids


def build(cfg: Config, max_timestep: int, device):
    """The DT of the paper with the chosen head, and AdamW with weight decay on the matmul weights."""
    model = build_model(DTConfig(context=cfg.context, n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                                 dropout=cfg.dropout, max_timestep=max_timestep, head=cfg.head,
                                 num_frequencies=cfg.num_frequencies, gamma=cfg.gamma)).to(device)
    optimizer = torch.optim.AdamW(model.optim_groups(cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                  fused=device.type == "cuda")
    return model, optimizer


def lr_multiplier(cfg, tokens: int, final_tokens: int) -> float:
    """The reference schedule: linear warmup, then cosine down to 10% (floor) at final_tokens."""
    if tokens < cfg.warmup_tokens:
        return tokens / max(1, cfg.warmup_tokens)
    progress = (tokens - cfg.warmup_tokens) / max(1, final_tokens - cfg.warmup_tokens)
    return max(0.1, 0.5 * (1.0 + math.cos(math.pi * progress)))


@dataclass
class Schedule:
    """The epoch size and what follows from it: steps per epoch and the end of the cosine decay."""
    cfg: Config
    epoch_samples: int

    @property
    def steps_per_epoch(self) -> int:
        return self.epoch_samples // self.cfg.batch_size

    @property
    def final_tokens(self) -> int:
        return 2 * self.epoch_samples * self.cfg.context * 3

    def lr(self, tokens: int) -> float:
        return self.cfg.lr * lr_multiplier(self.cfg, tokens, self.final_tokens)


@dataclass
class Run:
    """What the steps of one training process share: where it runs, the model, the optimizer and the
    progress (`state`, saved in ckpt.pt with the weights, the optimizer and the RNG states)."""
    cfg: Config
    out: Path
    device: torch.device
    rank: int
    world: int
    amp: bool
    model: torch.nn.Module        # DDP-wrapped under torchrun
    raw_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    state: dict
    schedule: Schedule
    t_start: float
    wall_before: float = 0.0      # earlier processes of this run (resumed)

    def out_of_time(self) -> bool:
        return bool(self.cfg.max_seconds) and time.time() - self.t_start > self.cfg.max_seconds

    def wall_seconds(self) -> float:
        return self.wall_before + time.time() - self.t_start

    def save_checkpoint(self) -> None:
        self.state["wall_seconds"] = self.wall_seconds()
        if self.rank == 0:
            tmp = self.out / "ckpt.pt.tmp"
            torch.save({"model": self.raw_model.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "state": self.state, "rng_cpu": torch.get_rng_state(),
                        "rng_cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}, tmp)
            tmp.replace(self.out / "ckpt.pt")

    def write_config(self, train_data: WindowDataset) -> None:
        write_json(self.out / "config.json", {**run_config(self.cfg), "epoch_samples_resolved": self.schedule.epoch_samples,
                                              "steps_per_epoch": self.schedule.steps_per_epoch, "world_size": self.world,
                                              "num_params": num_params(self.raw_model),
                                              "train_transitions": train_data.num_transitions,
                                              "train_windows": len(train_data),
                                              "sized_by_time_budget": self.cfg.time_budget > 0})


def start_or_resume(cfg: Config, model, optimizer, device, train_data: WindowDataset, rank: int) -> dict:
    """The progress: from ckpt.pt when the folder holds one (weights, optimizer and RNG states restored), else new."""
    ckpt = Path(cfg.out_dir) / "ckpt.pt"
    if not ckpt.exists():
        # with time_budget, epoch_samples stays None until the speed is measured
        return {"epoch": 0, "step": 0, "tokens": 0, "history": [], "train_seconds": 0.0,
                "epoch_samples": None if cfg.time_budget > 0 else cfg.epoch_samples or len(train_data)}
    blob = torch.load(ckpt, map_location=device, weights_only=False)
    model.load_state_dict(blob["model"])
    optimizer.load_state_dict(blob["optimizer"])
    torch.set_rng_state(blob["rng_cpu"].cpu())  # map_location moved it to the GPU
    if device.type == "cuda" and blob.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(blob["rng_cuda"].cpu(), device)
    state = blob["state"]
    if rank == 0:
        print(f"resuming {cfg.out_dir} at epoch {state['epoch']} step {state['step']}")
    return state


class TimeBudget:
    """--time-budget: sizes the epochs from the speed measured over steps 100-200 of the first epoch (what is
    left of the budget after the evaluations' reserve, at that speed, with a 10% margin). Until then the epoch
    size is provisional (only the warmup's learning rate depends on it)."""

    def __init__(self, run: Run, windows: int, on_resize):
        self.run, self.windows, self.on_resize, self.first, self.t_measure = run, windows, on_resize, None, None

    def step(self, epoch: int, step: int) -> None:
        """Called before every step of the first epoch while unsized: starts the clock at step 100 (or where a
        resumed process starts after it), sizes the epochs 100 steps later."""
        run, cfg = self.run, self.run.cfg
        if run.state["epoch_samples"] is not None or epoch != 0 or step < 100:
            return
        if self.first is not None and step < self.first + 100:
            return
        if run.device.type == "cuda":
            torch.cuda.synchronize(run.device)
        if self.first is None:
            self.first, self.t_measure = step, time.time()
            return
        rate = 100 * cfg.batch_size / (time.time() - self.t_measure)
        left = cfg.time_budget - (time.time() - run.t_start) - cfg.epochs * cfg.eval_reserve
        total = step * cfg.batch_size + 0.9 * rate * max(0.0, left)
        epoch_samples = max(step + 1, int(total / cfg.epochs) // cfg.batch_size) * cfg.batch_size
        epoch_samples = min(epoch_samples, self.windows // cfg.batch_size * cfg.batch_size)  # each window once
        run.schedule.epoch_samples = epoch_samples
        run.state["epoch_samples"], run.state["measured_samples_per_second"] = epoch_samples, round(rate, 1)
        self.on_resize()
        if run.rank == 0:
            print(f"measured {rate:.0f} samples/s -> epoch_samples {epoch_samples}", flush=True)


# ---- 4. the loop ----------------------------------------------------------------------------------

def train_epoch(run: Run, train_data: WindowDataset, epoch: int, budget) -> dict | None:
    """The steps of one epoch (from state["step"] when resumed); its training record, or None when the time
    limit stopped it (checkpoint saved). The loss sums survive a resume through the checkpoint's state."""
    cfg, state, device = run.cfg, run.state, run.device
    perm = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
    perm = perm.to(device)
    run.model.train()
    running = torch.tensor(state.get("loss_sum", 0.0), device=device)      # total, cross-entropy, regulariser
    running_ce = torch.tensor(state.get("ce_sum", 0.0), device=device)
    running_reg = torch.tensor(state.get("reg_sum", 0.0), device=device)
    n_running, t0 = state.get("loss_n", 0), time.time()
    per_rank = cfg.batch_size // run.world
    lr = run.schedule.lr(state["tokens"])
    bar = tqdm(total=run.schedule.steps_per_epoch, initial=state["step"], mininterval=10,
               desc=f"{head_name(cfg)} seed {cfg.seed} epoch {epoch + 1}", disable=None if run.rank == 0 else True)

    def keep_sums():
        state["loss_sum"], state["loss_n"] = running.item(), n_running
        state["ce_sum"], state["reg_sum"] = running_ce.item(), running_reg.item()

    step = state["step"]
    while step < run.schedule.steps_per_epoch:
        if budget is not None:
            budget.step(epoch, step)
            bar.total = run.schedule.steps_per_epoch
        start = step * cfg.batch_size + run.rank * per_rank
        states, actions, rtg, ts = train_data.batch(perm[start:start + per_rank])
        lr = run.schedule.lr(state["tokens"])
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=run.amp):
            logits = run.model(states, actions, rtg, ts)
        ce, reg = run.raw_model.loss_terms(logits, actions)
        loss = ce + reg
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
        run.optimizer.step()
        running += loss.detach()
        running_ce += ce.detach()
        running_reg += reg.detach()
        n_running += 1
        state["tokens"] += cfg.batch_size * cfg.context
        state["step"] = step + 1
        bar.update(1)
        if (step + 1) % 100 == 0 and run.rank == 0:
            bar.set_postfix(loss=f"{running.item() / n_running:.3f}", lr=f"{lr:.1e}")
        if (step + 1) % cfg.ckpt_every == 0 or run.out_of_time():
            keep_sums()
            state["train_seconds"] += time.time() - t0
            t0 = time.time()
            run.save_checkpoint()
            if run.out_of_time():
                bar.close()
                return None
        step += 1
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    state["train_seconds"] += time.time() - t0
    n = max(1, n_running)
    return {"epoch": epoch + 1, "train_loss": running.item() / n, "train_ce": running_ce.item() / n,
            "train_regularization": running_reg.item() / n, "lr": lr, "tokens": state["tokens"],
            "train_seconds_cumulative": round(state["train_seconds"], 1)}


@torch.no_grad()
def test_metrics(model, data: WindowDataset, ids: torch.Tensor, amp: bool) -> dict:
    model.eval()
    losses, correct, count = [], 0, 0
    for s in range(0, len(ids), 256):
        states, actions, rtg, ts = data.batch(ids[s:s + 256])
        with torch.autocast(device_type=states.device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(states, actions, rtg, ts).float()
        losses.append(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), actions.reshape(-1),
                                                        reduction="sum").item())
        correct += (logits.argmax(-1) == actions).sum().item()
        count += actions.numel()
    model.train()
    return {"test_loss": sum(losses) / count, "test_accuracy": correct / count}


def evaluate_epoch(run: Run, epoch: int) -> dict:
    """`eval_episodes` online episodes on env seeds seed + epoch + i; returns, smoothness, the PMF trace."""
    cfg = run.cfg
    t_eval = time.time()
    res = play(run.raw_model, cfg.game, cfg.eval_episodes, cfg.target_return, cfg.seed + epoch, run.device,
               cfg.temperature, cfg.eval_max_steps, cfg.eval_threads, run.amp)
    s = smoothness(res["pmfs"].double()).numpy()
    mean_return = float(np.mean(res["returns"]))
    np.savez_compressed(run.out / f"pmf_trace_epoch{epoch + 1}.npz", pmf=res["trace_pmf"].astype(np.float16),
                        action=res["trace_action"])
    return {"eval_returns": res["returns"], "eval_lengths": res["lengths"], "eval_cut_short": res["cut_short"],
            "eval_mean_return": mean_return, "normalized_return": float(atari.normalized_return(cfg.game, mean_return)),
            "smoothness_mean": float(s.mean()), "smoothness_std": float(s.std()), "smoothness_n": int(len(s)),
            "smoothness_sum": float(s.sum()), "eval_seconds": round(time.time() - t_eval, 1), "eval_steps": res["steps"]}


# ---- 5. final evaluation and metrics --------------------------------------------------------------

def final_evaluation(model, cfg: Config, device, amp: bool, out: Path) -> dict:
    """`final_eval_episodes` episodes after the last epoch, on env seeds no per-epoch evaluation used."""
    t0 = time.time()
    seed = cfg.seed + FINAL_EVAL_SEED_OFFSET
    res = play(model, cfg.game, cfg.final_eval_episodes, cfg.target_return, seed, device, cfg.temperature,
               cfg.eval_max_steps, cfg.final_eval_threads or cfg.eval_threads, amp)
    s = smoothness(res["pmfs"].double()).numpy()
    mean_return = float(np.mean(res["returns"]))
    np.savez_compressed(out / "pmf_trace_final.npz", pmf=res["trace_pmf"].astype(np.float16), action=res["trace_action"])
    return {"episodes": cfg.final_eval_episodes, "seed": seed, "returns": res["returns"], "lengths": res["lengths"],
            "cut_short": res["cut_short"], "mean_return": mean_return, "std_return": float(np.std(res["returns"])),
            "normalized_return": float(atari.normalized_return(cfg.game, mean_return)),
            "smoothness_mean": float(s.mean()), "smoothness_std": float(s.std()), "smoothness_n": int(len(s)),
            "seconds": round(time.time() - t0, 1), "steps": res["steps"]}


def run_metrics(run: Run) -> dict:
    """metrics.json: the final return (the final evaluation's, else the last epoch's), the best epoch, the
    smoothness over all rollout PMFs of all epochs, the speed, and the history."""
    cfg, state = run.cfg, run.state
    h, fe = state["history"], state.get("final_eval")
    norm = [r["normalized_return"] for r in h]
    n_pmfs = sum(r["smoothness_n"] for r in h)
    return {
        "game": cfg.game, "dataset": cfg.dataset, "head": cfg.head, "num_frequencies": cfg.num_frequencies,
        "seed": cfg.seed,
        # final: the final evaluation (final_eval_episodes); without one, the last epoch's (eval_episodes)
        "normalized_return_final": fe["normalized_return"] if fe else norm[-1],
        "episodes_final_evaluation": fe["episodes"] if fe else cfg.eval_episodes,
        "return_final": fe["mean_return"] if fe else h[-1]["eval_mean_return"],
        "normalized_return_last_epoch": norm[-1], "return_last_epoch": h[-1]["eval_mean_return"],
        "normalized_return_best": max(norm), "best_epoch": int(np.argmax(norm)) + 1,
        "return_best": max(r["eval_mean_return"] for r in h),
        "smoothness": sum(r["smoothness_sum"] for r in h) / n_pmfs,  # over all rollout PMFs of all epochs
        "smoothness_final": h[-1]["smoothness_mean"], "episodes_per_eval": cfg.eval_episodes,
        "final_evaluation": fe,
        "train_ce_final": h[-1]["train_ce"], "train_regularization_final": h[-1]["train_regularization"],
        "epochs": cfg.epochs, "epoch_samples": run.schedule.epoch_samples,
        "train_samples_per_second": round(state["tokens"] / cfg.context / max(1e-9, state["train_seconds"]), 1),
        "wall_seconds": round(run.wall_seconds(), 1), "history": h}


def main(argv=None):
    # 1. config: flags, processes, data present, the run folder claimed; nothing is written before this passes
    cfg = parse_config(argv)
    rank, world, device = setup_distributed(cfg.device)
    if cfg.batch_size % world:
        raise SystemExit(f"error: --batch-size {cfg.batch_size} is not divisible by the {world} processes")
    ident = check_data(cfg)
    out = Path(cfg.out_dir)
    if claim_run(cfg, ident, rank, world) == "done":
        if rank == 0:
            print(f"{out} is finished with these settings (metrics.json): nothing to do (--force reruns it)")
        if world > 1:
            dist.destroy_process_group()
        return
    tracker = Tracker(cfg._args.wandb and rank == 0, "fourier-head-imitation-learning", run_config(cfg),
                      name=f"{cfg.dataset}/{cfg.game}/{head_name(cfg)}/seed{cfg.seed}", directory=out)
    torch.set_num_threads(2 if device.type == "cuda" else max(1, torch.get_num_threads()))
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)
    amp = cfg.amp and device.type == "cuda"
    t_start = time.time()

    # 2. data
    train_data, test_data, test_ids = load_data(cfg, device)

    # 3. model, optimizer, and the progress of a resumed run
    model, optimizer = build(cfg, train_data.max_timestep, device)
    state = start_or_resume(cfg, model, optimizer, device, train_data, rank)
    parallel = model
    if world > 1:
        parallel = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    schedule = Schedule(cfg, state["epoch_samples"] or cfg.epoch_samples or len(train_data))
    run = Run(cfg, out, device, rank, world, amp, parallel, model, optimizer, state, schedule, t_start,
              wall_before=state.get("wall_seconds", 0.0))
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        run.write_config(train_data)
        write_json(out / "env.json", {**provenance(device, ale_py=atari.ale_version()), "world_size": world, **ident})
    budget = None
    if state["epoch_samples"] is None:
        budget = TimeBudget(run, len(train_data), on_resize=lambda: run.write_config(train_data) if rank == 0 else None)

    # 4. the loop: train an epoch, then (rank 0) held-out loss and online evaluation
    stopped = False
    while state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        record = train_epoch(run, train_data, epoch, budget)
        if record is None:
            stopped = True
            break
        if rank == 0:
            record.update(test_metrics(model, test_data, test_ids, amp))
            record.update(evaluate_epoch(run, epoch))
            print(f"epoch {epoch + 1}: train loss {record['train_loss']:.3f} test loss {record['test_loss']:.3f} "
                  f"return {record['eval_mean_return']:.0f} (normalized {record['normalized_return']:.2f}) "
                  f"smoothness {record['smoothness_mean']:.3f}", flush=True)
            tracker.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=epoch + 1)
        state["history"].append(record)
        state["epoch"], state["step"], state["loss_sum"], state["loss_n"] = epoch + 1, 0, 0.0, 0
        state["ce_sum"], state["reg_sum"] = 0.0, 0.0
        run.save_checkpoint()
        if rank == 0:
            write_json(out / "history.json", state["history"])
        if world > 1:
            dist.barrier()

    # 5. final evaluation (it waits for the next process when the time limit is reached) and metrics.json
    stopped = stopped or run.out_of_time()
    if rank == 0 and not stopped and cfg.final_eval_episodes > 0 and state.get("final_eval") is None:
        state["final_eval"] = fe = final_evaluation(model, cfg, device, amp, out)
        print(f"final evaluation ({fe['episodes']} episodes): return {fe['mean_return']:.0f} "
              f"(normalized {fe['normalized_return']:.2f})", flush=True)
        run.save_checkpoint()
    if rank == 0 and not stopped:
        metrics = run_metrics(run)
        write_json(out / "metrics.json", metrics)
        tracker.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    tracker.finish()
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
