"""runs/ -> results/: mean and std over seeds per (head, num_frequencies), the Fourier-vs-linear
comparison, the example PMFs of Figure 2, and the README table.

    python aggregate.py                       # runs/ -> results/ (runs/quick is skipped)
    python aggregate.py --update-readme       # also rewrite the generated block of README.md
    python aggregate.py --check               # CI: exit 1 if README.md's block or table.md is stale; writes nothing
    python aggregate.py --quick               # runs/quick -> runs/quick/results (the smoke run's chain)

A "setting" is one folder of run folders, e.g. runs/standard-bin5 (the paper's labelling and split)
-> results/summary_standard-bin5.json, or runs/pretrained-crepe-tiny/standard-bin5 ->
results/summary_pretrained-crepe-tiny_standard-bin5.json. A setting whose run folders are absent but
whose rows are in results/runs.csv keeps its results/ summary, or, where there is none, is regenerated from
that file (6 digits; ECE where the runs kept their PMFs).
Rows: one per (head, N), each metric as {per_seed, mean, std}; runs with a validation split also choose
the schedule of each head and the best N there (`selection`); Fourier - linear is tested paired by seed.
The README block (between `<!-- results:start -->` and `<!-- results:end -->`) and results/table.md are
generated from the summaries; `--check` regenerates them from the committed results/summary_*.json,
results/saturation.json, dataset.json, tempo_check.json and pilot_pretrained.json alone (CPU, seconds).
Quick runs never reach results/ or the README, and their tables carry no paper column and no relative
changes (their numbers are near chance).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fourier_head import smoothness
from scaffold import Field, bootstrap_interval, parse_config, update_block, write_json

HERE = Path(__file__).resolve().parent
RESULTS, README, BLOCK = HERE / "results", HERE / "README.md", "results"
QUICK_NOTE = ("**Quick run**: tiny CPU settings that check the chain; its numbers are near chance and are not "
              "results, so they are shown without the paper's claims and without ratios to the linear head.")
# the metrics of every table (schema: {per_seed, mean, std}); the extra ones are kept in the summaries too
METRICS = ("accuracy", "f1", "mse_bpm", "nll", "ece", "smoothness")
EXTRA_METRICS = ("precision", "recall", "mse_class")
ALL_METRICS = METRICS + EXTRA_METRICS
MAIN_SETTING = "standard-bin5"
HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "precision": True, "recall": True}


def summary_name(setting: str) -> str:
    """results/ file of a setting: summary_<setting with '/' -> '_'>.json."""
    return f"summary_{setting.replace('/', '_')}.json"


def collect(root: Path, skip=("quick", "pilot")) -> list[dict]:
    """Every finished run under `root` (metrics.json present), with its setting and config."""
    runs = []
    for path in sorted(root.rglob("metrics.json")):
        run_dir = path.parent
        rel = run_dir.relative_to(root)
        if any(part in skip or (part.startswith("pilot") and "pilot" in skip) for part in rel.parts):
            continue
        cfg = json.loads((run_dir / "config.json").read_text())
        runs.append({"setting": str(rel.parents[1]), "dir": run_dir, "config": cfg,
                     "env": json.loads((run_dir / "env.json").read_text()),
                     "metrics": json.loads(path.read_text())})
    return runs


def runs_from_csv(path: Path, settings=None) -> list[dict]:
    """Runs rebuilt from a committed results/runs.csv (one row per run, final test metrics; `val_*`
    columns where the run had a validation split). Missing values (e.g. ECE of runs whose PMFs were not
    kept) become None."""
    runs = []
    if not path.exists():
        return runs
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if settings is not None and row["setting"] not in settings:
                continue
            num = lambda v: float(v) if v not in ("", None) else None  # noqa: E731
            final = {m: num(row.get(m)) for m in ALL_METRICS}
            val = {m: num(row.get(f"val_{m}")) for m in ALL_METRICS}
            cfg = {"head": row["head"], "num_frequencies": int(row["num_frequencies"]), "seed": int(row["seed"]),
                   "epochs": int(row["epochs"])}
            metrics = {"final": final, "train_seconds": num(row.get("train_seconds"))}
            if any(v is not None for v in val.values()):
                metrics["val"] = val
            runs.append({"setting": row["setting"], "dir": None, "config": cfg, "env": None, "metrics": metrics})
    return runs


def head_key(cfg: dict) -> tuple[str, int]:
    return ("linear", 0) if cfg["head"] == "linear" else ("fourier", cfg["num_frequencies"])


def seed_stats(per_seed: list) -> dict:
    """{per_seed, mean, std}: std is the sample std (ddof 1); None where a value is missing."""
    vals = np.array([v for v in per_seed if v is not None], dtype=np.float64)
    if len(vals) < len(per_seed) or not len(vals):
        return {"per_seed": per_seed, "mean": None, "std": None}
    return {"per_seed": [float(v) for v in per_seed], "mean": float(vals.mean()),
            "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}


def paired_p(diffs) -> float | None:
    """Two-sided paired t-test p-value of seed-matched differences (None with < 2 pairs or no spread)."""
    d = np.asarray(diffs, dtype=np.float64)
    if len(d) < 2 or np.all(d == d[0]):
        return None
    from scipy.stats import ttest_1samp
    p = float(ttest_1samp(d, 0.0).pvalue)
    return None if math.isnan(p) else p


def _row(head: str, n: int, rs: list[dict]) -> dict:
    rs = sorted(rs, key=lambda r: r["config"]["seed"])
    row = {"head": head, "num_frequencies": n, "epochs": rs[0]["config"].get("epochs"), "n_seeds": len(rs),
           "seeds": [r["config"]["seed"] for r in rs]}
    for m in ALL_METRICS:
        row[m] = seed_stats([r["metrics"]["final"].get(m) for r in rs])
    if all("val" in r["metrics"] for r in rs):
        row["val"] = {m: seed_stats([r["metrics"]["val"].get(m) for r in rs]) for m in METRICS}
    return row


def select(groups: dict) -> tuple[list[dict], dict]:
    """One row per (head, N). With validation metrics: the schedule (epochs) of each (head, N) and the
    best N are chosen by mean validation macro-F1; without: nothing is selected (every N is shown)."""
    by_head = {}
    for (head, n, epochs), rs in groups.items():
        by_head.setdefault((head, n), []).append(_row(head, n, rs))
    has_val = all("val" in row for rows in by_head.values() for row in rows)
    rows, schedules = [], {}
    for key in sorted(by_head, key=lambda k: (k[0] != "linear", k[1])):
        cands = by_head[key]
        if has_val:
            best = max(cands, key=lambda r: r["val"]["f1"]["mean"])
            schedules[f"{key[0]}-{key[1]}"] = {"epochs": best["epochs"],
                                               "val_f1_by_epochs": {str(r["epochs"]): r["val"]["f1"]["mean"]
                                                                    for r in cands}}
        else:
            if len(cands) > 1:
                raise SystemExit(f"error: several schedules for {key} and no validation metrics to choose one")
            best = cands[0]
        rows.append(best)
    fourier = [r for r in rows if r["head"] == "fourier"]
    if has_val:
        best_n = max(fourier, key=lambda r: r["val"]["f1"]["mean"])["num_frequencies"] if fourier else None
        selection = {"validation": True, "criterion": "mean validation macro-F1 over seeds",
                     "best_num_frequencies": best_n, "schedule_per_head": schedules,
                     "test": "read once per run after training; not used for any choice"}
    else:
        best_test = max(fourier, key=lambda r: r["f1"]["mean"])["num_frequencies"] if fourier else None
        selection = {"validation": False, "best_num_frequencies": None,
                     "best_num_frequencies_by_test_f1": best_test,
                     "note": "these runs had no validation split: every N is reported; the best N by test F1 is "
                             "a test-selected (optimistic) number, not a selection"}
    return rows, selection


def paired_vs_linear(rows: list[dict]) -> list[dict]:
    """Fourier - linear per N and metric, over seeds present in both (paired by seed)."""
    lin = next((r for r in rows if r["head"] == "linear"), None)
    out = []
    if lin is None:
        return out
    for r in rows:
        if r["head"] != "fourier":
            continue
        common = sorted(set(r["seeds"]) & set(lin["seeds"]))
        entry = {"num_frequencies": r["num_frequencies"], "n_pairs": len(common)}
        for m in METRICS:
            f = dict(zip(r["seeds"], r[m]["per_seed"]))
            li = dict(zip(lin["seeds"], lin[m]["per_seed"]))
            if not common or any(f[s] is None or li[s] is None for s in common):
                entry[m] = None
                continue
            diffs = [f[s] - li[s] for s in common]
            base = float(np.mean([li[s] for s in common]))
            entry[m] = {"fourier_minus_linear": float(np.mean(diffs)),
                        "relative_percent": float(100 * np.mean(diffs) / base) if base else None,
                        "paired_t_p": paired_p(diffs), "bootstrap_95": bootstrap_interval(diffs)}
        out.append(entry)
    return out


PAIRED_NOTE = ("Fourier - linear per seed: mean, relative change, paired t-test over seeds, and the exact "
               "percentile bootstrap 95% interval of the mean difference (scaffold.bootstrap_interval)")


def refresh_paired(summary: dict) -> dict:
    """A summary kept from earlier with its paired comparisons recomputed from its own rows (the per-seed
    values it stores), so that every summary carries the same statistics."""
    summary["paired_vs_linear"] = paired_vs_linear(summary["rows"])
    for sched in summary.get("schedules", []):
        sched["paired_vs_linear"] = paired_vs_linear(sched["rows"])
    summary["metric_notes"]["paired"] = PAIRED_NOTE
    return summary


def summarise(runs: list[dict], root: Path, setting: str, prior: dict | None = None) -> dict:
    groups = {}
    for r in runs:
        head, n = head_key(r["config"])
        groups.setdefault((head, n, r["config"].get("epochs")), []).append(r)
    rows, selection = select(groups)
    epochs = sorted({e for (_, _, e) in groups if e is not None})
    # every schedule of a setting that ran several, selected or not (e.g. the paper's 2 epochs beside the 5
    # chosen on validation): its rows and paired comparison, so a reader sees what the choice changed
    schedules = []
    if len(epochs) > 1:
        for e in epochs:
            sub, _ = select({k: v for k, v in groups.items() if k[2] == e})
            schedules.append({"epochs": e, "rows": sub, "paired_vs_linear": paired_vs_linear(sub)})
    if runs[0]["dir"] is not None:
        envs = [r["env"] for r in runs]
        wall, jobs = 0.0, set()
        for log_path in root.rglob("sweep_log.json"):
            prefix = log_path.parent.relative_to(root)
            for entry in json.loads(log_path.read_text()):
                names = entry.get("settings") or [_setting_from_args(entry.get("train_args", []))]
                if any(str(prefix / name) == setting for name in names):
                    wall += entry["wall_seconds"]
                    jobs.add(entry.get("jobs", 1))
        provenance = {"source": f"runs/{setting}/*/seed*/metrics.json + predictions.npz",
                      "gpu": sorted({e["gpu"] or "cpu" for e in envs}), "torch": sorted({e["torch"] for e in envs}),
                      "commit": sorted({str(e["commit"]) for e in envs}),
                      "wall_seconds": round(wall, 1) if wall else None, "sweep_jobs": sorted(jobs),
                      "train_seconds_sum": round(sum(r["metrics"]["train_seconds"] for r in runs), 1),
                      "n_runs": len(runs)}
        weights = sorted({json.dumps(e.get("crepe_weights")) for e in envs if e.get("crepe_weights")})
        if weights:
            provenance["crepe_weights"] = [json.loads(w) for w in weights]
        cfg0 = runs[0]["config"]
        info = {k: cfg0[k] for k in ("split", "bin_size", "epochs", "lr", "weight_decay", "head_weight_decay",
                                     "regularization_gamma", "val_fraction", "encoder", "encoder_lr", "hop_ms",
                                     "freeze_encoder", "d_model", "n_layers") if k in cfg0}
        m0 = runs[0]["metrics"]
        info.update({"num_classes": m0["num_classes"], "n_train": m0["n_train"], "n_val": m0.get("n_val", 0),
                     "n_test": m0["n_test"]})
    else:  # regenerated from results/runs.csv: keep what the earlier summary recorded
        prior = prior or {}
        provenance = {**prior.get("provenance", {}), "source": "results/runs.csv (per-run final test metrics, "
                      "6 digits, of runs whose run folders are not committed)"}
        info = {k: v for k, v in prior.get("setting", {}).items() if k != "name"}
    return {
        "experiment": "toy_example_audio: tempo classification, linear vs Fourier head (paper v1 §2.3)",
        "setting": setting, "setting_info": info,
        "metric_notes": {"std": "sample std over seeds (ddof=1); per_seed in the order of `seeds`",
                         "final": "metrics of the test split after the last epoch",
                         "mse_bpm": "squared difference of predicted and true bucket centres (BPM^2)",
                         "nll": "mean -log p(true class) of the test PMFs",
                         "ece": "top-label expected calibration error, 15 equal-width bins",
                         "smoothness": "paper's smoothness metric, mean over test clips (lower = smoother)",
                         "paired": PAIRED_NOTE},
        "selection": selection,
        "rows": rows,
        "paired_vs_linear": paired_vs_linear(rows),
        **({"schedules": schedules} if schedules else {}),
        "provenance": provenance,
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


def _fmt(stat, f: str) -> str:
    return "—" if stat is None or stat["mean"] is None else f"{stat['mean']:{f}} ± {stat['std']:{f}}"


def markdown_table(summary: dict, quick: bool = False) -> str:
    lines = ["| head | N | epochs | seeds | accuracy | macro F1 | MSE (BPM²) | NLL | ECE | smoothness |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        lines.append(f"| {r['head']} | {r['num_frequencies'] or '—'} | {r['epochs']} | {r['n_seeds']} | "
                     f"{_fmt(r['accuracy'], '.3f')} | {_fmt(r['f1'], '.3f')} | {_fmt(r['mse_bpm'], '.2f')} | "
                     f"{_fmt(r['nll'], '.3f')} | {_fmt(r['ece'], '.3f')} | {_fmt(r['smoothness'], '.4f')} |")
    caption = "mean difference, paired t-test p" if quick else "mean difference, relative change, paired t-test p"
    lines += ["", f"Fourier − linear, paired over seeds ({caption}):", "",
              "| N | pairs | Δaccuracy | ΔF1 | ΔMSE (BPM²) | ΔNLL | ΔECE | Δsmoothness |",
              "|---|---|---|---|---|---|---|---|"]
    p = lambda x: "—" if x is None else f"{x:.2g}"  # noqa: E731

    def cell(c, m, f):
        if c[m] is None:
            return "—"
        rel = None if quick else c[m]["relative_percent"]
        return (f"{c[m]['fourier_minus_linear']:+{f}} ({'' if rel is None else f'{rel:+.0f}%, '}"
                f"p {p(c[m]['paired_t_p'])})")
    for c in summary["paired_vs_linear"]:
        lines.append(f"| {c['num_frequencies']} | {c['n_pairs']} | {cell(c, 'accuracy', '.3f')} | "
                     f"{cell(c, 'f1', '.3f')} | {cell(c, 'mse_bpm', '.2f')} | {cell(c, 'nll', '.3f')} | "
                     f"{cell(c, 'ece', '.3f')} | {cell(c, 'smoothness', '.4f')} |")
    return "\n".join(lines)


# The paper's claims (v1 §2.3 and Figure 2; ../shared/spec/paper.md §2(b)), shown beside ours.
PAPER = {"f1_gain_percent": 118, "best_num_frequencies": 1, "fig2_smoothness_linear": 0.0675,
         "fig2_smoothness_fourier2": 0.0319}


def pilot_choice(results: Path) -> dict | None:
    """The Fourier N that the regenerated pilot (results/pilot.json, seed 0, validation split carved from
    train) scores best among the base recipe's variants that change only N: the settings without a
    validation split of their own (the from-scratch sweeps) report this N, chosen without the test split."""
    path = results / "pilot.json"
    if not path.exists():
        return None
    pilot = json.loads(path.read_text())
    default_n = _default_config().num_frequencies
    cands = [r for r in (pilot.get("rows", []) if isinstance(pilot, dict) else [])
             if r.get("metrics_on") == "validation" and "head" not in r["changed"]
             and set(r["changed"]) <= {"val_fraction", "num_frequencies"}]
    if not cands:
        return None
    best = max(cands, key=lambda r: r["f1"])
    ns = sorted(r["changed"].get("num_frequencies", default_n) for r in cands)
    return {"num_frequencies": best["changed"].get("num_frequencies", default_n), "candidates": ns,
            "val_f1": best["f1"]}


def chosen_n(summary: dict, pilot: dict | None = None) -> tuple[int | None, str]:
    """The Fourier N a setting reports: selected on its own validation split; else the N the validation
    pilot chose (`pilot_choice`); else the best by test F1 (flagged as optimistic)."""
    sel = summary["selection"]
    if sel["validation"]:
        return sel["best_num_frequencies"], "selected on validation"
    if pilot is not None:
        ns = ", ".join(map(str, pilot["candidates"]))
        return pilot["num_frequencies"], f"chosen on the seed-0 validation pilot, N in {{{ns}}}"
    return sel["best_num_frequencies_by_test_f1"], "best by test F1; no validation split, so optimistic"


def _comparison(summary: dict, n: int | None) -> dict | None:
    """The paired Fourier - linear entry of N in a summary (None when that N did not run)."""
    return next((c for c in summary["paired_vs_linear"] if c["num_frequencies"] == n), None)


def _pct(comp: dict | None, m: str) -> str:
    if comp is None or comp[m] is None:
        return "—"
    p = comp[m]["paired_t_p"]
    return f"{comp[m]['relative_percent']:+.1f}% (paired p {'—' if p is None else format(p, '.2g')})"


def paper_table(summaries: dict, pilot: dict | None = None) -> str:
    """Paper's claim vs each of our settings, for the N chosen as chosen_n() says; settings without a
    validation split also show their best N by test F1, marked optimistic."""
    header, rule = "| | paper (pretrained AST, SynTheory, 2 epochs) |", "|---|---|"
    cells = {"gain": [f"+{PAPER['f1_gain_percent']}%"],
             "best": [f"{PAPER['best_num_frequencies']} (how chosen: not stated)"],
             "mse": ["not reported"], "nll": ["not reported"], "ece": ["not reported"],
             "test_best": ["—"]}
    for name, summary in summaries.items():
        n, how = chosen_n(summary, pilot)
        comp = _comparison(summary, n)
        if comp is None:
            continue
        header += f" {name} |"
        rule += "---|"
        cells["gain"].append(_pct(comp, "f1"))
        cells["best"].append(f"{n} ({how})")
        cells["mse"].append(_pct(comp, "mse_bpm"))
        cells["nll"].append(_pct(comp, "nll"))
        cells["ece"].append(_pct(comp, "ece"))
        sel = summary["selection"]
        if sel["validation"]:
            cells["test_best"].append("— (N chosen on validation)")
        else:
            nt = sel["best_num_frequencies_by_test_f1"]
            cells["test_best"].append(f"N = {nt}: {_pct(_comparison(summary, nt), 'f1')}")
    labels = {"gain": "macro-F1 change, Fourier head vs linear", "best": "Fourier N",
              "mse": "MSE (BPM²) change", "nll": "NLL change", "ece": "ECE change",
              "test_best": "macro-F1 change at the best N by test F1 (optimistic)"}
    return "\n".join([header, rule] + [f"| {labels[k]} | " + " | ".join(v) + " |" for k, v in cells.items()])


def headline(summary: dict, quick: bool = False, pilot: dict | None = None) -> str:
    """One generated sentence: the chosen Fourier head vs linear, and how N was chosen (quick: no relative change)."""
    n, how = chosen_n(summary, pilot)
    rows = {(r["head"], r["num_frequencies"]): r for r in summary["rows"]}
    comp = _comparison(summary, n)
    if ("linear", 0) not in rows or comp is None:
        return ""
    best, lin, prov = rows[("fourier", n)], rows[("linear", 0)], summary["provenance"]
    p = lambda x: "n/a" if x is None else f"{x:.2g}"  # noqa: E731
    change = "" if quick else f"{comp['f1']['relative_percent']:+.1f}%, "
    lo, hi = comp["f1"].get("bootstrap_95") or (None, None)
    interval = "" if lo is None or quick else (f"difference {comp['f1']['fourier_minus_linear']:+.3f}, "
                                                f"bootstrap 95% [{lo:+.3f}, {hi:+.3f}], ")
    return (f"Fourier N = {n} ({how}): macro F1 {_fmt(best['f1'], '.3f')} vs linear {_fmt(lin['f1'], '.3f')} "
            f"({change}{interval}paired p = {p(comp['f1']['paired_t_p'])}, "
            f"{comp['n_pairs']} seeds); "
            f"NLL {_fmt(best['nll'], '.3f')} vs {_fmt(lin['nll'], '.3f')}. Runs: {prov.get('n_runs')} on "
            f"{', '.join(prov.get('gpu') or ['?'])}, sweep wall time {prov.get('wall_seconds')} s.")


def schedules_text(summary: dict, quick: bool = False) -> str:
    """The tables of the schedules not shown above: with several schedules run, the one every head chose on
    validation is the main table; each other one (e.g. the paper's 2 epochs) follows, marked unselected."""
    chosen = {v["epochs"] for v in summary["selection"].get("schedule_per_head", {}).values()}
    parts = []
    for sch in summary.get("schedules", []):
        if chosen == {sch["epochs"]}:
            continue
        parts.append(f"At {sch['epochs']} epochs for every head (test metrics; a schedule not selected on "
                     f"validation, shown for comparison):\n\n{markdown_table(sch, quick)}")
    return "\n\n".join(parts)


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
    if (results / "pilot_pretrained.json").exists():
        pp = json.loads((results / "pilot_pretrained.json").read_text())
        by_input = {}
        for r in pp["rows"]:
            by_input.setdefault(r["input"], []).append(r)
        cells = "; ".join(f"{name}: F1 {np.mean([r['f1'] for r in rs]):.3f}, accuracy "
                          f"{np.mean([r['accuracy'] for r in rs]):.3f}, NLL {np.mean([r['nll'] for r in rs]):.3f}"
                          for name, rs in by_input.items())
        lines.append(f"- Encoder pilot (`results/pilot_pretrained.json`; frozen CREPE-tiny, {pp['pilot_train']} / "
                     f"{pp['pilot_val']} clips of the train side, {pp['epochs']} epochs, validation scores, seeds "
                     f"{sorted({r['seed'] for r in pp['rows']})}): {cells}.")
    return "\n".join(lines)


def saturation_block(results: Path, summaries: dict) -> str:
    """results/saturation.json (the exact cap, saturation.py) beside the main setting's Fourier heads."""
    if not (results / "saturation.json").exists() or MAIN_SETTING not in summaries:
        return ""
    rows = {r["num_frequencies"]: r for r in summaries[MAIN_SETTING]["rows"] if r["head"] == "fourier"}
    lines = ["Saturation cap (`saturation.py`) vs the Fourier heads of standard-bin5:", "",
             "| N | cap (N+1)/m | NLL floor −log(cap) | smoothness of the capped PMF | heads: NLL | heads: smoothness |",
             "|---|---|---|---|---|---|"]
    for c in json.loads((results / "saturation.json").read_text())["rows"]:
        r = rows.get(c["num_frequencies"])
        lines.append(f"| {c['num_frequencies']} | {c['cap']:.4f} | {c['nll_floor']:.3f} | "
                     f"{c['smoothness_of_most_concentrated']:.5f} | {_fmt(r['nll'], '.3f') if r else '—'} | "
                     f"{_fmt(r['smoothness'], '.4f') if r else '—'} |")
    return "\n".join(lines)


def pilot_table(root: Path) -> dict:
    """One row per pilot variant (scripts/pilot.sh): what it changed and its seed-0 metrics, on the
    validation split when the runs had one (the regenerated pilot), else on test (the first pilot)."""
    base = dataclasses.asdict(_default_config())
    rows, envs = [], []
    for r in collect(root):
        changed = {k: v for k, v in r["config"].items()
                   if k not in ("out_dir", "data_dir", "device", "eval_every", "renderer") and base.get(k, v) != v}
        split = "val" if "val" in r["metrics"] else "final"
        rows.append({"variant": r["setting"].split("/")[0], "changed": changed,
                     "metrics_on": "validation" if split == "val" else "test",
                     **{m: (None if r["metrics"][split].get(m) is None else round(r["metrics"][split][m], 4))
                        for m in METRICS},
                     "train_seconds": r["metrics"]["train_seconds"]})
        envs.append(r["env"])
    return {"what": "scripts/pilot.sh: seed-0 variants of the from-scratch encoder and schedule",
            "rows": rows,
            "provenance": {"gpu": sorted({e["gpu"] or "cpu" for e in envs}),
                           "torch": sorted({e["torch"] for e in envs}),
                           "commit": sorted({str(e["commit"]) for e in envs}), "n_runs": len(rows),
                           "source": "scripts/pilot.sh -> aggregate.py --pilot"}}


def _default_config():
    import train  # a sibling script: importable by name when aggregate.py runs as a script
    return train.Config()


def paired_settings(a: dict, b: dict, label: str) -> dict:
    """Setting a - setting b per (head, N), paired by seed (e.g. head weight decay 0 vs the committed 0.05)."""
    rows_b = {(r["head"], r["num_frequencies"]): r for r in b["rows"]}
    out = {"what": label, "a": a["setting"], "b": b["setting"], "rows": []}
    for r in a["rows"]:
        other = rows_b.get((r["head"], r["num_frequencies"]))
        if other is None:
            continue
        common = sorted(set(r["seeds"]) & set(other["seeds"]))
        entry = {"head": r["head"], "num_frequencies": r["num_frequencies"], "n_pairs": len(common)}
        for m in METRICS:
            va, vb = dict(zip(r["seeds"], r[m]["per_seed"])), dict(zip(other["seeds"], other[m]["per_seed"]))
            if not common or any(va[s] is None or vb[s] is None for s in common):
                entry[m] = None
                continue
            diffs = [va[s] - vb[s] for s in common]
            entry[m] = {"a_minus_b": float(np.mean(diffs)), "paired_t_p": paired_p(diffs)}
        out["rows"].append(entry)
    return out


def write_runs_csv(path: Path, runs: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["setting", "head", "num_frequencies", "seed", "epochs", "train_seconds", *ALL_METRICS,
                    *[f"val_{m}" for m in ALL_METRICS]])
        fmt = lambda v: "" if v is None else f"{v:.6g}"  # noqa: E731
        for r in sorted(runs, key=lambda r: (r["setting"], head_key(r["config"]), r["config"].get("epochs") or 0,
                                             r["config"]["seed"])):
            head, n = head_key(r["config"])
            val = r["metrics"].get("val", {})
            w.writerow([r["setting"], head, n, r["config"]["seed"], r["config"].get("epochs"),
                        fmt(r["metrics"].get("train_seconds")),
                        *[fmt(r["metrics"]["final"].get(m)) for m in ALL_METRICS],
                        *[fmt(val.get(m)) for m in ALL_METRICS]])


def readme_text(results: Path, summaries: dict, quick: bool = False) -> str:
    """The generated block: data lines, the paper comparison and the saturation table (real runs only),
    then one table per setting. `summaries` in table order (main_first)."""
    pilot = None if quick else pilot_choice(results)
    blocks = [QUICK_NOTE] if quick else [data_block(results), paper_table(summaries, pilot),
                                         saturation_block(results, summaries)]
    tables = ["\n\n".join(t for t in (f"**{s}**", markdown_table(summary, quick), headline(summary, quick, pilot),
                                       schedules_text(summary, quick)) if t)
              for s, summary in summaries.items()]
    return "\n\n".join([b for b in blocks if b] + tables)


def main_first(settings) -> list[str]:
    return sorted(settings, key=lambda s: (s != MAIN_SETTING, s))


def check_committed() -> int:
    """CI: README.md's generated block and results/table.md equal what the committed results/ give.
    Writes nothing; 0 when nothing would change, else 1 with one line naming what is stale."""
    by_setting = {}
    for path in RESULTS.glob("summary_*.json"):
        summary = json.loads(path.read_text())
        by_setting[summary["setting"]] = summary
    text = readme_text(RESULTS, {s: by_setting[s] for s in main_first(by_setting)})
    stale = [f"README.md block '{BLOCK}'"] if update_block(README, BLOCK, text, check=True) else []
    table = RESULTS / "table.md"
    if not table.exists() or table.read_text() != text + "\n":
        stale.append("results/table.md")
    if stale:
        print(f"error: stale: {' and '.join(stale)} differ from results/ (run `python aggregate.py "
              "--update-readme`)", file=sys.stderr)
        return 1
    print(f"README.md block '{BLOCK}' and results/table.md match results/")
    return 0


@dataclass
class Config:
    runs: str = Field(str(HERE / "runs"), "folder of run folders (runs/quick and pilot folders are skipped unless "
                      "they are this folder)")
    results: str = Field(str(RESULTS), "results folder (--quick: runs/quick/results)")
    example_position: int = Field(499, "test-set position of the Figure 2 clip (the reference plotted sample 499)",
                                  low=0)
    example_seed: int = Field(0, "seed of the Figure 2 runs", low=0)
    update_readme: bool = Field(False, "rewrite the generated block of README.md (committed results only)")
    pilot: str = Field("", "also tabulate scripts/pilot.sh's runs from this folder")


QUICK = dict(runs=str(HERE / "runs" / "quick"), results=str(HERE / "runs" / "quick" / "results"))


def main(argv=None) -> None:
    args = parse_config(Config, argv, description=__doc__, quick=QUICK,
                        extra=lambda p: p.add_argument("--check", action="store_true",
                                                       help="write nothing; exit 1 when README.md's generated block "
                                                            "or results/table.md is stale"))
    if args._args.check:
        sys.exit(check_committed())
    runs_dir, results = Path(args.runs), Path(args.results)
    committed = results.resolve() == RESULTS.resolve()
    skip = tuple(s for s in ("quick", "pilot") if s not in runs_dir.parts)
    runs = collect(runs_dir, skip) if runs_dir.exists() else []
    quick = any(r["config"].get("quick") for r in runs)
    if quick and committed:
        sys.exit(f"error: {runs_dir} holds quick runs: they never go into results/ (use --quick, or --results "
                 "elsewhere)")
    if args.update_readme and not committed:
        sys.exit("error: --update-readme rewrites README.md from the committed results/ only (drop --results)")
    # settings whose run folders are not here: their rows in results/runs.csv go back into it, and their
    # summary is kept (or, where results/ has none, regenerated from those rows)
    in_dirs = {r["setting"] for r in runs}
    csv_runs = [r for r in runs_from_csv(results / "runs.csv") if r["setting"] not in in_dirs]
    if not runs and not csv_runs:
        sys.exit(f"error: no finished runs under {runs_dir} and no {results / 'runs.csv'}")
    results.mkdir(parents=True, exist_ok=True)
    everything = runs + csv_runs
    summaries = {}
    for setting in main_first({r["setting"] for r in everything}):
        rs = [r for r in everything if r["setting"] == setting]
        path = results / summary_name(setting)
        if setting not in in_dirs and path.exists() and not quick:
            # no run folders here: the summary made from them stands (runs.csv keeps 6 digits only)
            summaries[setting] = refresh_paired(json.loads(path.read_text()))
            write_json(path, summaries[setting], indent=2)
            print(f"{setting}: no run folders under {runs_dir}; kept {path}")
            continue
        legacy = results / "summary.json"  # the main setting's file before per-setting names
        prior_path = path if path.exists() else (legacy if setting == MAIN_SETTING and legacy.exists() else None)
        prior = json.loads(prior_path.read_text()) if prior_path else None
        if prior and "setting_info" not in prior and isinstance(prior.get("setting"), dict):
            prior = {"provenance": prior.get("provenance", {}), "setting": prior["setting"]}
        elif prior:
            prior = {"provenance": prior.get("provenance", {}), "setting": prior.get("setting_info", {})}
        summary = summarise(rs, runs_dir, setting, prior)
        if quick:
            summary["quick"] = True
        write_json(path, summary, indent=2)
        summaries[setting] = summary
        if setting == MAIN_SETTING and rs[0]["dir"] is not None:
            example = example_pmfs(rs, args.example_position, args.example_seed)
            write_json(results / "example_pmfs.json", {**example, "quick": True} if quick else example, indent=None)
        print(f"{setting}: {len(rs)} runs -> {path}")
    write_runs_csv(results / "runs.csv", everything)
    if "head-wd0/standard-bin5" in summaries and MAIN_SETTING in summaries:
        ablation = paired_settings(summaries["head-wd0/standard-bin5"], summaries[MAIN_SETTING],
                                   "weight decay on the head's weights: 0 (a) vs 0.05 (b, the committed runs)")
        write_json(results / "ablation_head_weight_decay.json", ablation, indent=2)
    if args.pilot:
        write_json(results / "pilot.json", pilot_table(Path(args.pilot)), indent=2)
    text = readme_text(results, summaries, quick)
    (results / "table.md").write_text(text + "\n")
    print(text)
    if args.update_readme:
        update_block(README, BLOCK, text)


if __name__ == "__main__":
    main()
