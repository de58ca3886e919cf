"""runs/ -> results/: mean and std over seeds per (head, num_frequencies), the Fourier-vs-linear
comparison, the example PMFs of Figure 2, and the README table.

    python aggregate.py                       # runs/ -> results/ (runs/quick is skipped)
    python aggregate.py --update-readme       # also rewrite the table in README.md
    python aggregate.py --runs runs/quick --results runs/quick/results     # the smoke run's chain

A "setting" is one folder of run folders, e.g. runs/standard-bin5 (the paper's labelling and split,
written to results/summary.json) or runs/odds_evens-bin5 (-> results/summary_odds_evens-bin5.json).
"""

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
import torch

from fourier_head import smoothness

HERE = Path(__file__).resolve().parent
METRICS = ("accuracy", "precision", "recall", "f1", "mse_class", "mse_bpm", "nll", "smoothness")
MAIN_SETTING = "standard-bin5"


def collect(root: Path, skip=("quick", "pilot")) -> list[dict]:
    """Every finished run under `root` (metrics.json present), with its setting and config."""
    runs = []
    for path in sorted(root.rglob("metrics.json")):
        run_dir = path.parent
        rel = run_dir.relative_to(root)
        if any(part in skip for part in rel.parts):
            continue
        cfg = json.loads((run_dir / "config.json").read_text())
        runs.append({"setting": str(rel.parents[1]), "dir": run_dir, "config": cfg,
                     "env": json.loads((run_dir / "env.json").read_text()),
                     "metrics": json.loads(path.read_text())})
    return runs


def head_key(cfg: dict) -> tuple[str, int]:
    return ("linear", 0) if cfg["head"] == "linear" else ("fourier", cfg["num_frequencies"])


def mean_std(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def welch_p(a, b) -> float | None:
    """Two-sided Welch t-test p-value (None without scipy or with < 2 seeds a side)."""
    if len(a) < 2 or len(b) < 2:
        return None
    try:
        from scipy.stats import ttest_ind
    except ImportError:
        return None
    p = float(ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


def summarise(runs: list[dict], root: Path, setting: str) -> dict:
    groups = {}
    for r in runs:
        groups.setdefault(head_key(r["config"]), []).append(r)
    rows = []
    for (head, n), rs in sorted(groups.items(), key=lambda kv: (kv[0][0] != "linear", kv[0][1])):
        row = {"head": head, "num_frequencies": n, "n_seeds": len(rs),
               "seeds": sorted(r["config"]["seed"] for r in rs)}
        for m in METRICS:
            row[m] = mean_std([r["metrics"]["final"][m] for r in rs])
        rows.append(row)

    # Fourier vs linear: difference of seed means, relative change, Welch p-value.
    comparison = []
    linear = groups.get(("linear", 0), [])
    for (head, n), rs in sorted(groups.items()):
        if head != "fourier" or not linear:
            continue
        entry = {"num_frequencies": n}
        for m in ("f1", "accuracy", "mse_bpm", "mse_class", "smoothness"):
            f = [r["metrics"]["final"][m] for r in rs]
            lin = [r["metrics"]["final"][m] for r in linear]
            entry[m] = {"fourier_minus_linear": float(np.mean(f) - np.mean(lin)),
                        "relative_percent": float(100 * (np.mean(f) / np.mean(lin) - 1)),
                        "welch_p": welch_p(f, lin)}
        comparison.append(entry)

    # Provenance: every GPU/torch/commit that produced these runs, and the sweeps' wall time.
    envs = [r["env"] for r in runs]
    wall, jobs = 0.0, set()
    for log_path in root.rglob("sweep_log.json"):
        prefix = log_path.parent.relative_to(root)
        for entry in json.loads(log_path.read_text()):
            names = entry.get("settings") or [_setting_from_args(entry.get("train_args", []))]
            if any(str(prefix / name) == setting for name in names):
                wall += entry["wall_seconds"]
                jobs.add(entry.get("jobs", 1))
    cfg0 = runs[0]["config"]
    return {
        "experiment": "toy_example_audio: tempo classification, linear vs Fourier head (paper v1 §2.3)",
        "setting": {"name": setting, "split": cfg0["split"], "bin_size": cfg0["bin_size"],
                    "num_classes": runs[0]["metrics"]["num_classes"], "n_train": runs[0]["metrics"]["n_train"],
                    "n_test": runs[0]["metrics"]["n_test"], "epochs": cfg0["epochs"],
                    "regularization_gamma": cfg0["regularization_gamma"],
                    "model": {k: cfg0[k] for k in ("d_model", "n_layers", "n_heads", "patch_mels", "patch_frames")},
                    "num_params_linear_model": next((r["metrics"]["num_params"] for r in runs
                                                     if r["config"]["head"] == "linear"), None),
                    "features": envs[0].get("features")},
        "metric_notes": {"std": "sample std over seeds (ddof=1)",
                         "final_epoch": "metrics of the last epoch (no selection on the test set)",
                         "mse_bpm": "squared difference of predicted and true bucket centres (BPM^2)",
                         "smoothness": "paper's smoothness metric, mean over test clips (lower = smoother)"},
        "rows": rows,
        "comparison_vs_linear": comparison,
        "provenance": {"gpu": sorted({e["gpu"] or "cpu" for e in envs}), "torch": sorted({e["torch"] for e in envs}),
                       "commit": sorted({str(e["commit"]) for e in envs}),
                       "wall_seconds": round(wall, 1) if wall else None,
                       "sweep_jobs": sorted(jobs),
                       "train_seconds_sum": round(sum(r["metrics"]["train_seconds"] for r in runs), 1),
                       "n_runs": len(runs)},
    }


def _setting_from_args(args: list[str]) -> str:
    """<split>-bin<k> of a sweep invocation logged before sweep.py recorded its settings."""
    get = lambda flag, default: args[args.index(flag) + 1] if flag in args else default  # noqa: E731
    return f"{get('--split', 'standard')}-bin{get('--bin-size', '5')}"


def example_pmfs(runs: list[dict], position: int, seed: int) -> dict:
    """PMFs of every head (one seed) for the test clip at `position` in the test set (Figure 2)."""
    out = {"test_position": position, "seed": seed, "heads": []}
    for r in sorted(runs, key=lambda r: head_key(r["config"])):
        if r["config"]["seed"] != seed:
            continue
        with np.load(r["dir"] / "predictions.npz") as z:
            pos = min(position, len(z["labels"]) - 1)
            pmf = z["pmfs"][pos].astype(np.float64)
            pmf /= pmf.sum()
            out.update({"clip_index": int(z["index"][pos]), "bpm": int(z["bpm"][pos]),
                        "label": int(z["labels"][pos]), "centers": z["centers"].tolist()})
        head, n = head_key(r["config"])
        out["heads"].append({"head": head, "num_frequencies": n, "pmf": [round(float(v), 6) for v in pmf],
                             "smoothness": float(smoothness(torch.tensor(pmf)))})
    return out


def markdown_table(summary: dict) -> str:
    lines = ["| head | N | seeds | accuracy | macro F1 | MSE (BPM²) | MSE (class) | smoothness |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        cell = lambda m, f: f"{r[m]['mean']:{f}} ± {r[m]['std']:{f}}"  # noqa: E731
        lines.append(f"| {r['head']} | {r['num_frequencies'] or '—'} | {r['n_seeds']} | {cell('accuracy', '.3f')} | "
                     f"{cell('f1', '.3f')} | {cell('mse_bpm', '.2f')} | {cell('mse_class', '.3f')} | "
                     f"{cell('smoothness', '.4f')} |")
    lines += ["", "| Fourier N | ΔF1 vs linear | (rel.) | Welch p | ΔMSE (BPM²) | (rel.) | Welch p |", "|---|---|---|---|---|---|---|"]
    fmt_p = lambda p: "—" if p is None else f"{p:.2g}"  # noqa: E731
    for c in summary["comparison_vs_linear"]:
        f, m = c["f1"], c["mse_bpm"]
        lines.append(f"| {c['num_frequencies']} | {f['fourier_minus_linear']:+.3f} | {f['relative_percent']:+.1f}% | "
                     f"{fmt_p(f['welch_p'])} | {m['fourier_minus_linear']:+.2f} | {m['relative_percent']:+.1f}% | "
                     f"{fmt_p(m['welch_p'])} |")
    return "\n".join(lines)


# The paper's claims (v1 §2.3 and Figure 2; ../shared/spec/paper.md §2(b)), shown beside ours.
PAPER = {"f1_gain_percent": 118, "best_num_frequencies": 1, "fig2_smoothness_linear": 0.0675,
         "fig2_smoothness_fourier2": 0.0319}


def paper_table(summaries: dict, example: dict) -> str:
    """Paper's claims vs each of our settings (best Fourier head by mean F1)."""
    header = "| | paper (pretrained AST, SynTheory, 2 epochs) |"
    rule = "|---|---|"
    cells = {"gain": [f"+{PAPER['f1_gain_percent']}%"], "best": [str(PAPER["best_num_frequencies"])],
             "mse": ["not reported"],
             "smooth": [f"{PAPER['fig2_smoothness_linear']} / {PAPER['fig2_smoothness_fourier2']} (one clip)"]}
    for name, summary in summaries.items():
        if not summary["comparison_vs_linear"]:
            continue
        s = summary["setting"]
        header += f" ours: {s['split']} split, {s['epochs']} epochs |"
        rule += "---|"
        best = max((r for r in summary["rows"] if r["head"] == "fourier"), key=lambda r: r["f1"]["mean"])
        comp = next(c for c in summary["comparison_vs_linear"] if c["num_frequencies"] == best["num_frequencies"])
        lin = next(r for r in summary["rows"] if r["head"] == "linear")
        f2 = next((r for r in summary["rows"] if r["head"] == "fourier" and r["num_frequencies"] == 2), None)
        cells["gain"].append(f"{comp['f1']['relative_percent']:+.1f}%")
        cells["best"].append(str(best["num_frequencies"]))
        cells["mse"].append(f"{comp['mse_bpm']['relative_percent']:+.1f}%")
        smooth = f"{lin['smoothness']['mean']:.4f} / {f2['smoothness']['mean']:.4f} (test mean)" if f2 else "—"
        if name == next(iter(summaries)):
            h = {(x["head"], x["num_frequencies"]): x["smoothness"] for x in example["heads"]}
            if ("linear", 0) in h and ("fourier", 2) in h:
                smooth += f"; {h[('linear', 0)]:.4f} / {h[('fourier', 2)]:.4f} (Figure 2 clip)"
        cells["smooth"].append(smooth)
    labels = {"gain": "macro-F1 change, best Fourier head vs linear", "best": "best N (by F1)",
              "mse": "MSE (BPM²) change of that head", "smooth": "smoothness, linear / Fourier N=2"}
    return "\n".join([header, rule] + [f"| {labels[k]} | " + " | ".join(v) + " |" for k, v in cells.items()])


def headline(summary: dict) -> str:
    """One generated sentence: the best Fourier head vs linear on F1 and MSE (BPM)."""
    rows = {(r["head"], r["num_frequencies"]): r for r in summary["rows"]}
    if ("linear", 0) not in rows or not summary["comparison_vs_linear"]:
        return ""
    best = max((r for r in summary["rows"] if r["head"] == "fourier"), key=lambda r: r["f1"]["mean"])
    comp = next(c for c in summary["comparison_vs_linear"] if c["num_frequencies"] == best["num_frequencies"])
    lin = rows[("linear", 0)]
    p = lambda x: "n/a" if x is None else f"{x:.2g}"  # noqa: E731
    return (f"Best Fourier head: N = {best['num_frequencies']}, macro F1 {best['f1']['mean']:.3f} ± "
            f"{best['f1']['std']:.3f} vs linear {lin['f1']['mean']:.3f} ± {lin['f1']['std']:.3f} "
            f"({comp['f1']['relative_percent']:+.1f}%, Welch p = {p(comp['f1']['welch_p'])}); MSE "
            f"{best['mse_bpm']['mean']:.2f} vs {lin['mse_bpm']['mean']:.2f} BPM² "
            f"({comp['mse_bpm']['relative_percent']:+.1f}%, p = {p(comp['mse_bpm']['welch_p'])}); "
            f"{best['n_seeds']} vs {lin['n_seeds']} seeds. Sweep wall time "
            f"{summary['provenance']['wall_seconds']} s ({', '.join(summary['provenance']['gpu'])}).")


def data_block(results: Path) -> str:
    """Generation time and librosa's tempo agreement, from results/dataset.json and tempo_check.json."""
    lines = []
    if (results / "dataset.json").exists():
        d = json.loads((results / "dataset.json").read_text())
        m = d["dataset_manifest"]
        lines.append(f"- Generation: {m['num_clips']} clips rendered in {m['build_seconds']} s "
                     f"({m['workers']} worker processes, {m['cpu_count']}-core CPU); with the log-mel features "
                     f"{d['call_seconds']} s in all; features file {d['features_mib']} MiB.")
    if (results / "tempo_check.json").exists():
        t = json.loads((results / "tempo_check.json").read_text())
        lines.append(f"- librosa {t['librosa']} `feature.tempo` on {t['n']} random clips: "
                     f"{100 * t['exact_rate']:.1f}% within {100 * t['tolerance']:.0f}% of the labelled BPM, "
                     f"{100 * t['octave_tolerant_rate']:.1f}% allowing x1/3, x1/2, x2, x3 (octave errors).")
    return "\n".join(lines)


def pilot_table(root: Path) -> list[dict]:
    """One row per pilot variant (scripts/pilot.sh): what it changed and its seed-0 metrics."""
    base = vars(_default_config())
    rows = []
    for r in collect(root):
        changed = {k: v for k, v in r["config"].items()
                   if k not in ("out_dir", "data_dir", "device", "eval_every", "renderer") and base.get(k) != v}
        rows.append({"variant": r["setting"].split("/")[0], "changed": changed,
                     **{m: round(r["metrics"]["final"][m], 4) for m in ("accuracy", "f1", "mse_bpm", "smoothness")},
                     "train_seconds": r["metrics"]["train_seconds"]})
    return rows


def _default_config():
    import train  # a sibling script: importable by name when aggregate.py runs as a script
    return train.Config()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, default=HERE / "runs")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--example-position", type=int, default=499,
                    help="test-set position of the Figure 2 clip (the reference plotted sample 499)")
    ap.add_argument("--example-seed", type=int, default=0)
    ap.add_argument("--update-readme", action="store_true", help="rewrite the generated tables in README.md")
    ap.add_argument("--pilot", type=Path, default=None, help="also tabulate scripts/pilot.sh's runs from here")
    args = ap.parse_args(argv)

    skip = tuple(s for s in ("quick", "pilot") if s not in args.runs.parts)
    runs = collect(args.runs, skip)
    if not runs:
        raise SystemExit(f"error: no finished runs (metrics.json) under {args.runs}")
    args.results.mkdir(parents=True, exist_ok=True)
    settings = sorted({r["setting"] for r in runs}, key=lambda s: (s != MAIN_SETTING, s))
    tables, summaries = {}, {}
    for setting in settings:
        rs = [r for r in runs if r["setting"] == setting]
        summary = summarise(rs, args.runs, setting)
        name = "summary.json" if setting == settings[0] else f"summary_{setting.replace('/', '_')}.json"
        (args.results / name).write_text(json.dumps(summary, indent=2))
        tables[setting] = markdown_table(summary) + "\n\n" + headline(summary)
        summaries[setting] = summary
        if setting == settings[0]:
            (args.results / "example_pmfs.json").write_text(
                json.dumps(example_pmfs(rs, args.example_position, args.example_seed)))
        print(f"{setting}: {len(rs)} runs -> {args.results / name}")
    with open(args.results / "runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["setting", "head", "num_frequencies", "seed", "epochs", "train_seconds", *METRICS])
        for r in runs:
            head, n = head_key(r["config"])
            w.writerow([r["setting"], head, n, r["config"]["seed"], r["config"]["epochs"],
                        r["metrics"]["train_seconds"], *[f"{r['metrics']['final'][m]:.6g}" for m in METRICS]])
    if args.pilot:
        (args.results / "pilot.json").write_text(json.dumps(pilot_table(args.pilot), indent=2))
    example = json.loads((args.results / "example_pmfs.json").read_text())
    blocks = [data_block(args.results), paper_table(summaries, example)]
    text = "\n\n".join([b for b in blocks if b] + [f"**{s}**\n\n{t}" for s, t in tables.items()])
    (args.results / "table.md").write_text(text + "\n")
    print(text)
    if args.update_readme:
        readme = HERE / "README.md"
        body = readme.read_text()
        start, end = "<!-- results:start -->", "<!-- results:end -->"
        if start not in body or end not in body:
            raise SystemExit(f"error: {readme} has no {start} ... {end} block")
        head, rest = body.split(start, 1)
        readme.write_text(head + start + "\n" + text + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    main()
