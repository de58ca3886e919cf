"""Collect evaluated runs into committed results: runs/<set>/ -> results/summary.json and results/table.md.

    python aggregate.py [--runs runs/h100] [--results results] [--update-readme]
    python aggregate.py --runs runs/slice --results results/pilot     # the issue-21 pilot (no README block)
    python aggregate.py --quick                     # runs/quick -> runs/quick/results (never results/)
    python aggregate.py --check                     # CI: committed results and README blocks agree; writes nothing
    python aggregate.py --tables-only --update-readme   # tables and README blocks again from results/summary.json

--update-readme also rewrites the README's generated blocks (`<!-- tsf-table:start -->` ... `<!-- tsf-table:end -->`,
tsf-throughput, tsf-ddp) from the new results/summary.json (the tsf-pool block is prepare_pool.py's, from
benchmark/training_pool_manifest.json; --check checks it too). --check regenerates those blocks and
results/table.md (and results/pilot/table.md) from the committed summaries, and the summaries' rows from
the committed run files (results/run_files/, results/pilot/run_files/), writes nothing, and exits 1 with
one line per stale item. Quick runs (config.json "quick") never reach results/: their table has no paper
columns.

summary.json: {"rows": [...], "throughput": [...], "ddp": {...}, "seasonal_naive": {...}, "paper": {...}}.
Each row is one (model size, head, num_frequencies, gamma, binning) run with mase / wql (aggregate
relative scores: geometric mean over datasets of model / seasonal naive), smoothness (mean over
datasets, std = sqrt(mean of per-dataset variances)), training steps, tokens seen, tokens/s,
per_dataset (dataset -> mase, wql, relative_mase, relative_wql, smoothness) and provenance (gpu,
torch, commit, wall_seconds = training + evaluation).
"""

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaffold import Field, bootstrap_interval, parse_config, update_block, write_json

HERE = Path(__file__).resolve().parent
RESULTS, README = HERE / "results", HERE / "README.md"
POOL_MANIFEST = HERE / "benchmark" / "training_pool_manifest.json"  # prepare_pool.py; README block tsf-pool
COMMITTED = (RESULTS, RESULTS / "pilot")  # each: summary.json, table.md, run_files/ (results/pilot: no README block)
PMF_DATASET = "aus_retail"  # the forecast whose PMFs results/pmf_examples.npz keeps (first series, all steps)
KEEP = ("config.json", "env.json", "train.json", "metrics.json", "log.jsonl", "curve.jsonl")  # copied to results/run_files/<run>/
PAPER = {  # v1 Table 3 (MASE, WQL, smoothness mean, smoothness std)
    "Linear": (0.883, 0.750, 0.1689, 0.1087),
    "Fourier-64": (0.875, 0.798, 0.0032, 0.0012),
    "Fourier-128": (0.872, 0.767, 0.0068, 0.0035),
    "Fourier-256": (0.859, 0.755, 0.0139, 0.0087),
    "Fourier-550": (0.852, 0.749, 0.0283, 0.0224),
    "Fourier-550 (gamma = 0)": (0.861, 0.753, 0.0286, 0.0219),
    "Fourier-550 (uniform binning)": (0.873, 0.747, 0.0395, 0.0252),
}


def label(row) -> str:
    if row["head"] == "linear":
        name = "Linear"
    else:
        name = f"Fourier-{row['num_frequencies']}"
        if row["gamma"] == 0:
            name += " (gamma = 0)"
    if row["binning"] == "uniform":
        name += " (uniform binning)"
    elif row["binning"] == "equal_width":
        name += " (equal-width binning)"
    return name


def collect(runs: Path):
    rows = []
    for metrics_path in sorted(runs.glob("*/metrics.json")):
        run = metrics_path.parent
        cfg = json.loads((run / "config.json").read_text())
        env = json.loads((run / "env.json").read_text())
        met = json.loads(metrics_path.read_text())
        train = json.loads((run / "train.json").read_text()) if (run / "train.json").exists() else {}
        tokens_per_step = cfg["batch_size"] * (cfg["context_length"] + cfg["prediction_length"])
        row = dict(
            run=run.name, size=cfg["size"], head=cfg["head"],
            num_frequencies=cfg["num_frequencies"] if cfg["head"] == "fourier" else None,
            gamma=cfg["gamma"] if cfg["head"] == "fourier" else None, binning=cfg["binning"],
            mase=met["mase"], wql=met["wql"], smoothness=met.get("smoothness"), smoothness_std=met.get("smoothness_std"),
            steps=met["step"], planned_steps=cfg["steps"], finished=bool(train),
            tokens_seen=met["step"] * tokens_per_step, batch_size=cfg["batch_size"],
            context_length=cfg["context_length"], prediction_length=cfg["prediction_length"], seed=cfg["seed"],
            parameters=train.get("parameters"), tokens_per_second_concurrent=train.get("tokens_per_second"),
            final_train_loss=train.get("final_loss"), num_datasets=met["num_datasets"], num_samples=met["num_samples"],
            per_dataset={k: dict(mase=v["mase"], wql=v["wql"], relative_mase=v["relative_mase"],
                                 relative_wql=v["relative_wql"], smoothness=v.get("smoothness_mean"))
                         for k, v in met["per_dataset"].items()},
            provenance=dict(gpu=env.get("gpu") or "cpu", torch=env["torch"], transformers=env.get("transformers"),
                            commit=env["commit"], world_size=env.get("world_size", 1),
                            train_wall_seconds=train.get("wall_seconds"), eval_seconds=met["eval_seconds"],
                            wall_seconds=(train.get("wall_seconds") or 0) + met["eval_seconds"]))
        # learning curve: the intermediate evaluations of train.py (curve.jsonl) and the final one
        curve = [json.loads(line) for line in open(run / "curve.jsonl")] if (run / "curve.jsonl").exists() else []
        row["curve"] = {str(c["step"]): dict(mase=c["mase"], wql=c["wql"]) for c in curve}
        row["curve"][str(met["step"])] = dict(mase=met["mase"], wql=met["wql"])
        log = [json.loads(line) for line in open(run / "log.jsonl")] if (run / "log.jsonl").exists() else []
        row["heldout_ce"] = {str(r["step"]): r["heldout_ce"] for r in log if "heldout_ce" in r}
        row["data"] = {k: cfg.get(k) for k in ("p_kernel_synth", "kernel_synth_series", "tsmixup_series", "data_seed")}
        row["label"] = label(row)
        if cfg.get("quick"):
            row["quick"] = True  # (absent otherwise: the committed rows predate the flag)
        rows.append(row)
    order = {"Linear": 0}
    rows.sort(key=lambda r: (order.get(r["label"], 1), -(r["num_frequencies"] or 0), r["label"]))
    return rows


def read_bench(path: Path):
    if not path.exists():
        return []
    lines = [l[6:] if l.startswith("BENCH ") else l for l in path.read_text().splitlines()]
    return [json.loads(l) for l in lines if l.startswith("{")]


def ddp_summary(runs: Path):
    ddp = runs.parent / "ddp"
    bench = read_bench(ddp / "bench.txt")
    log = ddp / "ddp2_fourier550" / "log.jsonl"
    if not bench and not log.exists():
        return None
    out = {"bench": bench}
    if log.exists():
        recs = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
        out["train_log"] = [dict(step=r["step"], loss=r["loss"]) for r in recs]
        env = json.loads((ddp / "ddp2_fourier550" / "env.json").read_text())
        out["provenance"] = dict(gpu=env["gpu"], torch=env["torch"], commit=env["commit"], world_size=env["world_size"])
    one = [b for b in bench if b["world_size"] == 1]
    two = [b for b in bench if b["world_size"] == 2]
    if one and two:
        out["speedup_2gpu"] = two[0]["tokens_per_second"] / one[0]["tokens_per_second"]
    return out


def smooth(r, spread: bool = True) -> str:
    """Smoothness (mean over datasets) ± the spread over forecasts; a quick run's tiny sample gets no spread."""
    if r["smoothness"] is None:
        return "–"
    return f"{r['smoothness']:.4f}" + (f" ± {r['smoothness_std']:.4f}" if spread and r["smoothness_std"] else "")


def paired_vs_linear(rows) -> list[dict]:
    """Every other model against the linear head of the same size, steps, batch size and seed, per dataset.

    Per dataset the log ratio log(Fourier / linear) of MASE (and of WQL) is averaged over the paired seeds;
    over the datasets: the ratio exp(mean) (= the ratio of the two aggregate relative scores, seasonal
    naive cancels; < 1 favours the other model), how many datasets it wins (log ratio < 0), a seeded
    bootstrap 95% interval of the ratio over datasets, and a two-sided Wilcoxon signed-rank test of the
    log ratios against 0."""
    from scipy.stats import wilcoxon

    linear = {(r["size"], r["steps"], r["batch_size"], r["seed"]): r for r in rows if r["head"] == "linear"}
    groups = {}
    for r in rows:
        lin = linear.get((r["size"], r["steps"], r["batch_size"], r["seed"]))
        if r["head"] != "linear" and lin is not None:
            groups.setdefault((r["label"], r["size"], r["steps"], r["batch_size"]), []).append((r, lin))
    out = []
    for (label, size, steps, batch), pairs in groups.items():
        datasets = [d for d in pairs[0][0]["per_dataset"] if all(d in a["per_dataset"] and d in b["per_dataset"]
                                                                  for a, b in pairs)]
        entry = {"model": label, "size": size, "steps": steps, "batch_size": batch,
                 "seeds": sorted(a["seed"] for a, _ in pairs), "datasets": len(datasets)}
        for m in ("mase", "wql"):
            logr = np.array([np.mean([np.log(a["per_dataset"][d][m] / b["per_dataset"][d][m]) for a, b in pairs])
                             for d in datasets])
            lo, hi = bootstrap_interval(logr)
            p = float(wilcoxon(logr).pvalue) if np.any(logr != 0) else None
            entry[m] = {"ratio": float(np.exp(logr.mean())), "ratio_bootstrap_95": [float(np.exp(lo)), float(np.exp(hi))],
                        "wins": int((logr < 0).sum()), "losses": int((logr > 0).sum()), "wilcoxon_p": p}
        out.append(entry)
    return out


def paired_table(rows) -> str:
    """The README's paired comparison, from paired_vs_linear (empty without a linear run to pair with)."""
    pairs = paired_vs_linear(rows)
    if not pairs:
        return ""
    lines = ["", "Against the linear head, paired by dataset (same size, steps, batch and seed; ratio = geometric "
             "mean over datasets of model / linear, < 1 favours the model; bootstrap 95% over datasets; "
             "Wilcoxon signed-rank test over datasets):", "",
             "| model | steps | seeds | MASE ratio [95%] | datasets won (MASE) | p | WQL ratio [95%] | "
             "datasets won (WQL) | p |", "|---|---|---|---|---|---|---|---|---|"]
    for e in pairs:
        cells = []
        for m in ("mase", "wql"):
            c = e[m]
            lo, hi = c["ratio_bootstrap_95"]
            p = "–" if c["wilcoxon_p"] is None else f"{c['wilcoxon_p']:.2g}"
            cells.append(f"{c['ratio']:.3f} [{lo:.3f}, {hi:.3f}] | {c['wins']} of {e['datasets']} | {p}")
        lines.append(f"| {e['model']} ({e['size']}) | {e['steps']} | {len(e['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def table(rows, naive, quick: bool = False) -> str:
    """The results table (ours next to the paper's Table 3), then relative scores per dataset. A quick run's
    table has no paper columns: its tiny CPU models are not what the paper measured."""
    if quick:
        lines = ["**Quick run**: tiny CPU models that check the chain; these numbers are not results.", "",
                 "| model | MASE | WQL | smoothness | steps |", "|---|---|---|---|---|"]
        lines += [f"| {r['label']} ({r['size']}) | {r['mase']:.3f} | {r['wql']:.3f} | {smooth(r, spread=False)} | {r['steps']} |"
                  for r in rows]
    else:
        lines = ["| model | MASE (ours) | WQL (ours) | smoothness (ours) | steps | MASE (paper) | WQL (paper) | smoothness (paper) |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            p = PAPER.get(r["label"])
            paper = f"{p[0]:.3f} | {p[1]:.3f} | {p[2]:.4f} ± {p[3]:.4f}" if p else "– | – | –"
            lines.append(f"| {r['label']} ({r['size']}) | {r['mase']:.3f} | {r['wql']:.3f} | "
                         f"{smooth(r)} | {r['steps']} | {paper} |")
    if rows:
        names = list(rows[0]["per_dataset"])
        lines += ["", "Per dataset (relative MASE / relative WQL; seasonal naive = 1):", "",
                  "| dataset | " + " | ".join(r["label"] for r in rows) + " | naive MASE | naive WQL |",
                  "|---|" + "---|" * (len(rows) + 2)]
        for n in names:
            cells = [f"{r['per_dataset'][n]['relative_mase']:.3f} / {r['per_dataset'][n]['relative_wql']:.3f}" for r in rows]
            lines.append(f"| {n} | " + " | ".join(cells) + f" | {naive[n]['mase']:.3f} | {naive[n]['wql']:.3f} |")
    return "\n".join(lines) + "\n" + ("" if quick else paired_table(rows))


def throughput_table(bench) -> str:
    if not bench:
        return ""
    lines = ["| head | parameters | s/step | training tokens/s | GPU |", "|---|---|---|---|---|"]
    for b in bench:
        lines.append(f"| {b['run'].split('_mixed')[0]} | {b['parameters']:,} | {b['seconds_per_step']:.4f} | "
                     f"{b['tokens_per_second']:,.0f} | {b['gpu']} |")
    return "\n".join(lines) + "\n"


def ddp_table(ddp) -> str:
    if not ddp or not ddp.get("bench"):
        return ""
    lines = ["| GPUs | global batch | s/step | training tokens/s | GPU |", "|---|---|---|---|---|"]
    for b in ddp["bench"]:
        lines.append(f"| {b['world_size']} | {b['batch_size']} | {b['seconds_per_step']:.4f} | {b['tokens_per_second']:,.0f} | {b['gpu']} |")
    text = "\n".join(lines) + "\n"
    if "speedup_2gpu" in ddp:
        text += f"\n2-GPU speed-up: x{ddp['speedup_2gpu']:.2f}.\n"
    if ddp.get("train_log"):
        log = ddp["train_log"]
        text += (f"2-GPU training (Fourier-550, global batch 64, {log[-1]['step']} steps): loss "
                 f"{log[0]['loss']:.3f} at step {log[0]['step']} -> {log[-1]['loss']:.3f} at step {log[-1]['step']} "
                 f"(min {min(r['loss'] for r in log):.3f}).\n")
    return text


def table_md(summary: dict) -> str:
    """results/table.md: the results table and the throughput table."""
    text = table(summary["rows"], summary["seasonal_naive"], quick=summary.get("quick", False))
    tp = throughput_table(summary["throughput"])
    return text + ("\nTraining throughput (each head alone, same model):\n\n" + tp if tp else "")


FREQ_ORDER = ("Y", "Q", "M", "W", "D", "B", "H", "30min", "15min", "other")


def pool_table(manifest: dict) -> str:
    """The README's tsf-pool block: series of the TSMixup pool per source and frequency (from the committed
    benchmark/training_pool_manifest.json, written by prepare_pool.py)."""
    meta = manifest["meta"]
    freqs = [f for f in FREQ_ORDER if f in meta["per_freq"]] + sorted(set(meta["per_freq"]) - set(FREQ_ORDER))
    lines = ["| source | items | " + " | ".join(freqs) + " | series | mixable (>= 128 values) |",
             "|---|---:|" + "---:|" * len(freqs) + "---:|---:|"]
    for src, row in meta["per_source"].items():
        cross = meta["per_source_freq"][src]
        lines.append(f"| {src} | {row['items']} | " + " | ".join(f"{cross.get(f, 0):,}" if cross.get(f) else "·"
                                                            for f in freqs)
                     + f" | {row['series']:,} | {row['mixable']:,} |")
    lines.append(f"| **all** | {meta['num_items']} | " + " | ".join(f"{meta['per_freq'][f]['series']:,}" for f in freqs)
                 + f" | **{meta['num_series']:,}** | **{meta['num_mixable']:,}** |")
    lines.append(f"| mixable | | " + " | ".join(f"{meta['per_freq'][f]['mixable']:,}" for f in freqs) + " | | |")
    dropped = meta["dropped"]
    drops = "; ".join(f"{n:,} {why}" for why, n in dropped.get("dropped_series", {}).items())
    items = ", ".join(k.replace(" (hash)", "") for k in dropped.get("dropped_item_names", {}))
    return ("\n".join(lines) + f"\n\n{meta['num_values']:,} values in all (series capped at the last "
            f"{meta['max_len']:,}). Dropped series: {drops}. Whole items dropped for sharing a "
            f"{meta['hash_window']}-value window hash with the benchmark: {items or 'none'}.\n")


def readme_blocks(summary: dict) -> dict:
    """The README's generated blocks, by marker name."""
    return {"tsf-table": table(summary["rows"], summary["seasonal_naive"]),
            "tsf-throughput": throughput_table(summary["throughput"]),
            "tsf-ddp": ddp_table(summary["ddp"])}


def check_committed() -> int:
    """CI: every generated block and table of the committed results equals what the committed files give."""
    stale = []
    for results in COMMITTED:
        summary = json.loads((results / "summary.json").read_text())
        rel = results.relative_to(HERE)
        rows = {r["run"]: r for r in collect(results / "run_files")}
        for r in summary["rows"]:  # the committed rows' fields (older summaries have fewer) from the run files
            new = rows.get(r["run"], {})
            if any(new.get(k) != v for k, v in r.items()):
                stale.append(f"{rel}/summary.json row {r['run']} differs from {rel}/run_files/{r['run']}/")
        if (results / "table.md").read_text() != table_md(summary):
            stale.append(f"{rel}/table.md differs from {rel}/summary.json")
        if results == RESULTS:
            for name, text in readme_blocks(summary).items():
                if update_block(README, name, text, check=True):
                    stale.append(f"README.md block {name} differs from results/summary.json")
    if update_block(README, "tsf-pool", pool_table(json.loads(POOL_MANIFEST.read_text())), check=True):
        stale.append(f"README.md block tsf-pool differs from {POOL_MANIFEST.relative_to(HERE)} "
                     "(python prepare_pool.py rewrites both)")
    for line in stale:
        print(f"stale: {line}; run `python aggregate.py --update-readme` on the runs that made it", file=sys.stderr)
    return 1 if stale else 0


@dataclass
class Config:
    runs: str = Field(str(HERE / "runs" / "h100"), "folder of evaluated run directories")
    results: str = Field(str(RESULTS), "results folder (committed: results/, results/pilot/)")
    update_readme: bool = Field(False, "rewrite the README's generated blocks (only with the committed results/)")
    tables_only: bool = Field(False, "rewrite table.md (with --update-readme also the README blocks) from the "
                                     "--results folder's summary.json alone; no runs are read")


QUICK = dict(runs=str(HERE / "runs" / "quick"), results=str(HERE / "runs" / "quick" / "results"))


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK, extra=lambda p: p.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a committed table or README block is stale"))
    if cfg._args.check:
        sys.exit(check_committed())
    runs, results = Path(cfg.runs), Path(cfg.results)
    committed = results.resolve() in [r.resolve() for r in COMMITTED]
    if cfg.tables_only:  # e.g. after a change of the tables' code: the summary stays as it is
        if not (results / "summary.json").exists():
            sys.exit(f"error: --tables-only: no {results / 'summary.json'}")
        if cfg.update_readme and results.resolve() != RESULTS.resolve():
            sys.exit(f"error: --update-readme only with the committed results/ (got --results {results})")
        summary = json.loads((results / "summary.json").read_text())
        (results / "table.md").write_text(table_md(summary))
        if cfg.update_readme:
            for name, text in readme_blocks(summary).items():
                update_block(README, name, text)
        print(f"rewrote {results / 'table.md'}" + (" and the README blocks" if cfg.update_readme else ""))
        return
    if not runs.is_dir():
        sys.exit(f"error: --runs {runs}: no such folder")
    rows = collect(runs)
    if not rows:
        sys.exit(f"error: no evaluated runs (*/metrics.json) under {runs}")
    quick = any(r.get("quick") for r in rows)
    if quick and committed:
        sys.exit("error: quick runs never go into the committed results; use --quick (writes runs/quick/results)")
    if cfg.update_readme and (quick or results.resolve() != RESULTS.resolve()):
        sys.exit(f"error: --update-readme only with the committed results/ (got --results {results})")
    met = json.loads((runs / rows[0]["run"] / "metrics.json").read_text())
    naive = {k: dict(mase=v["naive_mase"], wql=v["naive_wql"]) for k, v in met["per_dataset"].items()}
    bench = read_bench(runs / "bench.jsonl")
    summary = dict(rows=rows, throughput=bench, ddp=ddp_summary(runs), seasonal_naive=naive,
                   paper={k: dict(mase=v[0], wql=v[1], smoothness=v[2], smoothness_std=v[3]) for k, v in PAPER.items()})
    if quick:
        summary = dict(quick=True, **{k: v for k, v in summary.items() if k != "paper"})
    results.mkdir(parents=True, exist_ok=True)
    pmfs = {}
    for r in rows:
        ex = runs / r["run"] / "pmf_examples.npz"
        if ex.exists():
            z = np.load(ex)
            pmfs[r["run"]] = z[PMF_DATASET] if PMF_DATASET in z else z[list(z.keys())[0]]
        (results / "run_files" / r["run"]).mkdir(parents=True, exist_ok=True)
        for name in KEEP:
            if (runs / r["run"] / name).exists():
                shutil.copy(runs / r["run"] / name, results / "run_files" / r["run"] / name)
    if pmfs:
        np.savez_compressed(results / "pmf_examples.npz", **pmfs)
    write_json(results / "summary.json", summary)
    (results / "table.md").write_text(table_md(summary))
    print(table_md(summary))
    if cfg.update_readme:
        for name, text in readme_blocks(summary).items():
            update_block(README, name, text)


if __name__ == "__main__":
    main()
