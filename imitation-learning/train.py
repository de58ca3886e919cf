"""Train one Decision Transformer (linear or Fourier head) on the offline dataset; evaluate online after
every epoch. Paper v1 §5 / Table 2.

    python train.py --head fourier --num-frequencies 14 --seed 123           # the paper's setting (GPU)
    python train.py --dataset dqn-replay-like --head linear --seed 123       # on the DQN-replay-like data
    python train.py --quick                                                  # tiny CPU smoke run
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
epoch and after the final evaluation; a rerun resumes from it) and metrics.json last (written
atomically; its presence marks the run finished, and a rerun then exits at once). A rerun with other
settings, or on other data (hashes), in the same folder is refused.
"""

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

import atari
from common import environment, parse_dataclass, pick_device
from dataset import WindowDataset
from fourier_head import smoothness
from make_dataset import DATASETS
from model import DTConfig, build_model, num_params
from rollout import play
from scaffold import config_differences, write_json

HERE = Path(__file__).resolve().parent
LEGACY_DATASET = "ppo-sampled"    # the first dataset: its runs keep the layout runs/<game>/<head>/seed<k>
FINAL_EVAL_SEED_OFFSET = 1000     # the final evaluation's env seeds: seed + 1000 + i (per epoch: seed + epoch + i)
# fields that may differ when a run resumes (where and how long it runs, not what it computes)
IDENTITY_IGNORE = ("device", "max_seconds", "eval_threads", "final_eval_threads", "ckpt_every", "data_dir",
                   "out_dir", "quick")


@dataclass
class Config:
    game: str = "Seaquest"
    dataset: str = "ppo-sampled"      # ppo-sampled | dqn-replay-like (make_dataset.DATASETS): data and run folders
    head: str = "linear"              # linear | fourier
    num_frequencies: int = 0          # Fourier head's N
    gamma: float = 1e-6
    seed: int = 123
    epochs: int = 5
    epoch_samples: int = 0            # windows per epoch; 0: one per transition (the reference)
    time_budget: float = 0.0          # >0: size epoch_samples so that training + evaluations fit this many
                                      # seconds, from the speed measured over steps 100-200 (single process)
    eval_reserve: float = 25.0        # seconds set aside per evaluation when sizing by time_budget
    batch_size: int = 128             # global (split over DDP ranks)
    lr: float = 6e-4
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    warmup_tokens: int = 512 * 20
    context: int = 30
    n_layer: int = 6
    n_head: int = 8
    n_embd: int = 128
    dropout: float = 0.1
    eval_episodes: int = 10           # after every epoch
    final_eval_episodes: int = 50     # after the last epoch (0: none; the run's final return is then the last epoch's)
    final_eval_threads: int = 0       # ALE threads of the final evaluation; 0: eval_threads
    target_return: float = 0.0        # 0: the game's (Seaquest 1150)
    temperature: float = 1.0
    eval_max_steps: int = 0           # 0: until every episode ends (the env caps them at 108k frames)
    eval_threads: int = 2
    test_windows: int = 4096          # test windows for the held-out cross-entropy
    amp: bool = True                  # bf16 autocast on a GPU (the Fourier head runs in float32 regardless)
    ckpt_every: int = 500             # steps
    max_seconds: float = 0.0          # stop cleanly (checkpoint) after this wall time; 0: no limit
    data_dir: str = ""                # default: the dataset's (data/<game>, data/dqn-replay-like/<game>)
    out_dir: str = ""                 # default: run_dir(...)
    device: str = "auto"
    quick: bool = False


QUICK = dict(epochs=1, epoch_samples=64, batch_size=16, n_layer=1, n_head=2, n_embd=32, context=8,
             eval_episodes=1, final_eval_episodes=2, eval_max_steps=40, test_windows=32, ckpt_every=2, amp=False)


def head_name(cfg) -> str:
    return "linear" if cfg.head == "linear" else f"fourier{cfg.num_frequencies}"


def run_dir(runs: Path, dataset: str, game: str, head: str, seed: int) -> Path:
    """runs/<game>/<head>/seed<k> for ppo-sampled (the committed results' layout), runs/<dataset>/<game>/
    <head>/seed<k> for every other dataset. Dataset names are never game names, so the two never meet."""
    base = Path(runs) / game if dataset == LEGACY_DATASET else Path(runs) / dataset / game
    return base / head / f"seed{seed}"


def parse_config(argv=None) -> Config:
    cfg, parser = parse_dataclass(Config, argv, __doc__, QUICK)
    if cfg.game not in atari.GAMES:
        parser.error(f"unknown game {cfg.game!r}; choose from {', '.join(atari.GAMES)}")
    if cfg.dataset not in DATASETS:
        parser.error(f"--dataset must be one of {', '.join(DATASETS)}")
    if cfg.head not in ("linear", "fourier") or (cfg.head == "fourier") != (cfg.num_frequencies > 0):
        parser.error("--head linear (no --num-frequencies) or --head fourier --num-frequencies N (N >= 1)")
    if cfg.final_eval_episodes < 0:
        parser.error("--final-eval-episodes must be >= 0")
    root = HERE / "runs/quick" if cfg.quick else HERE
    cfg.data_dir = cfg.data_dir or str(root / DATASETS[cfg.dataset]["data"].format(game=cfg.game))
    cfg.out_dir = cfg.out_dir or str(run_dir(HERE / "runs" / ("quick" if cfg.quick else ""), cfg.dataset, cfg.game,
                                             head_name(cfg), cfg.seed))
    cfg.target_return = cfg.target_return or atari.GAMES[cfg.game]["target_return"]
    return cfg


def check_same_run(out: Path, saved: dict, cfg: Config) -> None:
    """Refuse to resume or skip a run folder that holds other settings (fields absent from an older
    config.json are not compared; a config without `dataset` is from the ppo-sampled runs)."""
    saved = {"dataset": LEGACY_DATASET, **saved}
    wanted = asdict(cfg)
    names = [k for k in wanted if k in saved and k not in IDENTITY_IGNORE]
    diff = config_differences({k: saved[k] for k in names}, {k: wanted[k] for k in names})
    if diff:
        raise SystemExit(f"error: {out} holds a run with other settings ({'; '.join(diff)}); use another --out-dir")


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


def lr_multiplier(cfg, tokens: int, final_tokens: int) -> float:
    """The reference schedule: linear warmup, then cosine down to 10% (floor) at final_tokens."""
    if tokens < cfg.warmup_tokens:
        return tokens / max(1, cfg.warmup_tokens)
    progress = (tokens - cfg.warmup_tokens) / max(1, final_tokens - cfg.warmup_tokens)
    return max(0.1, 0.5 * (1.0 + math.cos(math.pi * progress)))


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


def main(argv=None):
    cfg = parse_config(argv)
    out = Path(cfg.out_dir)
    if (out / "config.json").exists():
        check_same_run(out, json.loads((out / "config.json").read_text()), cfg)
    if (out / "metrics.json").exists():
        print(f"{out} is finished (metrics.json exists)")
        return
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = 0, 1
    if ddp:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        device = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}") if torch.cuda.is_available() else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    else:
        device = pick_device(cfg.device)
    if cfg.batch_size % world:
        raise SystemExit(f"--batch-size {cfg.batch_size} is not divisible by the {world} processes")
    torch.set_num_threads(2 if device.type == "cuda" else max(1, torch.get_num_threads()))
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)
    amp = cfg.amp and device.type == "cuda"
    t_start = time.time()

    ident = data_identity(Path(cfg.data_dir), cfg.dataset)
    if (out / "env.json").exists():  # a resumed run must see the same data
        before = json.loads((out / "env.json").read_text()).get("data_sha256_actions_rewards")
        if before and ident["data_sha256_actions_rewards"] and before != ident["data_sha256_actions_rewards"]:
            raise SystemExit(f"error: the data in {cfg.data_dir} differs from what {out} trained on (hashes)")
    train_data = WindowDataset(Path(cfg.data_dir) / "train", cfg.context, device)
    test_data = WindowDataset(Path(cfg.data_dir) / "test", cfg.context, device)
    model = build_model(DTConfig(context=cfg.context, n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                                 dropout=cfg.dropout, max_timestep=train_data.max_timestep, head=cfg.head,
                                 num_frequencies=cfg.num_frequencies, gamma=cfg.gamma)).to(device)
    raw_model = model
    optimizer = torch.optim.AdamW(model.optim_groups(cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                  fused=device.type == "cuda")
    epoch_samples = cfg.epoch_samples or len(train_data)
    g = torch.Generator().manual_seed(cfg.seed)
    test_ids = torch.randperm(len(test_data), generator=g)[:cfg.test_windows].to(device)

    state = {"epoch": 0, "step": 0, "tokens": 0, "history": [], "train_seconds": 0.0,
             "epoch_samples": None if cfg.time_budget > 0 else epoch_samples}
    ckpt = out / "ckpt.pt"
    if ckpt.exists():
        blob = torch.load(ckpt, map_location=device, weights_only=False)
        raw_model.load_state_dict(blob["model"]); optimizer.load_state_dict(blob["optimizer"])
        state = blob["state"]
        torch.set_rng_state(blob["rng_cpu"].cpu())  # map_location moved it to the GPU
        if device.type == "cuda" and blob.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(blob["rng_cuda"].cpu(), device)
        if rank == 0:
            print(f"resuming {out} at epoch {state['epoch']} step {state['step']}")
    if ddp:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def save_ckpt():
        state["wall_seconds"] = wall_before + time.time() - t_start
        if rank == 0:
            tmp = out / "ckpt.pt.tmp"
            torch.save({"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(), "state": state,
                        "rng_cpu": torch.get_rng_state(),
                        "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}, tmp)
            tmp.replace(ckpt)

    # with time_budget, a provisional size until the speed is measured (only the warmup lr depends on it)
    epoch_samples = state["epoch_samples"] or epoch_samples
    steps_per_epoch = epoch_samples // cfg.batch_size
    final_tokens = 2 * epoch_samples * cfg.context * 3

    def write_config():
        write_json(out / "config.json", {**asdict(cfg), "epoch_samples_resolved": epoch_samples,
                                         "steps_per_epoch": steps_per_epoch, "world_size": world,
                                         "num_params": num_params(raw_model),
                                         "train_transitions": train_data.num_transitions,
                                         "train_windows": len(train_data),
                                         "sized_by_time_budget": cfg.time_budget > 0})

    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_config()
        write_json(out / "env.json", {**environment(device), "world_size": world, **ident})
    stopped = False
    wall_before = state.get("wall_seconds", 0.0)  # earlier processes of this run (resumed)
    lr = cfg.lr * lr_multiplier(cfg, state["tokens"], final_tokens)
    per_rank = cfg.batch_size // world
    while state["epoch"] < cfg.epochs and not stopped:
        epoch = state["epoch"]
        perm = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        perm = perm.to(device)
        model.train()
        # the epoch's loss sums (total, cross-entropy, regulariser) survive a resume through the checkpoint's state
        running = torch.tensor(state.get("loss_sum", 0.0), device=device)
        running_ce = torch.tensor(state.get("ce_sum", 0.0), device=device)
        running_reg = torch.tensor(state.get("reg_sum", 0.0), device=device)
        n_running, t0 = state.get("loss_n", 0), time.time()
        bar = tqdm(total=steps_per_epoch, initial=state["step"], desc=f"{head_name(cfg)} seed {cfg.seed} epoch {epoch + 1}",
                   mininterval=10, disable=None if rank == 0 else True)
        step = state["step"]
        while step < steps_per_epoch:
            if state["epoch_samples"] is None and epoch == 0 and step in (100, 200):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if step == 100:
                    t_measure = time.time()
                else:  # size the epochs: what is left of the budget, at the measured speed, 10% margin
                    rate = 100 * cfg.batch_size / (time.time() - t_measure)
                    left = cfg.time_budget - (time.time() - t_start) - cfg.epochs * cfg.eval_reserve
                    total = step * cfg.batch_size + 0.9 * rate * max(0.0, left)
                    epoch_samples = max(step + 1, int(total / cfg.epochs) // cfg.batch_size) * cfg.batch_size
                    steps_per_epoch = epoch_samples // cfg.batch_size
                    final_tokens = 2 * epoch_samples * cfg.context * 3
                    state["epoch_samples"], state["measured_samples_per_second"] = epoch_samples, round(rate, 1)
                    bar.total = steps_per_epoch
                    if rank == 0:
                        write_config()
                        print(f"measured {rate:.0f} samples/s -> epoch_samples {epoch_samples}", flush=True)
            ids = perm[step * cfg.batch_size + rank * per_rank: step * cfg.batch_size + (rank + 1) * per_rank]
            states, actions, rtg, ts = train_data.batch(ids)
            lr = cfg.lr * lr_multiplier(cfg, state["tokens"], final_tokens)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(states, actions, rtg, ts)
            ce, reg = raw_model.loss_terms(logits, actions)
            loss = ce + reg
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            running += loss.detach()
            running_ce += ce.detach()
            running_reg += reg.detach()
            n_running += 1
            state["tokens"] += cfg.batch_size * cfg.context
            state["step"] = step + 1
            if (step + 1) % cfg.ckpt_every == 0:
                state["loss_sum"], state["loss_n"] = running.item(), n_running
                state["ce_sum"], state["reg_sum"] = running_ce.item(), running_reg.item()
            bar.update(1)
            if (step + 1) % 100 == 0 and rank == 0:
                bar.set_postfix(loss=f"{running.item() / n_running:.3f}", lr=f"{lr:.1e}")
            if (step + 1) % cfg.ckpt_every == 0 or (cfg.max_seconds and time.time() - t_start > cfg.max_seconds):
                state["loss_sum"], state["loss_n"] = running.item(), n_running
                state["ce_sum"], state["reg_sum"] = running_ce.item(), running_reg.item()
                state["train_seconds"] += time.time() - t0
                t0 = time.time()
                save_ckpt()
                if cfg.max_seconds and time.time() - t_start > cfg.max_seconds:
                    stopped = True
                    break
            step += 1
        bar.close()
        if stopped:
            break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        state["train_seconds"] += time.time() - t0
        record = {"epoch": epoch + 1, "train_loss": running.item() / max(1, n_running),
                  "train_ce": running_ce.item() / max(1, n_running),
                  "train_regularization": running_reg.item() / max(1, n_running), "lr": lr,
                  "tokens": state["tokens"], "train_seconds_cumulative": round(state["train_seconds"], 1)}
        if rank == 0:
            record.update(test_metrics(raw_model, test_data, test_ids, amp))
            t_eval = time.time()
            res = play(raw_model, cfg.game, cfg.eval_episodes, cfg.target_return, cfg.seed + epoch, device,
                       cfg.temperature, cfg.eval_max_steps, cfg.eval_threads, amp)
            s = smoothness(res["pmfs"].double()).numpy()
            mean_return = float(np.mean(res["returns"]))
            record.update({"eval_returns": res["returns"], "eval_lengths": res["lengths"], "eval_cut_short": res["cut_short"],
                           "eval_mean_return": mean_return,
                           "normalized_return": float(atari.normalized_return(cfg.game, mean_return)),
                           "smoothness_mean": float(s.mean()), "smoothness_std": float(s.std()),
                           "smoothness_n": int(len(s)), "smoothness_sum": float(s.sum()),
                           "eval_seconds": round(time.time() - t_eval, 1), "eval_steps": res["steps"]})
            np.savez_compressed(out / f"pmf_trace_epoch{epoch + 1}.npz", pmf=res["trace_pmf"].astype(np.float16),
                                action=res["trace_action"])
            print(f"epoch {epoch + 1}: train loss {record['train_loss']:.3f} test loss {record['test_loss']:.3f} "
                  f"return {mean_return:.0f} (normalized {record['normalized_return']:.2f}) "
                  f"smoothness {record['smoothness_mean']:.3f}", flush=True)
        state["history"].append(record)
        state["epoch"], state["step"], state["loss_sum"], state["loss_n"] = epoch + 1, 0, 0.0, 0
        state["ce_sum"], state["reg_sum"] = 0.0, 0.0
        save_ckpt()
        if rank == 0:
            write_json(out / "history.json", state["history"])
        if ddp:
            dist.barrier()

    if not stopped and cfg.max_seconds and time.time() - t_start > cfg.max_seconds:
        stopped = True  # the final evaluation waits for the next process (the checkpoint holds the last epoch)
    if rank == 0 and not stopped and cfg.final_eval_episodes > 0 and state.get("final_eval") is None:
        state["final_eval"] = final_evaluation(raw_model, cfg, device, amp, out)
        fe = state["final_eval"]
        print(f"final evaluation ({fe['episodes']} episodes): return {fe['mean_return']:.0f} "
              f"(normalized {fe['normalized_return']:.2f})", flush=True)
        save_ckpt()
    if rank == 0 and not stopped:
        h = state["history"]
        fe = state.get("final_eval")
        norm = [r["normalized_return"] for r in h]
        n_pmfs = sum(r["smoothness_n"] for r in h)
        metrics = {
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
            "epochs": cfg.epochs, "epoch_samples": epoch_samples,
            "train_samples_per_second": round(state["tokens"] / cfg.context / max(1e-9, state["train_seconds"]), 1),
            "wall_seconds": round(wall_before + time.time() - t_start, 1), "history": h}
        write_json(out / "metrics.json", metrics)
    if ddp:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
