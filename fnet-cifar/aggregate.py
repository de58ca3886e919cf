"""
Collect runs into results/runs.json, summarise them into results/summary.json, and regenerate the README's
results block (between `<!-- fnet-results:start -->` and `<!-- fnet-results:end -->`).

    python fnet-cifar/aggregate.py                        # re-derive summary + README block from results/runs.json
    python fnet-cifar/aggregate.py --runs fnet-cifar/runs/converged   # add a grid's runs, then the same
    python fnet-cifar/aggregate.py --check                # exit 1 if summary.json or the README block is stale
    python fnet-cifar/aggregate.py --quick                # runs/quick -> runs/quick/results (never results/)

results/runs.json    one record per run (final metrics, per-epoch test accuracy, settings); committed
results/summary.json one row per (grid, dataset, variant) with `epochs`, `n_seeds`, accuracy mean/std, params,
                     seconds per epoch, plus the comparisons and each grid's provenance
Quick runs never reach results/ or the README: their records carry `quick`, and writing one into the
committed results is refused.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from grid import VARIANTS
from scaffold import Field, parse_config, update_block, write_json

HERE = Path(__file__).resolve().parent
RESULTS, README, BLOCK = HERE / "results", HERE / "README.md", "fnet-results"
DATASET_NAMES = {"fashion-mnist": "Fashion-MNIST", "synthetic": "synthetic frequency-labelled set",
                 "cifar100": "CIFAR-100", "cifar100-coarse": "CIFAR-100 (coarse labels)"}
NUM_CLASSES = {"fashion-mnist": 10, "synthetic": 10, "cifar100": 100, "cifar100-coarse": 20}
LEGACY_GRID = "short"  # the committed 1-2 epoch grid (H100), recorded before runs carried a grid name
# (a, b, question): a - b in accuracy points.
COMPARISONS = [
    ("head", "real-only", "keep the imaginary part (realify) vs discard it (Re only)"),
    ("head", "pe-none", "sinusoidal positional channels vs none"),
    ("pe-simple", "pe-none", "simple positional channels vs none"),
    ("head", "pe-simple", "sinusoidal vs simple positional channels"),
    ("head", "legacy-layout", "fixed layout vs the seed's scrambled layout"),
    ("head", "seed-run3", "the seed's HEAD vs its best logged configuration (run 3)"),
    ("head", "fnet-patches", "Spectracles vs FNet encoder on patches"),
    ("head", "attention-patches", "Spectracles vs attention encoder on patches"),
    ("head", "mlp", "Spectracles vs the MLP anchor"),
    ("head", "cnn", "Spectracles vs the small-CNN anchor"),
]


@dataclass
class Config:
    runs: tuple = Field((), "run folders (runs/<grid>/) whose runs are added to the results")
    results: str = Field(str(RESULTS), "results folder (--quick: runs/quick/results)")
    readme: bool = Field(True, "rewrite the README's results block (only for the committed results)")


QUICK = dict(runs=(str(HERE / "runs" / "quick"),), results=str(HERE / "runs" / "quick" / "results"), readme=False)


def collect_runs(runs_dir: Path) -> list[dict]:
    records = []
    for mpath in sorted(runs_dir.glob("*/*/seed*/metrics.json")):
        cfg = json.loads((mpath.parent / "config.json").read_text())
        env = json.loads((mpath.parent / "env.json").read_text())
        m = json.loads(mpath.read_text())
        records.append({
            "grid": runs_dir.name, "quick": cfg.get("quick", False),
            "dataset": cfg["dataset"], "variant": cfg["variant"] or mpath.parts[-3], "seed": cfg["seed"],
            "params": m["params"], "accuracy": m["test/acc"], "test_loss": m["test/loss"],
            "train_accuracy": m["train/acc"], "top_class_share": m["test/top_class_share"],
            "epochs": m["epochs_run"], "batch_size": cfg["batch_size"], "n_train": m["n_train"], "n_test": m["n_test"],
            "seconds_per_epoch": m["seconds_per_epoch"], "first_epoch_seconds": m["first_epoch_seconds"],
            "wall_seconds": m["wall_seconds"], "diverged": m["diverged"], "amp": m["amp"],
            "gpu": env.get("gpu") or "cpu", "torch": env["torch"], "commit": env["commit"],
            "accuracy_per_epoch": [h["test/acc"] for h in m["history"]],
            "config": {k: v for k, v in cfg.items() if k not in ("out_dir", "data_dir", "progress", "device", "wandb")},
        })
    return records


def mean_std(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)  # sample std


def grid_order(records: list[dict]) -> list[str]:
    """Longest schedule first."""
    epochs: dict[str, int] = {}
    for r in records:
        epochs[r["grid"]] = max(epochs.get(r["grid"], 0), r["epochs"])
    return sorted(epochs, key=lambda g: (-epochs[g], g))


def summarise(records: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["grid"], r["dataset"], r["variant"]), []).append(r)
    grids, datasets, variants = grid_order(records), ["fashion-mnist", "synthetic"], list(VARIANTS)
    key = lambda k: (grids.index(k[0]), datasets.index(k[1]) if k[1] in datasets else 9, k[1],  # noqa: E731
                     variants.index(k[2]) if k[2] in variants else 99, k[2])
    rows = []
    for (grid, dataset, variant), rs in sorted(groups.items(), key=lambda kv: key(kv[0])):
        settings = {json.dumps({k: v for k, v in r["config"].items() if k != "seed"}, sort_keys=True) for r in rs}
        if len(settings) > 1:
            raise ValueError(f"{grid}/{dataset}/{variant}: seeds were run with different settings")
        rs = sorted(rs, key=lambda r: r["seed"])
        acc_mean, acc_std = mean_std([r["accuracy"] for r in rs])
        rows.append({
            "grid": grid, "variant": variant, "dataset": dataset, "model": rs[0]["config"].get("model", "spectracles"),
            "description": VARIANTS.get(variant, ("", {}))[0], "params": rs[0]["params"],
            "epochs": rs[0]["epochs"], "n_seeds": len(rs), "seeds": [r["seed"] for r in rs],
            "accuracy": {"mean": acc_mean, "std": acc_std, "per_seed": [r["accuracy"] for r in rs]},
            "seconds_per_epoch": sum(r["seconds_per_epoch"] for r in rs) / len(rs),
            "batch_size": rs[0]["batch_size"], "n_test": rs[0]["n_test"], "n_train": rs[0]["n_train"],
            "diverged_seeds": sum(r["diverged"] for r in rs),
            # Slow starts are common here (the start-of-training plateau): count the seeds that left chance.
            "seeds_above_chance": sum(r["accuracy"] > 1 / NUM_CLASSES.get(dataset, 1e9) + 0.05 for r in rs),
            "gpu": ", ".join(sorted({r["gpu"] for r in rs})), "torch": ", ".join(sorted({r["torch"] for r in rs})),
        })
    return rows


def compare(rows: list[dict]) -> list[dict]:
    by = {(r["grid"], r["dataset"], r["variant"]): r for r in rows}
    out = []
    for grid, dataset in dict.fromkeys((r["grid"], r["dataset"]) for r in rows):
        for a, b, question in COMPARISONS:
            ra, rb = by.get((grid, dataset, a)), by.get((grid, dataset, b))
            if not ra or not rb:
                continue
            delta = 100 * (ra["accuracy"]["mean"] - rb["accuracy"]["mean"])
            se = 100 * math.sqrt(ra["accuracy"]["std"] ** 2 / ra["n_seeds"] + rb["accuracy"]["std"] ** 2 / rb["n_seeds"])
            verdict = (f"{a} better" if delta > 2 * se else f"{b} better" if delta < -2 * se else "no clear difference") \
                if min(ra["n_seeds"], rb["n_seeds"]) > 1 else "n/a (one seed)"
            out.append({"grid": grid, "dataset": dataset, "a": a, "b": b, "question": question,
                        "delta_points": delta, "se_points": se, "verdict": verdict})
    return out


def grid_provenance(records: list[dict], runs_dir: Path) -> dict:
    """Commit, GPU, torch of a grid's runs; its wall time from the GPU job's job.json (parallel shards) or
    else from the grid calls (sequential) when they trained every one of the records (runs merged in from
    runs.json, trained elsewhere, have no call here), else the sum of the runs' own times."""
    one = lambda key: ", ".join(sorted({str(r[key]) for r in records}))  # noqa: E731
    prov = {"gpu": one("gpu"), "torch": one("torch"), "commit": one("commit")}
    job = runs_dir / "job.json"
    calls = [json.loads(c.read_text()) for c in sorted((runs_dir / "grid_calls").glob("*.json"))]
    trained = {name for c in calls for name in c["done"]}
    if job.exists():
        prov.update(json.loads(job.read_text()), wall_seconds_note="the whole GPU job, shards in parallel")
    elif calls and all(f"{r['dataset']}/{r['variant']}/seed{r['seed']}" in trained for r in records):
        prov.update(wall_seconds=sum(c["wall_seconds"] for c in calls),
                    wall_seconds_note="the grid calls, one after another")
    else:
        prov.update(wall_seconds=sum(r["wall_seconds"] for r in records), wall_seconds_note="sum of the runs' own times")
    return prov


def pct(m: float, s: float, n: int) -> str:
    return f"{100 * m:.2f} ± {100 * s:.2f} (n={n})" if n > 1 else f"{100 * m:.2f} (one seed, no spread)"


def describe(row: dict, quick: bool) -> str:
    """The variant's description; a quick run's tiny models are not what the descriptions say."""
    return f"{row['model']} at the tiny quick sizes" if quick else row["description"]


def delta(c: dict) -> str:
    """a - b with its standard error; one seed on either side has no spread to quote."""
    return f"{c['delta_points']:+.2f}" + ("" if c["verdict"].startswith("n/a") else f" ± {c['se_points']:.2f}")


def tables(summary: dict, quick: bool = False) -> str:
    lines = ["**Quick run**: tiny CPU settings that check the chain; these numbers are not results.", ""] if quick else []
    for grid in dict.fromkeys(r["grid"] for r in summary["rows"]):
        prov = summary["provenance"].get(grid, {})
        for dataset in dict.fromkeys(r["dataset"] for r in summary["rows"] if r["grid"] == grid):
            rows = [r for r in summary["rows"] if r["grid"] == grid and r["dataset"] == dataset]
            epochs = "/".join(map(str, sorted({r["epochs"] for r in rows})))
            lines += [f"**{DATASET_NAMES.get(dataset, dataset)}**, grid `{grid}` ({rows[0]['n_train']:,} train / "
                      f"{rows[0]['n_test']:,} test images, every test image scored; {epochs} epoch(s); "
                      f"{prov.get('gpu', rows[0]['gpu'])}, torch {prov.get('torch', rows[0]['torch'])})", "",
                      "| variant | what it is | params | epochs | test accuracy % (mean ± std over seeds) "
                      "| seeds > chance + 5 pts | s / epoch |", "|---|---|---:|---:|---|---:|---:|"]
            lines += [f"| `{r['variant']}` | {describe(r, quick)} | {r['params']:,} | {r['epochs']} | "
                      f"{pct(r['accuracy']['mean'], r['accuracy']['std'], r['n_seeds'])} | "
                      f"{r['seeds_above_chance']}/{r['n_seeds']} | {r['seconds_per_epoch']:.2f} |" for r in rows]
            lines.append("")
        comps = [c for c in summary["comparisons"] if c["grid"] == grid]
        if comps:
            lines += [f"Differences in grid `{grid}`, in accuracy points (a − b, ± its standard error from the seeds; "
                      "'better' means more than two standard errors apart):", "",
                      "| data | question | a − b (points) | verdict |", "|---|---|---|---|"]
            lines += [f"| {c['dataset']} | {c['question']} | {delta(c)} | {c['verdict']} |" for c in comps]
            lines.append("")
        cc = prov.get("compile_check")
        if cc:
            lines += [f"torch.compile check ({cc['dataset']}, `head`, {cc['batches_per_epoch']} batches per epoch, "
                      f"scaled to a full epoch): eager {cc['eager_seconds_per_full_epoch']:.2f} s/epoch, compiled "
                      f"{cc['compiled_seconds_per_full_epoch']:.2f} s/epoch; the first compiled epoch took "
                      f"{cc['first_epoch_seconds_with_compilation']:.1f} s with compilation.", ""]
        if "wall_seconds" in prov:
            lines += [f"Grid `{grid}`: wall time {prov['wall_seconds']:.0f} s ({prov['wall_seconds_note']}); "
                      f"commit `{prov['commit']}`.", ""]
    return "\n".join(lines).strip()


def load_records(results: Path) -> list[dict]:
    path = results / "runs.json"
    records = json.loads(path.read_text()) if path.exists() else []
    for r in records:
        r.setdefault("grid", LEGACY_GRID)
        r.setdefault("quick", False)
    return records


def build(records: list[dict], old_summary: dict, runs_dirs: list[Path]) -> dict:
    rows = summarise(records)
    old_prov = old_summary.get("provenance", {})
    if "commit" in old_prov:  # the flat provenance of the legacy summary: it belongs to the legacy grid
        old_prov = {LEGACY_GRID: old_prov}
    prov = {g: old_prov[g] for g in grid_order(records) if g in old_prov}
    for d in runs_dirs:
        mine = [r for r in records if r["grid"] == d.name]
        if mine:
            prov[d.name] = grid_provenance(mine, d)
    return {"rows": rows, "comparisons": compare(rows), "provenance": prov}


def check_committed() -> int:
    """CI: the committed summary and README block equal what the committed runs.json gives."""
    old = json.loads((RESULTS / "summary.json").read_text())
    summary = build(load_records(RESULTS), old, [])
    stale = []
    if summary != old:
        stale.append(f"{RESULTS / 'summary.json'} differs from what results/runs.json gives")
    table = RESULTS / "table.md"
    if not table.exists() or table.read_text() != tables(summary) + "\n":
        stale.append(f"{table} differs from results/summary.json")
    if update_block(README, BLOCK, tables(summary), check=True):
        stale.append(f"{README}'s {BLOCK} block differs from results/summary.json")
    for s in stale:
        print(f"stale: {s}; run `python fnet-cifar/aggregate.py`", file=sys.stderr)
    return 1 if stale else 0


def main(argv=None) -> None:
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK,
                       extra=lambda p: p.add_argument("--check", action="store_true",
                                                      help="write nothing; exit 1 when the committed summary or "
                                                           "README block is stale"))
    if cfg._args.check:
        sys.exit(check_committed())
    results, runs_dirs = Path(cfg.results).resolve(), [Path(d).resolve() for d in cfg.runs]
    committed = results == RESULTS.resolve()
    for d in runs_dirs:
        if not d.is_dir():
            sys.exit(f"error: --runs {d}: no such folder")
    new = [r for d in runs_dirs for r in collect_runs(d)]
    if runs_dirs and not new:
        sys.exit(f"error: no finished runs under {', '.join(map(str, runs_dirs))}")
    if committed and any(r["quick"] for r in new):
        sys.exit("error: quick runs never go into the committed results/; use --quick (writes runs/quick/results)")
    keys = {(r["grid"], r["dataset"], r["variant"], r["seed"]) for r in new}
    records = [r for r in load_records(results) if (r["grid"], r["dataset"], r["variant"], r["seed"]) not in keys] + new
    if not records:
        sys.exit(f"error: no runs: {results / 'runs.json'} is absent and no --runs folder was given")
    old_path = results / "summary.json"
    summary = build(records, json.loads(old_path.read_text()) if old_path.exists() else {}, runs_dirs)
    quick = any(r["quick"] for r in records)
    write_json(results / "runs.json", records)
    write_json(results / "summary.json", summary)
    text = tables(summary, quick=quick)
    (results / "table.md").write_text(text + "\n")
    if cfg.readme and committed and not quick:
        update_block(README, BLOCK, text)
    print(text)


if __name__ == "__main__":
    main()
