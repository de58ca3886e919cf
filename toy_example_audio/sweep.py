"""Run the grid of heads x frequencies x seeds of train.py; resumable (finished runs are skipped).

    python sweep.py                                   # linear + Fourier N in {1,2,4,8,16}, seeds 0-4
    python sweep.py --seeds 0,1,2 --jobs 3            # 3 worker processes (one GPU can hold several)
    python sweep.py --quick                           # tiny CPU grid (smoke test), under runs/quick/
    python sweep.py --split odds_evens --bin-size 7   # any other flag goes to train.py (its --help lists them)
    python sweep.py --trainer pretrained --epochs-grid 2,6 --jobs 6    # the pretrained arm (pretrained.py)

Lists take commas or spaces (--seeds 0,1,2 or --seeds 0 1 2). Every run of the grid is validated before
any starts (a bad flag stops the sweep with one line); a run folder that holds other settings stops it
with the fields named (--force, passed on to the trainer, overwrites those runs; finished runs with the
same settings are always skipped). Runs are ordered seed by seed, so a sweep stopped by --time-budget
leaves complete seeds behind. Each invocation appends its wall time to <out-dir>/sweep_log.json
(aggregate.py reports it).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import pretrained
import train
from scaffold import Field, parse_config, write_json

TRAINERS = {"train": train, "pretrained": pretrained}


@dataclass
class Config:
    heads: tuple = Field(("linear", "fourier"), "heads of the grid", choices=("linear", "fourier"))
    num_frequencies_grid: tuple = Field((1, 2, 4, 8, 16), "Fourier frequencies N of the grid", low=1)
    seeds: tuple = Field((0, 1, 2, 3, 4), "seeds of the grid", low=0)
    trainer: str = Field("train", "train.py (from-scratch encoder) or pretrained.py (CREPE, fine-tuned)",
                         choices=tuple(TRAINERS))
    epochs_grid: tuple = Field((0,), "schedules to run (chosen later on the validation split); 0: the trainer's",
                               low=0)
    jobs: int = Field(1, "parallel worker processes", low=1)
    time_budget: float = Field(0.0, "start no run that would end after this many seconds, by the longest run "
                               "finished so far (before any: --run-seconds-guess); 0: no limit", low=0.0)
    run_seconds_guess: float = Field(0.0, "a run's expected seconds until one has finished (--time-budget)",
                                     low=0.0)
    dry_run: bool = Field(False, "print the runs still to do and exit")


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(this script's flags, the trainer's flags); a flag owns the values that follow it; commas split lists."""
    own = {"-h", "--help"}
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        own |= {flag, "--no-" + flag[2:]}
    argv = [part for arg in argv for part in (arg.split("=", 1) if arg.split("=")[0] in own else [arg])]
    mine, rest, i = [], [], 0
    while i < len(argv):
        j = i + 1
        while j < len(argv) and not argv[j].startswith("--"):
            j += 1
        if argv[i] in own:
            mine += [argv[i]] + [v for value in argv[i + 1:j] for v in value.split(",") if v]
        else:
            rest += argv[i:j]
        i = j
    return mine, rest


def _run(job: tuple[str, list[str]]) -> tuple[str, float]:
    module = TRAINERS[job[0]]
    cfg = module.parse_config(job[1])
    start = time.time()
    module.run(cfg)
    return str(cfg.run_dir), time.time() - start


def main(argv=None) -> None:
    mine, train_args = split_argv(list(sys.argv[1:] if argv is None else argv))
    args = parse_config(Config, mine, description=__doc__)
    module = TRAINERS[args.trainer]
    grid = []
    for seed in args.seeds:
        for epochs in args.epochs_grid:
            for head in dict.fromkeys(args.heads):
                for n in (args.num_frequencies_grid if head == "fourier" else [0]):
                    extra = ["--num-frequencies", str(n)] if head == "fourier" else []
                    extra += ["--epochs", str(epochs)] if epochs else []
                    grid.append(train_args + ["--head", head, "--seed", str(seed)] + extra)
    configs = [module.parse_config(a) for a in grid]  # validates every run before any starts
    todo = [a for a, c in zip(grid, configs) if not train.is_finished(c)]
    print(f"{len(grid)} runs, {len(grid) - len(todo)} already done, {len(todo)} to go")
    if args.dry_run:
        for a in todo:
            print(f"python {args.trainer}.py " + " ".join(a))
        return
    if not todo:
        return

    # Build the data cache once, before workers race to build it.
    (train.load_data if args.trainer == "train" else pretrained.load_audio)(configs[0])
    start, done, finished_dirs, durations = time.time(), 0, [], []

    def time_left() -> bool:
        """Whether a run started now ends within --time-budget (the longest finished run's time, or the guess)."""
        expected = max(durations, default=args.run_seconds_guess)
        return not args.time_budget or time.time() - start + expected <= args.time_budget

    if args.jobs <= 1:
        for a in todo:
            if not time_left():
                break
            run_dir, seconds = _run((args.trainer, a))
            done += 1
            durations.append(seconds)
            finished_dirs.append(run_dir)
            print(f"done {run_dir} in {seconds:.1f} s ({done}/{len(todo)})", flush=True)
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending = list(todo)
            running = {pool.submit(_run, (args.trainer, pending.pop(0)))
                       for _ in range(min(args.jobs, len(pending)) if time_left() else 0)}
            while running:
                finished = next(iter(wait(running, return_when=FIRST_COMPLETED).done))
                running.remove(finished)
                run_dir, seconds = finished.result()
                done += 1
                durations.append(seconds)
                finished_dirs.append(run_dir)
                print(f"done {run_dir} in {seconds:.1f} s ({done}/{len(todo)})", flush=True)
                if pending and time_left():
                    running.add(pool.submit(_run, (args.trainer, pending.pop(0))))

    out_dir = configs[0].run_dir.parents[2]
    log_path = out_dir / "sweep_log.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else []
    log.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)),
                "wall_seconds": round(time.time() - start, 1), "runs_finished": done, "jobs": args.jobs,
                # the <split>-bin<k> folders this invocation wrote to, for aggregate.py's wall time
                "settings": sorted({Path(r).parents[1].name for r in finished_dirs}),
                "trainer": args.trainer, "train_args": train_args})
    write_json(log_path, log, indent=2)
    left = len(todo) - done
    print(f"sweep: {done} runs in {time.time() - start:.1f} s" + (f"; {left} not started (--time-budget)" * bool(left)))


if __name__ == "__main__":
    main()
