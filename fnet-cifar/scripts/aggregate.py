"""
Collect the grid's runs into the committed results, then regenerate the figure and the tables.

    python fnet-cifar/scripts/aggregate.py                 # runs/ -> results/ -> figure, experiments.md, README.md
    python fnet-cifar/scripts/aggregate.py --from-results  # re-derive everything from results/runs.json alone

results/runs.json   one record per run (final metrics, per-epoch test accuracy)
results/summary.json one row per (dataset, variant): params, n_seeds, accuracy mean/std, seconds_per_epoch,
                    the key comparisons, and provenance (gpu, torch, commit, wall_seconds)
results/ablation.png accuracy per variant, mean +- std over seeds
The blocks between "<!-- generated:NAME -->" and "<!-- /generated:NAME -->" in experiments.md and README.md
are rewritten; nothing outside them is touched.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from grid import DATASETS, VARIANTS  # sibling script (imports train, which sets up the src/ import)

EXP_ROOT = Path(__file__).resolve().parents[1]
DATASET_NAMES = {"fashion-mnist": "Fashion-MNIST", "synthetic": "synthetic frequency-labelled set",
                 "cifar100": "CIFAR-100"}
NUM_CLASSES = {"fashion-mnist": 10, "synthetic": 10, "cifar100": 100, "cifar100-coarse": 20}
# (a, b, question): a - b in accuracy points.
COMPARISONS = [
    ("head", "real-only", "keep the imaginary part (realify) vs discard it (Re only)"),
    ("head", "pe-none", "sinusoidal positional channels vs none"),
    ("pe-simple", "pe-none", "simple positional channels vs none"),
    ("head", "pe-simple", "sinusoidal vs simple positional channels"),
    ("head", "legacy-layout", "fixed layout vs the seed's scrambled layout"),
    ("head", "fnet-patches", "Spectracles vs FNet encoder on patches"),
    ("head", "attention-patches", "Spectracles vs attention encoder on patches"),
]


def collect_runs(runs_dir: Path) -> list[dict]:
    records = []
    for mpath in sorted(runs_dir.glob("*/*/seed*/metrics.json")):
        if mpath.parts[-4].startswith("_"):  # _probe/, _compile/ are timing runs, not results
            continue
        cfg = json.loads((mpath.parent / "config.json").read_text())
        env = json.loads((mpath.parent / "env.json").read_text())
        m = json.loads(mpath.read_text())
        records.append({
            "dataset": cfg["dataset"], "variant": cfg["variant"] or mpath.parts[-3], "seed": cfg["seed"],
            "params": m["params"], "accuracy": m["test/acc"], "test_loss": m["test/loss"], "train_accuracy": m["train/acc"],
            "epochs": m["epochs_run"], "batch_size": cfg["batch_size"], "n_train": m["n_train"], "n_test": m["n_test"],
            "seconds_per_epoch": m["seconds_per_epoch"], "first_epoch_seconds": m["first_epoch_seconds"],
            "wall_seconds": m["wall_seconds"], "diverged": m["diverged"], "amp": m["amp"],
            "gpu": env["gpu"] or "cpu", "torch": env["torch"], "commit": env["commit"],
            "accuracy_per_epoch": [h["test/acc"] for h in m["history"]],
            "config": {k: v for k, v in cfg.items() if k not in ("out_dir", "data_dir", "progress", "device")},
        })
    return records


def mean_std(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)  # sample std


def order_key(dataset: str, variant: str) -> tuple:
    d = list(DATASETS).index(dataset) if dataset in DATASETS else len(DATASETS)
    v = list(VARIANTS).index(variant) if variant in VARIANTS else len(VARIANTS)
    return d, dataset, v, variant


def summarise(records: list[dict]) -> list[dict]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["dataset"], r["variant"]), []).append(r)
    rows = []
    for (dataset, variant), rs in sorted(groups.items(), key=lambda kv: order_key(*kv[0])):
        settings = {json.dumps({k: v for k, v in r["config"].items() if k != "seed"}, sort_keys=True) for r in rs}
        if len(settings) > 1:
            raise ValueError(f"{dataset}/{variant}: seeds were run with different settings; use separate out dirs")
        acc_mean, acc_std = mean_std([r["accuracy"] for r in rs])
        rows.append({
            "variant": variant, "dataset": dataset, "description": VARIANTS.get(variant, ("", {}))[0],
            "params": rs[0]["params"], "n_seeds": len(rs), "seeds": sorted(r["seed"] for r in rs),
            "accuracy": {"mean": acc_mean, "std": acc_std, "per_seed": [r["accuracy"] for r in sorted(rs, key=lambda r: r["seed"])]},
            "seconds_per_epoch": sum(r["seconds_per_epoch"] for r in rs) / len(rs),
            "epochs": rs[0]["epochs"], "batch_size": rs[0]["batch_size"], "n_test": rs[0]["n_test"],
            "n_train": rs[0]["n_train"], "diverged_seeds": sum(r["diverged"] for r in rs),
            # Slow starts are common here (the seed saw long plateaus): count the seeds that left chance level.
            "seeds_above_chance": sum(r["accuracy"] > 1 / NUM_CLASSES.get(dataset, 1e9) + 0.05 for r in rs),
        })
    return rows


def compare(rows: list[dict]) -> list[dict]:
    by = {(r["dataset"], r["variant"]): r for r in rows}
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for a, b, question in COMPARISONS:
            ra, rb = by.get((dataset, a)), by.get((dataset, b))
            if not ra or not rb:
                continue
            delta = 100 * (ra["accuracy"]["mean"] - rb["accuracy"]["mean"])
            se = 100 * math.sqrt(ra["accuracy"]["std"] ** 2 / ra["n_seeds"] + rb["accuracy"]["std"] ** 2 / rb["n_seeds"])
            verdict = (f"{a} better" if delta > 2 * se else f"{b} better" if delta < -2 * se else "no clear difference") \
                if min(ra["n_seeds"], rb["n_seeds"]) > 1 else "n/a (one seed)"
            out.append({"dataset": dataset, "a": a, "b": b, "question": question, "delta_points": delta,
                        "se_points": se, "verdict": verdict})
    return out


def provenance(records: list[dict], grid: dict | None, rows: list[dict], runs_dir: Path) -> dict:
    def one(key: str) -> str:
        return ", ".join(sorted({str(r[key]) for r in records}))
    prov = {"gpu": one("gpu"), "torch": one("torch"), "commit": one("commit"),
            "wall_seconds": grid["wall_seconds"] if grid else sum(r["wall_seconds"] for r in records),
            "wall_seconds_note": "the whole grid call(s), probes included" if grid else "sum of the runs' own times"}
    if grid:
        prov["grid_calls"] = [{k: c[k] for k in ("epochs", "seeds", "budget_s", "skipped", "failed", "wall_seconds")}
                              for c in grid["calls"]]
    # The torch.compile check: one compiled "head" run on a slice of an epoch, next to the eager rows.
    for mpath in sorted((runs_dir / "_compile").glob("*/head-compiled/seed0/metrics.json")):
        m = json.loads(mpath.read_text())
        eager = next((r for r in rows if r["dataset"] == mpath.parts[-4] and r["variant"] == "head"), None)
        if eager:
            scale = eager["n_train"] / m["n_train"]
            prov["compile_check"] = {
                "dataset": mpath.parts[-4], "batches_per_epoch": math.ceil(m["n_train"] / eager["batch_size"]),
                "compiled_seconds_per_full_epoch": m["seconds_per_epoch"] * scale,
                "eager_seconds_per_full_epoch": eager["seconds_per_epoch"],
                "first_epoch_seconds_with_compilation": m["first_epoch_seconds"],
                "compiled_epochs": m["epochs_run"], "compiled_test_accuracy": m["test/acc"]}
    return prov


def pct(m: float, s: float, n: int) -> str:
    return f"{100 * m:.2f} ± {100 * s:.2f} (n={n})"


def tables(summary: dict) -> str:
    prov, lines = summary["provenance"], []
    for dataset in dict.fromkeys(r["dataset"] for r in summary["rows"]):
        rows = [r for r in summary["rows"] if r["dataset"] == dataset]
        epochs = sorted({r["epochs"] for r in rows})
        lines += [f"**{DATASET_NAMES.get(dataset, dataset)}** ({rows[0]['n_train']:,} train / {rows[0]['n_test']:,} test "
                  f"images, every test image scored; {'/'.join(map(str, epochs))} epoch{'s' if epochs != [1] else ''}, "
                  f"batch {rows[0]['batch_size']}; "
                  f"{prov['gpu']}, torch {prov['torch']})", "",
                  "| variant | what it is | params | test accuracy % (mean ± std over seeds) | seeds > chance + 5 pts "
                  "| s / epoch |", "|---|---|---:|---|---:|---:|"]
        lines += [f"| `{r['variant']}` | {r['description']} | {r['params']:,} | "
                  f"{pct(r['accuracy']['mean'], r['accuracy']['std'], r['n_seeds'])} | "
                  f"{r['seeds_above_chance']}/{r['n_seeds']} | {r['seconds_per_epoch']:.2f} |" for r in rows]
        lines.append("")
    lines += ["Differences in accuracy points (a − b, ± its standard error from the seeds; 'better' means more than "
              "two standard errors apart):", "",
              "| data | question | a − b (points) | verdict |", "|---|---|---|---|"]
    lines += [f"| {c['dataset']} | {c['question']} | {c['delta_points']:+.2f} ± {c['se_points']:.2f} | {c['verdict']} |"
              for c in summary["comparisons"]]
    cc = prov.get("compile_check")
    if cc:
        lines += ["", f"torch.compile check ({cc['dataset']}, `head`, {cc['batches_per_epoch']} batches per epoch, scaled to "
                  f"a full epoch): eager {cc['eager_seconds_per_full_epoch']:.2f} s/epoch, compiled "
                  f"{cc['compiled_seconds_per_full_epoch']:.2f} s/epoch; the first compiled epoch took "
                  f"{cc['first_epoch_seconds_with_compilation']:.1f} s with compilation."]
    lines += ["", f"Grid wall time {prov['wall_seconds']:.0f} s ({prov['wall_seconds_note']}); commit `{prov['commit']}`."]
    return "\n".join(lines)


def rewrite_block(path: Path, name: str, text: str) -> None:
    if not path.exists():
        return
    src = path.read_text()
    pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.S)
    if pattern.search(src):
        path.write_text(pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), src))


def plot(summary: dict, path: Path) -> None:
    import matplotlib.pyplot as plt
    import plot_style

    plot_style.use()
    datasets = list(dict.fromkeys(r["dataset"] for r in summary["rows"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.6 * len(datasets), 3.6), squeeze=False)
    fig.subplots_adjust(wspace=0.45)
    for ax, dataset in zip(axes[0], datasets):
        rows = [r for r in summary["rows"] if r["dataset"] == dataset][::-1]
        colours = [plot_style.COLORS["fourier"] if r["variant"] == "head" else plot_style.COLORS["regression"] for r in rows]
        means = [100 * r["accuracy"]["mean"] for r in rows]
        ax.barh(range(len(rows)), means, xerr=[100 * r["accuracy"]["std"] for r in rows], color=colours, capsize=3)
        for i, r in enumerate(rows):  # the seeds themselves
            ax.plot([100 * a for a in r["accuracy"]["per_seed"]], [i] * r["n_seeds"], "k.", ms=3)
        ax.set_yticks(range(len(rows)), [r["variant"] for r in rows])
        lo = 100 * min(min(r["accuracy"]["per_seed"] + [r["accuracy"]["mean"] - r["accuracy"]["std"]]) for r in rows)
        hi = 100 * max(max(r["accuracy"]["per_seed"] + [r["accuracy"]["mean"] + r["accuracy"]["std"]]) for r in rows)
        ax.set_xlim(max(0, lo - 3), min(100, hi + 3))
        if dataset in NUM_CLASSES and 100 / NUM_CLASSES[dataset] > lo - 3:
            ax.axvline(100 / NUM_CLASSES[dataset], color="k", ls=":", lw=1, label="chance")
            ax.legend(loc="center right")
        ax.set_xlabel("test accuracy (%)")
        ax.set_title(f"{DATASET_NAMES.get(dataset, dataset)}, {rows[0]['epochs']} epoch{'s' if rows[0]['epochs'] != 1 else ''}")
    plot_style.save(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    p.add_argument("--runs-dir", default=str(EXP_ROOT / "runs"))
    p.add_argument("--results-dir", default=str(EXP_ROOT / "results"))
    p.add_argument("--from-results", action="store_true", help="use results/runs.json instead of scanning runs/")
    p.add_argument("--docs", action=argparse.BooleanOptionalAction, default=True,
                   help="rewrite the generated blocks of experiments.md and README.md")
    args = p.parse_args()
    runs_dir, res = Path(args.runs_dir), Path(args.results_dir)
    res.mkdir(parents=True, exist_ok=True)

    if args.from_results:
        records = json.loads((res / "runs.json").read_text())
        grid = json.loads((res / "grid.json").read_text()) if (res / "grid.json").exists() else None
    else:
        records = collect_runs(runs_dir)
        if not records:
            raise SystemExit(f"error: no finished runs under {runs_dir}")
        grid = json.loads((runs_dir / "grid.json").read_text()) if (runs_dir / "grid.json").exists() else None
        (res / "runs.json").write_text(json.dumps(records, indent=1) + "\n")
        if grid:
            (res / "grid.json").write_text(json.dumps(grid, indent=1) + "\n")
    rows = summarise(records)
    old = json.loads((res / "summary.json").read_text()) if args.from_results and (res / "summary.json").exists() else {}
    prov = old.get("provenance") or provenance(records, grid, rows, runs_dir)
    summary = {"rows": rows, "comparisons": compare(rows), "provenance": prov}
    (res / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(summary, res / "ablation.png")
    if args.docs:
        text = tables(summary)
        rewrite_block(EXP_ROOT / "experiments.md", "ablation", text)
        rewrite_block(EXP_ROOT / "README.md", "ablation", text)
    print(tables(summary))


if __name__ == "__main__":
    main()
