"""Collect finished runs into committed results: runs/ -> results/*.json and the README tables.

    python aggregate.py [--runs runs/paper] [--results results] [--update-readme]
    python aggregate.py --table-only --update-readme   # only the tables, from the committed results/*.json
    python aggregate.py --check                        # CI: exit 1 when a generated table is stale; writes nothing
    python aggregate.py --quick                        # runs/quick -> runs/quick/results (never results/)

results/summary.json    one row per (dataset, head config): n_seeds, mean/std/median/values over seeds of
                        kl, mse, mse_argmax, accuracy, smoothness (+ kl_grid, perplexity for MLE heads),
                        smoothness over all test PMFs (the paper's convention), and provenance.
results/examples.json   the PMFs behind the learned-vs-true figures and the training animation.
results/table.md        the README table (ours beside the paper's).

With --update-readme it also rewrites README.md's generated blocks: `results-table` from the summary,
`gmm-stability` from results/gmm_head_stability.json (written by gmm_stability.py), and the repository
README's `toy-summary`. --check regenerates every one of them (and table.md) from the committed
results/*.json and exits 1, naming the stale ones, when any would change. All runs aggregated together must
share their settings (other than dataset, head, N, gamma, K and seed); quick runs never reach results/ or a
README, and their table has no paper columns.
"""

import json
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fourier_head import smoothness
from scaffold import Field, config_dict, config_differences, git_commit, parse_config, update_block, write_json
from train import SYSTEM_FIELDS, Config as TrainConfig

HERE = Path(__file__).resolve().parent
RESULTS, README, ROOT_README = HERE / "results", HERE / "README.md", HERE.parent / "README.md"
QUICK_DIR = HERE / "runs" / "quick"


@dataclass
class Config:
    runs: str = Field(str(HERE / "runs" / "paper"), "finished runs (train.py's --out-dir)")
    results: str = Field(str(RESULTS), "where summary.json, examples.json and table.md go")
    update_readme: bool = Field(False, "also rewrite the README blocks (only from the committed results/)")
    table_only: bool = Field(False, "only rebuild table.md (and the README blocks with --update-readme) from "
                                    "<results>/summary.json; no runs needed")


QUICK = dict(runs=str(QUICK_DIR), results=str(QUICK_DIR / "results"))
METRICS = ("kl", "mse", "mse_argmax", "accuracy", "smoothness", "kl_grid", "perplexity")
SPEC_FIELDS = ("dataset", "seed", "head", "num_frequencies", "gamma", "num_gaussians")  # what varies in a sweep
FIGURE_CONFIGS = {"linear": "linear", "gmm": "gmm-k{k}", "fourier": "fourier-f12-g0"}
FIGURE_POINTS = {"gaussian": 488, "gmm2": 331, "beta": 180, "gmm": 331}  # test indices (the authors' choice)
# The authors' camera-ready figure (visualize_pmfs.py): Fourier N and the seed per dataset, gamma = 0; the
# linear and GMM panels use the same seed.
PAPER_GRID = {"gaussian": {"num_frequencies": 18, "seed": 1}, "gmm2": {"num_frequencies": 10, "seed": 1},
              "beta": {"num_frequencies": 16, "seed": 42}}
ANIMATION = {"dataset": "gmm2", "configs": ("linear", "gmm-k2", "fourier-f12-g0")}


def mean_std(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.fmean(values), "std": std, "median": statistics.median(values), "values": values}


def pooled_smoothness(pmf_arrays):
    """Smoothness over all test PMFs of all seeds (the authors' convention): mean, std (ddof=1, as
    pandas in their smoothness_metric.py) and how many PMFs. pmf_arrays: list of (n_i, m) arrays."""
    pmfs = np.concatenate([np.asarray(a, dtype=np.float64) for a in pmf_arrays])
    s = smoothness(torch.from_numpy(pmfs)).numpy()
    return {"mean": float(s.mean()), "std": float(s.std(ddof=1)) if len(s) > 1 else None, "n_pmfs": int(len(s))}


def load_runs(runs: Path):
    """(dataset, config_name) -> list of (config, metrics-final, run dir), seeds sorted."""
    groups = defaultdict(list)
    for metrics_path in sorted(runs.glob("*/*/seed*/metrics.json")):
        run = metrics_path.parent
        config = json.loads((run / "config.json").read_text())
        final = json.loads(metrics_path.read_text())["final"]
        groups[(run.parent.parent.name, run.parent.name)].append((config, final, run))
    for rows in groups.values():
        rows.sort(key=lambda r: r[0]["seed"])
    return groups


def settings_of(config: dict) -> dict:
    """A run's settings other than its place in the sweep; keys an older config.json lacks take train.py's
    defaults, so old runs compare equal to new ones made with the same settings."""
    return {k: v for k, v in {**config_dict(TrainConfig()), **config}.items()
            if k not in SPEC_FIELDS and k not in SYSTEM_FIELDS and k not in ("datasets", "heads", "seeds",
                                                                               "frequencies", "gammas")}


def check_settings(groups, runs: Path):
    """All runs aggregated together share their settings: stop with one line naming the differing fields."""
    every = [(run, settings_of(config)) for rows in groups.values() for config, _, run in rows]
    first_run, first = every[0]
    for run, settings in every[1:]:
        diff = config_differences(first, settings)
        if diff:
            raise SystemExit(f"error: the runs under {runs} were made with different settings ({'; '.join(diff)}: "
                             f"{first_run.relative_to(runs)} vs {run.relative_to(runs)}); aggregate one setting "
                             "at a time (train.py --out-dir)")


def runs_provenance(runs: Path):
    """Where the runs were made (their env.json, written by scaffold.provenance; older env.json files carry
    the same keys) and how long the trainings took (sweep_log.jsonl)."""
    log = [json.loads(line) for line in (runs / "sweep_log.jsonl").read_text().splitlines() if line.strip()] \
        if (runs / "sweep_log.jsonl").exists() else []
    envs = [json.loads(p.read_text()) for p in sorted(runs.glob("*/*/seed*/env.json"))]
    pick = lambda key: sorted({str(e.get(key)) for e in envs}) if envs else []
    one = lambda values: values[0] if len(values) == 1 else values
    return {
        "gpu": one(pick("gpu")), "torch": one(pick("torch")), "commit": one(pick("commit")),
        "device": one(pick("device")),
        "wall_seconds": round(sum(e["seconds"] for e in log), 1),
        "trainings": [{k: e[k] for k in ("family", "models", "seconds", "epochs")} for e in log],
        "aggregated_at_commit": git_commit(),
    }


def summarize(groups):
    rows = []
    for (dataset, name), runs in sorted(groups.items()):
        config = runs[0][0]
        row = {"dataset": dataset, "config": name, "head": config["head"],
               "num_frequencies": config["num_frequencies"], "gamma": config["gamma"],
               "num_gaussians": config["num_gaussians"], "epochs": config["epochs"],
               "mixture_truth": config.get("mixture_truth", "joint"),
               "n_seeds": len(runs), "seeds": [r[0]["seed"] for r in runs]}
        for metric in METRICS:
            stats = mean_std([r[1].get(metric) for r in runs])
            if stats is not None:
                row[metric] = stats
        if "smoothness" in row:  # the paper reports mean ± std over all test PMFs of all seeds
            row["smoothness_all_pmfs"] = pooled_smoothness([np.load(r[2] / "pmfs.npy") for r in runs])
        rows.append(row)
    return rows


def pmf_entry(groups, runs: Path, dataset: str, index: int, configs: dict, seed=None):
    """One row of a learned-vs-true figure: test point `index` of `dataset`, one panel per head.
    configs: head -> config name; seed: that seed's runs (None: the first seed of each config)."""
    entry = {"dataset": dataset, "test_index": index, "heads": {}}
    for head, name in configs.items():
        found = [r for r in groups.get((dataset, name), []) if seed is None or r[0]["seed"] == seed]
        if not found:
            continue
        config, _, run = found[0]
        pmfs = np.load(run / "pmfs.npy").astype(np.float64)
        i = index % len(pmfs)
        entry["heads"][head] = {"config": name, "seed": config["seed"], "pmf": pmfs[i].tolist(),
                                "smoothness": float(smoothness(torch.from_numpy(pmfs[i])))}
        true = np.load(runs / dataset / f"true_pmfs_seed{config['seed']}.npy")
        entry["true_pmf"] = true[i].tolist()
    return entry if entry["heads"] else None


def examples(groups, runs: Path):
    """Test PMFs for the 3x3 figures, training snapshots for the animation, MLE densities."""
    out = {"pmf_grid": [], "pmf_grid_paper": [], "animation": None, "mle": []}
    for dataset, index in FIGURE_POINTS.items():
        k = 1 if dataset == "gaussian" else 2
        entry = pmf_entry(groups, runs, dataset, index, {h: p.format(k=k) for h, p in FIGURE_CONFIGS.items()})
        if entry:
            out["pmf_grid"].append(entry)
    for dataset, choice in PAPER_GRID.items():
        k = 1 if dataset == "gaussian" else 2
        configs = {"linear": "linear", "gmm": f"gmm-k{k}", "fourier": f"fourier-f{choice['num_frequencies']}-g0"}
        entry = pmf_entry(groups, runs, dataset, FIGURE_POINTS[dataset], configs, seed=choice["seed"])
        if entry:
            out["pmf_grid_paper"].append(entry)
    ds = ANIMATION["dataset"]
    anim = {"dataset": ds, "test_index": FIGURE_POINTS[ds], "heads": {}}
    for name in ANIMATION["configs"]:
        found = groups.get((ds, name))
        if found:
            config, _, run = found[0]
            history = json.loads((run / "metrics.json").read_text())["history"]
            slot = list(config["snapshot_test_indices"]).index(FIGURE_POINTS[ds])
            snaps = np.load(run / "snapshots.npy").astype(np.float64)[:, slot]  # (evals, m)
            anim["heads"][name] = {"epochs": [h["epoch"] for h in history], "pmfs": snaps.round(6).tolist(),
                                   "seed": config["seed"]}
            true = np.load(runs / ds / f"true_pmfs_seed{config['seed']}.npy")
            anim["true_pmf"] = true[FIGURE_POINTS[ds] % len(true)].tolist()
    out["animation"] = anim if anim["heads"] else None
    for (dataset, name), found in sorted(groups.items()):
        if name not in ("fourier-mle-f12-g0", "gmm-mle-k1", "gmm-mle-k2"):
            continue
        config, _, run = found[0]
        dens = np.load(run / "grid_density.npy")
        true = np.load(runs / dataset / f"true_grid_density_seed{config['seed']}.npy")
        grid_bins = config["mle_grid_bins"]
        out["mle"].append({"dataset": dataset, "config": name, "seed": config["seed"],
                           "test_indices": list(config["snapshot_test_indices"]),
                           "grid": (-1 + (2 * np.arange(grid_bins) + 1) / grid_bins)[::4].round(5).tolist(),
                           "density": dens[:, ::4].round(5).tolist(), "true_density": true[:, ::4].round(5).tolist()})
    return out


# ---- the README table ------------------------------------------------------------------------------------

def fmt(stats, digits=3):
    if not stats:
        return "–"
    if isinstance(stats, list):
        mean, std = stats
        return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")
    std = stats.get("std")
    return f"{stats['mean']:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def label(r) -> str:
    return {"linear": "Linear", "regression": "Regression (pointwise)"}.get(
        r["head"], f"GMM (K={r['num_gaussians']})" if r["head"] == "gmm" else
        f"GMM-MLE (K={r['num_gaussians']})" if r["head"] == "gmm-mle" else
        f"{'Fourier-MLE' if r['head'] == 'fourier-mle' else 'Fourier'} N={r['num_frequencies']}, γ={r['gamma']:g}")


def table(rows, paper, quick: bool = False):
    """The README table: ours beside the paper's. A quick run's table has no paper columns (its tiny
    settings are not comparable) and says so on its first line."""
    paper_by = {(p["dataset"], p["config"]): p for p in paper["rows"]}
    if quick:
        epochs = "/".join(map(str, sorted({r["epochs"] for r in rows})))
        lines = [f"**Quick run** ({epochs} epochs, CPU smoke settings): these numbers check the chain, they are "
                 "not results.", "",
                 "| dataset | head | n | KL | smoothness | MSE argmax | MSE expected |", "|---|---|---|---|---|---|---|"]
    else:
        lines = ["| dataset | head | n | KL (ours) | KL (paper) | smoothness (ours) | smoothness (paper) | "
                 "MSE argmax (ours) | MSE argmax (paper) | MSE expected (ours) |",
                 "|---|---|---|---|---|---|---|---|---|---|"]
    keep = ["linear", "gmm-k1", "gmm-k2", "fourier-f12-g0", "fourier-f12-g1e-06", "regression",
            "fourier-mle-f12-g0", "gmm-mle-k1", "gmm-mle-k2"]
    order = ["gaussian", "gmm2", "beta", "gmm"]
    for r in sorted((r for r in rows if r["config"] in keep),
                    key=lambda r: (order.index(r["dataset"]) if r["dataset"] in order else 9, keep.index(r["config"]))):
        p = paper_by.get((r["dataset"], r["config"]), {})
        smooth = r.get("smoothness_all_pmfs")
        kl = fmt(r.get("kl")) + (fmt_median(r.get("kl")) if r["head"] in ("gmm", "gmm-mle") else "")
        if quick:
            lines.append(f"| {r['dataset']} | {label(r)} | {r['n_seeds']} | {kl} | "
                         f"{fmt(smooth, 4) if smooth else '–'} | {fmt(r.get('mse_argmax'))} | {fmt(r.get('mse'))} |")
            continue
        lines.append(f"| {r['dataset']} | {label(r)} | {r['n_seeds']} | {kl} | {fmt(p.get('kl'))} | "
                     f"{fmt(smooth, 4) if smooth else '–'} | {fmt(p.get('smoothness'), 4)} | "
                     f"{fmt(r.get('mse_argmax'))} | {fmt(p.get('mse_argmax'))} | {fmt(r.get('mse'))} |")
    lines += ["", "KL of the GMM and GMM-MLE heads: mean ± std over the seeds, then the median in brackets (one "
              "seed stuck in a poor optimum moves the mean and std, not the median); how often that happens is "
              "in the GMM-head stability table below."]
    return "\n".join(lines) + "\n"


def fmt_median(stats, digits=3):
    """' (median x)' from a summary entry (its 'median', else the median of its 'values')."""
    if not stats or not stats.get("values"):
        return ""
    return f" (median {stats.get('median', statistics.median(stats['values'])):.{digits}f})"


def stability_table(stability):
    """The README's GMM-head stability table from results/gmm_head_stability.json."""
    order = ["gaussian", "gmm2", "beta", "gmm"]
    prov = stability["provenance"]
    lines = ["**Quick run** (CPU smoke settings): these numbers check the chain, they are not results.", ""] \
        if prov.get("quick") else []
    lines += ["| dataset | head | seeds | stuck | KL median | KL mean ± std | KL mean ± std, not stuck | "
              "dead component |", "|---|---|---|---|---|---|---|---|"]
    for r in sorted(stability["rows"], key=lambda r: (order.index(r["dataset"]) if r["dataset"] in order else 9,
                                                      r["head"])):
        label = f"{'GMM' if r['head'] == 'gmm' else 'GMM-MLE'} (K={r['num_gaussians']})"
        clean = fmt([r["kl_mean_not_stuck"], r["kl_std_not_stuck"]]) if r["kl_mean_not_stuck"] is not None else "–"
        dead = f"{r['n_dead_component']}/{r['n_seeds']}" if "n_dead_component" in r else "–"
        lines.append(f"| {r['dataset']} | {label} | {r['n_seeds']} | {r['n_stuck']}/{r['n_seeds']} "
                     f"({100 * r['stuck_rate']:.0f}%) | {r['kl_median']:.3f} | {fmt([r['kl_mean'], r['kl_std']])} | "
                     f"{clean} | {dead} |")
    seeds = stability["rows"][0]["seeds"] if stability["rows"] else []
    span = f"{seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else ", ".join(map(str, seeds))
    where = prov.get("gpu") if prov.get("gpu") not in (None, "None") else prov.get("device")
    lines += ["", f"Seeds {span}, {stability['rows'][0]['epochs'] if stability['rows'] else '?'} epochs, "
              f"on {where} (torch {prov.get('torch')}, commit {prov.get('commit')}, "
              f"{prov.get('wall_seconds')} s). {stability['stuck_definition']} "
              f"{stability.get('dead_component_definition', '')}".rstrip()]
    return "\n".join(lines) + "\n"


def summary_table(rows, paper):
    """The compact KL table of the repository's front page: linear / GMM / Fourier-12 per dataset."""
    paper_by = {(p["dataset"], p["config"]): p for p in paper["rows"]}
    by = {(r["dataset"], r["config"]): r for r in rows}
    lines = ["| dataset | Linear (ours) | Linear (paper) | GMM head (ours) | GMM head (paper) | "
             "Fourier N=12 (ours) | Fourier N=12 (paper) |", "|---|---|---|---|---|---|---|"]
    for d in ("gaussian", "gmm2", "beta", "gmm"):
        gmm = f"gmm-k{1 if d == 'gaussian' else 2}"
        cells = []
        for config in ("linear", gmm, "fourier-f12-g0"):
            ours = by.get((d, config), {}).get("kl")
            cells += [fmt(ours) + (fmt_median(ours) if config == gmm else ""),
                      fmt(paper_by.get((d, config), {}).get("kl"))]
        if any(c != "–" for c in cells[::2]):
            lines.append(f"| {d} | " + " | ".join(cells) + " |")
    lines += ["", "GMM head (ours): mean ± std over the seeds, then the median (a seed stuck in a poor optimum "
              "moves the mean and std, not the median; the stuck rate over 24 more seeds is in the folder's README)."]
    return "\n".join(lines) + "\n"


# ---- the generated blocks -----------------------------------------------------------------------------

def blocks(results: Path) -> list:
    """Every generated text of the committed results: (name, file, README block or None, text)."""
    summary = json.loads((results / "summary.json").read_text())
    paper = json.loads((HERE / "paper_numbers.json").read_text())
    text = table(summary["rows"], paper)
    out = [("results/table.md", results / "table.md", None, text), ("results-table", README, "results-table", text)]
    stability = results / "gmm_head_stability.json"
    if stability.exists():
        out.append(("gmm-stability", README, "gmm-stability", stability_table(json.loads(stability.read_text()))))
    if ROOT_README.exists() and "<!-- toy-summary:start -->" in ROOT_README.read_text():  # absent in a fork
        out.append(("toy-summary", ROOT_README, "toy-summary", summary_table(summary["rows"], paper)))
    return out


def write_blocks(results: Path, check: bool = False) -> list:
    """Write table.md and the README blocks (with `check`: write nothing); the names of those that changed."""
    changed = []
    for name, path, block, text in blocks(results):
        if block is None:
            if not path.exists() or path.read_text() != text:
                changed.append(name)
                if not check:
                    path.write_text(text)
        elif update_block(path, block, text, check=check):
            changed.append(f"{path.relative_to(HERE.parent)} block {block}" if path == ROOT_README else
                           f"README.md block {block}")
    return changed


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK, extra=lambda p: p.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 naming the generated tables that differ from "
                                             "the committed results/*.json"))
    if cfg._args.check:
        stale = write_blocks(RESULTS, check=True)
        if stale:
            sys.exit(f"stale: {', '.join(stale)} differ(s) from results/*.json; "
                     "run `python aggregate.py --table-only --update-readme`")
        return print("the README blocks and results/table.md match results/*.json")
    runs, results = Path(cfg.runs), Path(cfg.results)
    committed = results.resolve() == RESULTS.resolve()
    if cfg.update_readme and not committed:
        sys.exit(f"error: --update-readme writes the README from the committed results/ only (got --results {results})")
    if cfg.table_only:
        if not (results / "summary.json").exists():
            sys.exit(f"error: {results / 'summary.json'} not found (run aggregate.py on finished runs first)")
        summary = json.loads((results / "summary.json").read_text())
    else:
        if not any(runs.glob("*/*/seed*/metrics.json")):
            sys.exit(f"error: no finished runs under {runs} (run train.py first)")
        groups = load_runs(runs)
        check_settings(groups, runs)
        quick = any(config.get("quick", False) for rows in groups.values() for config, _, _ in rows)
        if quick and (committed or cfg.update_readme):
            sys.exit("error: quick runs never go into the committed results/ or a README; use --quick "
                     "(writes runs/quick/results)")
        summary = {"provenance": runs_provenance(runs), "quick": quick, "rows": summarize(groups)}
        write_json(results / "summary.json", summary)
        write_json(results / "examples.json", examples(groups, runs), indent=None)
    rows, quick = summary["rows"], summary.get("quick", False)
    text = table(rows, json.loads((HERE / "paper_numbers.json").read_text()), quick=quick)
    if cfg.update_readme:
        write_blocks(results)
    else:
        results.mkdir(parents=True, exist_ok=True)
        (results / "table.md").write_text(text)
    print(text)
    print(f"{len(rows)} configurations -> {results}")


if __name__ == "__main__":
    main()
