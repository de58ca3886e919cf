"""Run the grid of heads x frequencies x seeds of train.py; resumable (finished runs are skipped).

    python sweep.py                                   # linear + Fourier N in {1,2,4,8,16}, seeds 0-4
    python sweep.py --seeds 0,1,2 --jobs 3            # 3 worker processes (one GPU can hold several)
    python sweep.py --quick                           # tiny CPU grid (smoke test)
    python sweep.py --split odds_evens --bin-size 7   # any other argument goes to train.py
    python sweep.py --trainer pretrained --epochs-grid 2,6 --jobs 6    # the pretrained arm (pretrained.py)

Runs are ordered seed by seed, so a sweep stopped by --time-budget leaves complete seeds behind.
Each invocation appends its wall time to <out-dir>/sweep_log.json (aggregate.py reports it).
"""

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pretrained
import train

TRAINERS = {"train": train, "pretrained": pretrained}


def ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def _run(job: tuple[str, list[str]]) -> tuple[str, float]:
    module = TRAINERS[job[0]]
    cfg = module.parse_config(job[1])
    start = time.time()
    module.run(cfg)
    return str(cfg.run_dir), time.time() - start


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heads", default="linear,fourier", help="comma-separated: linear, fourier")
    ap.add_argument("--num-frequencies-grid", type=ints, default=[1, 2, 4, 8, 16], metavar="N,N,..")
    ap.add_argument("--seeds", type=ints, default=[0, 1, 2, 3, 4], metavar="S,S,..")
    ap.add_argument("--trainer", choices=sorted(TRAINERS), default="train",
                    help="train.py (from-scratch encoder) or pretrained.py (CREPE, fine-tuned)")
    ap.add_argument("--epochs-grid", type=ints, default=None, metavar="E,E,..",
                    help="schedules to run (chosen later on the validation split); default: the trainer's")
    ap.add_argument("--jobs", type=int, default=1, help="parallel worker processes")
    ap.add_argument("--time-budget", type=float, default=0, help="start no new run after this many seconds (0: none)")
    ap.add_argument("--dry-run", action="store_true", help="print the runs and exit")
    args, train_args = ap.parse_known_args(argv)

    module = TRAINERS[args.trainer]
    grid = []
    for seed in args.seeds:
        for epochs in (args.epochs_grid or [None]):
            for head in args.heads.split(","):
                for n in (args.num_frequencies_grid if head == "fourier" else [0]):
                    extra = ["--num-frequencies", str(n)] if head == "fourier" else []
                    extra += ["--epochs", str(epochs)] if epochs else []
                    grid.append(train_args + ["--head", head, "--seed", str(seed)] + extra)
    configs = [module.parse_config(a) for a in grid]  # validates every run before any starts
    todo = [a for a, c in zip(grid, configs) if not (c.run_dir / "metrics.json").exists()]
    print(f"{len(grid)} runs, {len(grid) - len(todo)} already done, {len(todo)} to go")
    if args.dry_run:
        for a in todo:
            print(f"python {args.trainer}.py " + " ".join(a))
        return
    if not todo:
        return

    # Build the data cache once, before workers race to build it.
    (train.load_data if args.trainer == "train" else pretrained.load_audio)(configs[0])
    start, done, finished_dirs = time.time(), 0, []
    if args.jobs <= 1:
        for a in todo:
            if args.time_budget and time.time() - start > args.time_budget:
                break
            run_dir, seconds = _run((args.trainer, a))
            done += 1
            finished_dirs.append(run_dir)
            print(f"done {run_dir} in {seconds:.1f} s ({done}/{len(todo)})", flush=True)
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            pending = list(todo)
            running = {pool.submit(_run, (args.trainer, pending.pop(0))) for _ in range(min(args.jobs, len(pending)))}
            while running:
                finished = next(iter(_wait_any(running)))
                running.remove(finished)
                run_dir, seconds = finished.result()
                done += 1
                finished_dirs.append(run_dir)
                print(f"done {run_dir} in {seconds:.1f} s ({done}/{len(todo)})", flush=True)
                if pending and not (args.time_budget and time.time() - start > args.time_budget):
                    running.add(pool.submit(_run, (args.trainer, pending.pop(0))))

    out_dir = configs[0].run_dir.parents[2]
    log_path = out_dir / "sweep_log.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else []
    log.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)),
                "wall_seconds": round(time.time() - start, 1), "runs_finished": done, "jobs": args.jobs,
                # the <split>-bin<k> folders this invocation wrote to, for aggregate.py's wall time
                "settings": sorted({Path(r).parents[1].name for r in finished_dirs}),
                "trainer": args.trainer, "train_args": train_args})
    log_path.write_text(json.dumps(log, indent=2))
    print(f"sweep: {done} runs in {time.time() - start:.1f} s")


def _wait_any(futures):
    from concurrent.futures import FIRST_COMPLETED, wait
    return wait(futures, return_when=FIRST_COMPLETED).done


if __name__ == "__main__":
    main()
