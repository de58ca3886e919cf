"""Collect the DT runs into results/summary.json (one row per game, dataset, head, N) and the README tables.

    python aggregate.py                                   # runs/ -> results/
    python aggregate.py --update-readme                   # also rewrite the README's generated blocks
    python aggregate.py --check                           # CI: exit 1 if a generated README block is stale
    python aggregate.py --quick                           # runs/quick -> runs/quick/results (never results/)

`--check` regenerates every generated block of README.md (data, data_dqn, throughput, results, games) and
results/table.md from the committed files only (results/summary.json, results/*.json, snapshots/pqn/*/
curve.json; runs/ and data/ are not needed), writes nothing, and exits 1 with one line naming the stale
blocks. Quick runs (config.json `quick`) never reach results/ or the README, and their tables carry no
paper columns.

Runs are read where train.py puts them (`train.run_dir`): runs/<game>/<head>/seed<s>/ for the dataset
`ppo-sampled`, runs/<dataset>/<game>/<head>/seed<s>/ for the others; folders elsewhere (set aside, such as
runs/incomplete_call4/<head>/seed<s>/) are ignored. A run counts when its metrics.json exists; a run that
stopped early (history.json only) is listed under "incomplete" and flagged in its row (epochs done). When
runs of one dataset finished different numbers of epochs, a second table compares every head after the last
epoch all of them finished.

Rows of a (game, dataset) with no run folder here are carried over from the summary.json already in
--results (upgraded to this schema, numbers unchanged): the ppo-sampled run folders were never committed.

Each row (the issue-19 schema): game, dataset, head, num_frequencies, n_seeds, seeds,
normalized_return_final and normalized_return_best ({per_seed, mean, std}; final = the evaluation after the
last epoch, `episodes_final_evaluation` episodes; best = the best of the per-epoch 10-episode evaluations),
data_per_state_entropy_nats (diagnostics.py; null with a note where it was not measured), data_return_max
(the train split's best episode), smoothness, provenance (gpu, torch, commit, wall_seconds, the data
manifest and its hashes). Fourier rows also hold `paired_vs_linear`: per-seed differences Fourier - linear
on the seeds both have, their mean, a paired t-test and an exact bootstrap 95% interval of the mean.

The four games (issue 20): rows of every game of atari.GAMES go into the same summary.json; the README's `games`
block puts each game's target return, normalization, data and heads beside the authors' numbers (Seaquest: the
paper's; the others: readings of their branch plots, atari.AUTHORS_PLOTS), "no finished runs yet" where there
are none. A (game, dataset) with 3 or more Fourier N is a sweep: summary.json's `sweeps` (absent without one)
holds the N the authors' protocol picks (best mean best-epoch return) and the N the held-out cross-entropy picks,
each scored on the best epoch and on the separate final evaluation.

Provenance: env.json gives each run's GPU, torch, commit and data hashes; results/gpu_calls.json ("dt_runs",
keyed by that commit) says which GPU calls trained it, what code ran and how many runs shared the GPU.
"""

import hashlib
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import atari
from make_dataset import DATASETS
from scaffold import Field, bootstrap_interval, parse_config, update_block, write_json
from train import LEGACY_DATASET, run_dir

HERE = Path(__file__).resolve().parent
PAPER = {  # paper v1 Table 2 (Seaquest, DQN-replay data, normalized return over 4 seeds; smoothness over one seed)
    ("Seaquest", "linear", 0): {"normalized_return": [2.53, 0.63], "smoothness": [0.48, 0.14]},
    ("Seaquest", "fourier", 8): {"normalized_return": [2.78, 0.47], "smoothness": [0.22, 0.04]},
    ("Seaquest", "fourier", 14): {"normalized_return": [3.70, 0.47], "smoothness": [0.39, 0.11]},
}
ENTROPY_NOTE = ("not measured: no diagnostics.json of this data is in the repository (the issue-19 audit of the "
                "PPO snapshots was not committed); `python diagnostics.py --dataset {dataset} --force` on the "
                "rebuilt data fills it")
CARRIED = "from the summary.json committed before: the run folders are not in the repository"


def head_label(head: str, n: int) -> str:
    return "linear" if head == "linear" else f"fourier{n}"


def stats(per_seed: dict) -> dict:
    v = np.array(list(per_seed.values()), dtype=np.float64)
    return {"per_seed": per_seed, "mean": float(v.mean()), "std": float(v.std())}  # np.std, as the reference


# ---- paired statistics over seeds ----------------------------------------------------------------

def paired(a: dict, b: dict) -> dict:
    """b - a per seed, over the seeds both have: mean difference, paired t-test (two-sided), bootstrap 95%."""
    seeds = sorted(set(a) & set(b), key=int)
    d = np.array([b[s] - a[s] for s in seeds], dtype=np.float64)
    n = len(d)
    out = {"seeds": [int(s) for s in seeds], "n_pairs": n, "differences": {s: float(v) for s, v in zip(seeds, d)},
           "mean_difference": float(d.mean()) if n else None, "t": None, "dof": None, "p_value": None,
           "bootstrap_95": bootstrap_interval(d) if n else None}
    if n >= 2:
        sd = d.std(ddof=1)
        out["dof"] = n - 1
        if sd > 0:
            from scipy.stats import t as student_t
            t = d.mean() / (sd / math.sqrt(n))
            out["t"], out["p_value"] = float(t), float(2 * student_t.sf(abs(t), n - 1))
    return out


def paired_vs_linear(rows) -> None:
    """Adds `paired_vs_linear` (final and best normalized return) to every Fourier row with a linear row."""
    linear = {(r["game"], r["dataset"]): r for r in rows if r["head"] == "linear"}
    for r in rows:
        lin = linear.get((r["game"], r["dataset"]))
        if r["head"] == "linear" or lin is None:
            continue
        r["paired_vs_linear"] = {
            "what": "Fourier - linear per seed, normalized return; t-test two-sided; bootstrap: exact percentile "
                    "interval of the mean difference",
            **{k: paired(lin[f"normalized_return_{k}"]["per_seed"], r[f"normalized_return_{k}"]["per_seed"])
               for k in ("final", "best")}}


# ---- runs -> rows ---------------------------------------------------------------------------------

def pooled_smoothness(history) -> dict:
    """mean and std over all rollout PMFs of all epochs, from the per-epoch (n, mean, std)."""
    n = np.array([h["smoothness_n"] for h in history], dtype=np.float64)
    m = np.array([h["smoothness_mean"] for h in history])
    s = np.array([h["smoothness_std"] for h in history])
    mean = (n * m).sum() / n.sum()
    var = (n * (s ** 2 + (m - mean) ** 2)).sum() / n.sum()
    return {"mean": float(mean), "std": float(np.sqrt(var)), "n_pmfs": int(n.sum())}


def metrics_from_history(cfg: dict, hist: list) -> dict:
    """What metrics.json would hold, from the epochs a stopped run finished (flagged incomplete)."""
    norm = [h["normalized_return"] for h in hist]
    n = sum(h["smoothness_n"] for h in hist)
    return {"seed": cfg["seed"], "dataset": cfg.get("dataset", LEGACY_DATASET),
            "normalized_return_final": norm[-1], "normalized_return_last_epoch": norm[-1],
            "episodes_final_evaluation": cfg["eval_episodes"], "final_evaluation": None,
            "normalized_return_best": max(norm),
            "return_final": hist[-1]["eval_mean_return"], "return_best": max(h["eval_mean_return"] for h in hist),
            "smoothness": sum(h["smoothness_sum"] for h in hist) / n, "episodes_per_eval": cfg["eval_episodes"],
            "epochs": cfg["epochs"], "epoch_samples": cfg["epoch_samples_resolved"],
            "train_samples_per_second": round(hist[-1]["tokens"] / cfg["context"] / hist[-1]["train_seconds_cumulative"], 1),
            # no end-of-run wall time: the training and evaluation seconds of the finished epochs instead
            "wall_seconds": round(hist[-1]["train_seconds_cumulative"] + sum(h["eval_seconds"] for h in hist), 1),
            "history": hist}


def collect(runs: Path):
    """Finished runs, plus stopped runs with at least one evaluated epoch (marked incomplete), keyed by
    (game, dataset, head, N). Only folders at train.run_dir's place for their config count."""
    done, incomplete = {}, []
    found = sorted(runs.glob("*/*/seed*/config.json")) + sorted(runs.glob("*/*/*/seed*/config.json"))
    for cfg_path in found:
        run = cfg_path.parent
        cfg = json.loads(cfg_path.read_text())
        dataset = cfg.get("dataset", LEGACY_DATASET)
        if run != run_dir(runs, dataset, cfg["game"], head_label(cfg["head"], cfg["num_frequencies"]), cfg["seed"]):
            continue  # e.g. runs/incomplete_call4/fourier8/seed123: set aside
        key = (cfg["game"], dataset, cfg["head"], cfg["num_frequencies"])
        if any(c["seed"] == cfg["seed"] for _, c, _, _ in done.get(key, [])):
            raise SystemExit(f"two runs of {key} with seed {cfg['seed']} under {runs}")
        if (run / "metrics.json").exists():
            m = json.loads((run / "metrics.json").read_text())
            m["complete"] = True
        else:
            hist = json.loads((run / "history.json").read_text()) if (run / "history.json").exists() else []
            incomplete.append({"run": str(run.relative_to(runs)), "epochs_finished": len(hist),
                               "epochs_planned": cfg["epochs"]})
            if not hist:
                continue  # claimed (config.json) but stopped before its first epoch
            m = metrics_from_history(cfg, hist)
            m["complete"] = False
        env = json.loads((run / "env.json").read_text())  # written before the first step
        done.setdefault(key, []).append((run, cfg, m, env))
    return done, incomplete


def at_epoch(seeds: dict, k: int) -> dict:
    """Every head after the same k epochs: what compares fairly when some runs stopped before the end."""
    out = {"epoch": k,
           "normalized_return": stats({s: m["history"][k - 1]["normalized_return"] for s, m in seeds.items()}),
           "normalized_return_best": stats({s: max(h["normalized_return"] for h in m["history"][:k]) for s, m in seeds.items()}),
           "test_loss": stats({s: m["history"][k - 1]["test_loss"] for s, m in seeds.items()})}
    if "123" in seeds:
        out["smoothness_seed123_over_pmfs"] = pooled_smoothness(seeds["123"]["history"][:k])
    return out


def trace_name(game: str, dataset: str, head: str, n: int, seed) -> str:
    middle = "" if dataset == LEGACY_DATASET else f"_{dataset}"
    return f"{game}{middle}_{head}{n or ''}_seed{seed}.npz"


def summarize(done, results: Path, runs: Path, dt_runs: dict | None = None, quick: bool = False):
    rows = []
    dt_runs = dt_runs or {}
    lengths = {}
    for (game, dataset, _, _), items in done.items():
        lengths.setdefault((game, dataset), set()).update(len(m["history"]) for _, _, m, _ in items)
    commits = {}
    for items in done.values():
        for _, _, _, e in items:
            commits[e["commit"]] = commits.get(e["commit"], 0) + 1
    for (game, dataset, head, n), items in sorted(done.items(), key=lambda kv: row_order(*kv[0])):
        seeds = {str(m["seed"]): m for _, _, m, _ in items}
        envs = [e for _, _, _, e in items]
        row_commits = sorted({e["commit"] for e in envs})
        calls = {c: dt_runs.get(c, {}) for c in row_commits}
        # how many runs shared the GPU: from gpu_calls.json, else the runs launched from the same commit
        sharing = sorted({calls[c].get("runs_sharing_gpu", commits[c]) for c in row_commits})
        lens = lengths[(game, dataset)]
        common = min(lens) if len(lens) > 1 else None  # only when the runs stopped at different epochs
        episodes_final = sorted({m.get("episodes_final_evaluation", m["episodes_per_eval"]) for m in seeds.values()})
        separate = all(m.get("final_evaluation") for m in seeds.values())
        hashes = sorted({json.dumps(e.get("data_sha256_actions_rewards"), sort_keys=True) for e in envs})
        row = {
            "game": game, "dataset": dataset, "head": head, "num_frequencies": n, "n_seeds": len(seeds),
            "seeds": sorted(map(int, seeds)),
            "normalized_return_final": stats({s: m["normalized_return_final"] for s, m in seeds.items()}),
            "normalized_return_best": stats({s: m["normalized_return_best"] for s, m in seeds.items()}),
            "episodes_final_evaluation": episodes_final[0] if len(episodes_final) == 1 else episodes_final,
            "final_evaluation": ("a separate evaluation after the last epoch (env seeds seed + 1000 + i)" if separate
                                 else "the last epoch's evaluation"),
            "normalized_return_last_epoch": stats({s: m.get("normalized_return_last_epoch", m["history"][-1]["normalized_return"])
                                                   for s, m in seeds.items()}),
            "data_per_state_entropy_nats": None, "data_return_max": None,  # attach_data fills them
            "smoothness": stats({s: m["smoothness"] for s, m in seeds.items()}),
            "return_final": stats({s: m["return_final"] for s, m in seeds.items()}),
            "return_best": stats({s: m["return_best"] for s, m in seeds.items()}),
            "test_loss_final": stats({s: m["history"][-1]["test_loss"] for s, m in seeds.items()}),
            "episodes_per_evaluation": items[0][2]["episodes_per_eval"],
            "complete": all(m["complete"] for m in seeds.values()),
            "epochs_planned": items[0][2]["epochs"],
            "epochs_finished": {s: len(m["history"]) for s, m in seeds.items()},
            "epoch_samples": {s: m["epoch_samples"] for s, m in seeds.items()},
            "train_samples_seen": {s: m["history"][-1]["tokens"] // items[0][1]["context"] for s, m in seeds.items()},
            "train_samples_per_second_per_run": stats({s: m["train_samples_per_second"] for s, m in seeds.items()}),
            "eval_cut_short_episodes": int(sum(h["eval_cut_short"] for m in seeds.values() for h in m["history"])),
            "provenance": {"gpu": sorted({e["gpu"] or "cpu" for e in envs}), "torch": sorted({e["torch"] for e in envs}),
                           "commit": row_commits,
                           "code": {c: calls[c].get("code", c) for c in row_commits},
                           "gpu_calls_used": {c: calls[c].get("calls", []) for c in row_commits},
                           "wall_seconds": {s: m["wall_seconds"] for s, m in seeds.items()},
                           "runs_concurrent_on_one_gpu": sharing[0] if len(sharing) == 1 else sharing,
                           "data_sha256_actions_rewards_of_runs": [json.loads(h) for h in hashes],
                           "gpu_calls": "gpu_calls.json"},
        }
        if all("train_ce" in m["history"][-1] for m in seeds.values()):  # the loss's two terms, last epoch
            row["train_ce_final"] = stats({s: m["history"][-1]["train_ce"] for s, m in seeds.items()})
            row["train_regularization_final"] = stats({s: m["history"][-1]["train_regularization"] for s, m in seeds.items()})
        if separate:
            row["smoothness_final_evaluation"] = stats({s: m["final_evaluation"]["smoothness_mean"] for s, m in seeds.items()})
            row["eval_cut_short_episodes"] += int(sum(m["final_evaluation"]["cut_short"] for m in seeds.values()))
        if "123" in seeds:  # the paper's smoothness: all rollout PMFs of seed 123
            row["smoothness_seed123_over_pmfs"] = pooled_smoothness(seeds["123"]["history"])
        if common is not None:
            row["at_common_epoch"] = at_epoch(seeds, common)
        if (game, head, n) in PAPER and not quick:  # a quick run's tiny models are no reproduction
            row["paper"] = PAPER[(game, head, n)]
        rows.append(row)
        # the last epoch's PMF trace of the first seed, for the PMF figure
        run = items[0][0]
        last = run / f"pmf_trace_epoch{len(items[0][2]['history'])}.npz"
        if last.exists():
            (results / "pmf_traces").mkdir(parents=True, exist_ok=True)
            shutil.copy(last, results / "pmf_traces" / trace_name(game, dataset, head, n, items[0][2]["seed"]))
    return rows


def row_order(game, dataset, head, n):
    order = list(atari.GAMES).index(game) if game in atari.GAMES else len(atari.GAMES)  # Seaquest first
    return (order, game, list(DATASETS).index(dataset) if dataset in DATASETS else 99, head != "linear", n)


def upgrade_row(row: dict) -> dict:
    """A row of an older summary.json in this schema (numbers unchanged): the ppo-sampled rows predate the
    dataset field and the separate final evaluation (their final return is the last epoch's, 10 episodes)."""
    row = {"game": row["game"], "dataset": row.get("dataset", LEGACY_DATASET), **row}
    if "episodes_final_evaluation" not in row:
        row["episodes_final_evaluation"] = row["episodes_per_evaluation"]
        row["final_evaluation"] = "the last epoch's evaluation (these runs predate the separate final evaluation)"
        row["normalized_return_last_epoch"] = row["normalized_return_final"]
    row.setdefault("data_per_state_entropy_nats", None)
    row.setdefault("data_return_max", None)
    row["carried_over"] = CARRIED
    return row


# ---- the data behind each row ---------------------------------------------------------------------

def manifest_name(game: str, dataset: str) -> str:
    return f"dataset_manifest_{game}.json" if dataset == LEGACY_DATASET else f"dataset_manifest_{game}_{dataset}.json"


def data_info(results: Path, data_root: Path, game: str, dataset: str) -> dict:
    """Copies the dataset's manifest.json and diagnostics.json (when built here) into results/ and reads them."""
    src = data_root / Path(DATASETS[dataset]["data"].format(game=game)).relative_to("data")
    names = {"manifest.json": manifest_name(game, dataset), "diagnostics.json": f"diagnostics_{game}_{dataset}.json"}
    for name, target in names.items():
        if (src / name).exists() and json.loads((src / name).read_text()).get("dataset", LEGACY_DATASET) == dataset:
            shutil.copy(src / name, results / target)
    info = {"manifest_file": names["manifest.json"], "diagnostics_file": names["diagnostics.json"]}
    for key, target in (("manifest", names["manifest.json"]), ("diagnostics", names["diagnostics.json"])):
        info[key] = json.loads((results / target).read_text()) if (results / target).exists() else None
    info["manifest_sha256"] = (hashlib.sha256((results / names["manifest.json"]).read_bytes()).hexdigest()
                               if info["manifest"] else None)
    return info


def attach_data(row: dict, info: dict) -> None:
    m, d = info["manifest"], info["diagnostics"]
    row["data_return_max"] = m["splits"]["train"]["returns"]["max"] if m else None
    if m and m.get("config", {}).get("policy") == "random":  # e.g. the quick data: no agent behind it
        row["data_policy"] = "random"
    if d:
        row["data_per_state_entropy_nats"] = d["data_per_state_entropy_nats"]
        row["data_diagnostics"] = info["diagnostics_file"]
        row.pop("data_per_state_entropy_note", None)
    else:
        row["data_per_state_entropy_nats"] = None
        row["data_per_state_entropy_note"] = ENTROPY_NOTE.format(dataset=row["dataset"])
    prov = row["provenance"]
    prov["dataset_manifest"] = info["manifest_file"] if m else None
    prov["dataset_manifest_sha256"] = info["manifest_sha256"]
    manifest_hashes = {k: v["sha256_actions_rewards"] for k, v in m["splits"].items()} if m else None
    prov["data_sha256_actions_rewards"] = manifest_hashes
    runs = prov.get("data_sha256_actions_rewards_of_runs")
    if runs is None or manifest_hashes is None or runs == [None]:
        prov["data_hashes_match_runs"] = None  # not recorded (the runs predate it) or no manifest
    else:
        prov["data_hashes_match_runs"] = runs == [manifest_hashes]


# ---- tables ---------------------------------------------------------------------------------------

def windows(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e4 else f"{n:,}"


def name_of(r) -> str:
    return "Linear" if r["head"] == "linear" else f"Fourier-{r['num_frequencies']}"


def data_name(r) -> str:
    return r["dataset"] + (" (random policy)" if r.get("data_policy") == "random" else "")


def ms(s, digits=2) -> str:
    """mean ± std over seeds; the mean alone for one seed (a std of one value says nothing)."""
    if len(s.get("per_seed", ())) == 1:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def common_table(rows) -> str:
    """Every head after the last epoch all runs of its dataset finished; empty when all finished the same."""
    rows = [r for r in rows if "at_common_epoch" in r]
    if not rows:
        return ""
    lines = ["| game | data | head | seeds | after epoch | normalized return, that epoch | normalized return, best up to it | "
             "smoothness up to it (seed 123, over PMFs) | test loss, that epoch |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["at_common_epoch"]
        sm = c.get("smoothness_seed123_over_pmfs")
        lines.append(f"| {r['game']} | {r['dataset']} | {name_of(r)} | {r['n_seeds']} | {c['epoch']} | {ms(c['normalized_return'])} | "
                     f"{ms(c['normalized_return_best'])} | " + (ms(sm, 3) if sm else "–") + f" | {ms(c['test_loss'], 3)} |")
    return "\n".join(lines)


def table(rows, quick: bool = False) -> str:
    """The results table; a quick run's has no paper columns (its tiny models are no reproduction)."""
    header = ("| game | data | head | seeds | epochs done | windows seen per run | normalized return, final (episodes) | "
              "normalized return, best epoch | smoothness (seed 123, over PMFs) |")
    lines = [header + ("" if quick else " paper: normalized return | paper: smoothness |"),
             "|---|---|---|---|---|---|---|---|---|" + ("" if quick else "---|---|")]
    for r in rows:
        f, b = r["normalized_return_final"], r["normalized_return_best"]
        sm = r.get("smoothness_seed123_over_pmfs")
        p = r.get("paper")
        ep = sorted(set(r["epochs_finished"].values()))
        seen = sorted({windows(v) for v in r["train_samples_seen"].values()})
        line = (f"| {r['game']} | {data_name(r)} | {name_of(r)} | {r['n_seeds']} | {'/'.join(map(str, ep))} of "
                f"{r['epochs_planned']} | {'–'.join(seen)} | {ms(f)} ({r['episodes_final_evaluation']}) | {ms(b)} | "
                + ((f"{sm['mean']:.3f}" if quick else ms(sm, 3)) if sm else "–") + " |")
        if not quick:
            line += (f" {p['normalized_return'][0]:.2f} ± {p['normalized_return'][1]:.2f} | "
                     f"{p['smoothness'][0]:.2f} ± {p['smoothness'][1]:.2f} |" if p else " – | – |")
        lines.append(line)
    return "\n".join(lines)


def paired_table(rows, quick: bool = False) -> str:
    def cell(s):
        if s is None or not s["n_pairs"]:
            return "–"
        if s["n_pairs"] == 1:
            return f"{s['mean_difference']:+.2f} (one seed: no interval, no test)"
        signed = lambda v: f"{v:+.2f}".replace("-0.00", "+0.00")  # noqa: E731
        lo, hi = s["bootstrap_95"]
        p = f"{s['p_value']:.2f}" if s["p_value"] is not None else "–"
        return f"{signed(s['mean_difference'])} [{signed(lo)}, {signed(hi)}], p = {p}"
    lines = ["| game | data | Fourier − linear | seeds paired | final: mean difference [bootstrap 95%], paired t-test p | "
             "best epoch: mean difference [bootstrap 95%], paired t-test p |" + ("" if quick else " paper: difference of means |"),
             "|---|---|---|---|---|---|" + ("" if quick else "---|")]
    lin_paper = PAPER.get(("Seaquest", "linear", 0))
    for r in rows:
        pv = r.get("paired_vs_linear")
        if not pv:
            continue
        p = r.get("paper")
        paper = f"{p['normalized_return'][0] - lin_paper['normalized_return'][0]:+.2f}" if p and r["game"] == "Seaquest" else "–"
        lines.append(f"| {r['game']} | {data_name(r)} | {name_of(r)} | {pv['final']['n_pairs']} | {cell(pv['final'])} | "
                     f"{cell(pv['best'])} |" + ("" if quick else f" {paper} |"))
    return "\n".join(lines) if len(lines) > 2 else ""


def data_table(manifest: dict, per_policy: bool = True) -> str:
    lines = ["| split | transitions | episodes | return mean ± std | min | median | max | episode length (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for split, s in manifest["splits"].items():
        r = s["returns"]
        lines.append(f"| {split} | {s['transitions']:,} | {r['episodes']} | {r['mean']:.0f} ± {r['std']:.0f} | "
                     f"{r['min']:.0f} | {r['q50']:.0f} | {r['max']:.0f} | {s['episode_lengths']['mean']:.0f} |")
    if per_policy:
        lines += ["", "| policy snapshot | PPO agent steps | train transitions | return mean ± std (train) |", "|---|---|---|---|"]
        for p in manifest["splits"]["train"]["per_policy"]:
            lines.append(f"| {p['file']} | {p.get('agent_steps', '–'):,} | {p['transitions']:,} | "
                         f"{p['returns']['mean']:.0f} ± {p['returns']['std']:.0f} |")
    return "\n".join(lines)


def diagnostics_table(manifest: dict | None, diag: dict | None, dataset: str) -> str:
    """The dqn-replay-like data block: splits and the diagnostics (or what is missing)."""
    if not manifest:
        return f"(not built yet: `python make_dataset.py --dataset {dataset}` then `python diagnostics.py --dataset {dataset}`)"
    text = data_table(manifest, per_policy=False)
    if diag:
        d = diag.get("disagreement", {})
        c = diag.get("check", {})
        text += ("\n\n| per-state entropy of the logging policies | mixture entropy (same states) | pairwise Jensen-Shannon "
                 "(mean) | greedy actions agree (pairs of snapshots) | train episodes >= target return | best train return "
                 "(target) | check |\n|---|---|---|---|---|---|---|\n"
                 f"| {diag['data_per_state_entropy_nats']:.3f} nats (uniform: {diag['uniform_entropy_nats']:.2f}) | "
                 f"{d.get('mixture_entropy_nats', float('nan')):.3f} nats | {d.get('pairwise_js_mean_nats', float('nan')):.3f} nats | "
                 f"{100 * d.get('greedy_agreement_pairwise_mean', float('nan')):.0f}% | "
                 f"{100 * diag['train_episodes_at_or_above_target']:.1f}% | {diag['data_return_max']:.0f} "
                 f"({diag['target_return']:.0f}) | {'passed' if c.get('passed') else 'refused: ' + '; '.join(c.get('reasons', []))} |")
    else:
        text += f"\n\n(no diagnostics.json yet: `python diagnostics.py --dataset {dataset}`)"
    return text


def pqn_row(curve: dict) -> str:
    s = curve["sessions"]
    steps = sum(x["end_agent_steps"] - x["start_agent_steps"] for x in s)
    wall = sum(x["wall_seconds"] for x in s)
    env = s[-1]["env"]
    c = curve["config"]
    game = "" if c["game"] == "Seaquest" else f"{c['game']}: "  # Seaquest's rows predate the other games
    return (f"| {game}PQN agent (training, {c['num_envs']} envs + {c['eval_envs']} evaluation envs, sticky actions {c['sticky']}, "
            f"GPU updates; {len(s)} session{'s' if len(s) > 1 else ''}) | {steps / wall:,.0f} agent steps/s "
            f"({4 * steps / wall:,.0f} frames/s); {steps:,} steps in {wall:.0f} s | {env['gpu']}, {env['cpu_count']} CPU cores |")


def throughput_table(rows, manifests: dict, timing, curves: dict | None = None, others: dict | None = None) -> str:
    """manifests: Seaquest's per dataset; others: {(game, dataset): manifest} of the other games (named in their
    rows, as are their DT rows)."""
    lines = ["| stage | measured | where |", "|---|---|---|"]
    manifest = manifests.get(LEGACY_DATASET)
    agent = manifest.get("agent") if manifest else None
    if agent:
        lines.append(f"| PPO agent (training, {agent['config']['num_envs']} envs, GPU updates) | "
                     f"{agent['agent_steps_per_second']:,.0f} agent steps/s ({4 * agent['agent_steps_per_second']:,.0f} frames/s); "
                     f"{agent['agent_steps']:,} steps in {agent['wall_seconds']:.0f} s | {agent['env']['gpu']}, "
                     f"{agent['env']['cpu_count']} CPU cores |")
    if manifest:
        t = manifest["throughput"]
        lines.append(f"| dataset generation (replay of the 8 snapshots, {t['workers']} workers x {t['envs_per_worker']} envs) | "
                     f"{t['kept_transitions_per_second']:,.0f} kept transitions/s; "
                     f"{sum(s['transitions'] for s in manifest['splits'].values()):,} transitions in {manifest['wall_seconds']:.0f} s | "
                     f"{manifest['env']['gpu']}, {manifest['env']['cpu_count']} CPU cores |")
    for curve in (curves or {}).values():
        lines.append(pqn_row(curve))
    named = [("", d, m) for d, m in manifests.items()] + [(f"{g}, ", d, m) for (g, d), m in (others or {}).items()]
    for game, dataset, m in named:
        if (not game and dataset == LEGACY_DATASET) or not m:
            continue
        t = m["throughput"]
        lines.append(f"| dataset generation, {game}{dataset} ({len(m['policies'])} snapshots, {t['workers']} workers x "
                     f"{t['envs_per_worker']} envs) | {t['kept_transitions_per_second']:,.0f} kept transitions/s; "
                     f"{sum(s['transitions'] for s in m['splits'].values()):,} transitions in {m['wall_seconds']:.0f} s | "
                     f"{m['env']['gpu']}, {m['env']['cpu_count']} CPU cores |")
    for r in rows:
        name = "linear" if r["head"] == "linear" else f"Fourier-{r['num_frequencies']}"
        if r["dataset"] != LEGACY_DATASET:
            name = f"{name} on {r['dataset']}"
        if r["game"] != "Seaquest":
            name = f"{name}, {r['game']}"
        v = r["train_samples_per_second_per_run"]
        pv = r["provenance"]
        calls = ", ".join(c for cs in pv.get("gpu_calls_used", {}).values() for c in cs)
        lines.append(f"| DT training, {name} (one of {pv['runs_concurrent_on_one_gpu']} runs sharing the GPU"
                     + (f"; calls {calls}" if calls else "") + ") | "
                     f"{v['mean']:,.0f} samples/s per run (30-step windows, batch 128, bf16; windows seen / training "
                     f"seconds, summed over the GPU calls) | {', '.join(pv['gpu'])} |")
    if timing:
        lines.append(f"| DT training, short timing run (call 1, random-policy data) | alone {timing['alone']:,.0f}, "
                     f"6 at once {timing['six_concurrent_total']:,.0f} samples/s in total (includes start-up) | H100 |")
    return "\n".join(lines)


def read_json(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def readme_blocks(results: Path, snapshots: Path, readme_text: str) -> dict:
    """Every generated block of the README, from results/ and the PQN curves only (no runs/, no data/):
    what --update-readme writes and --check compares. Seaquest's data and throughput, all rows' results."""
    rows = json.loads((results / "summary.json").read_text())["rows"]
    tab, ptab, ctab = table(rows), paired_table(rows), common_table(rows)
    blocks = {"results": "\n\n".join(t for t in (tab, ptab) if t)}
    if ctab or "<!-- results_common:start -->" in readme_text:  # only when runs stopped at different epochs
        blocks["results_common"] = ctab
    manifests = {d: read_json(results / manifest_name("Seaquest", d)) for d in DATASETS}
    if manifests[LEGACY_DATASET]:
        blocks["data"] = data_table(manifests[LEGACY_DATASET])
    blocks["data_dqn"] = diagnostics_table(manifests["dqn-replay-like"],
                                           read_json(results / "diagnostics_Seaquest_dqn-replay-like.json"),
                                           "dqn-replay-like")
    blocks["games"] = games_table(rows, results) + "\n\n" + sweep_table(rows)
    curves = {f.parent.name: json.loads(f.read_text()) for f in sorted(snapshots.glob("*/curve.json"))}
    others = {(g, d): read_json(results / manifest_name(g, d)) for g in atari.GAMES if g != "Seaquest" for d in DATASETS}
    blocks["throughput"] = throughput_table(rows, {d: m for d, m in manifests.items() if m},
                                            read_json(results / "dt_timing_call1.json"), curves,
                                            {k: m for k, m in others.items() if m})
    return blocks


def results_text(rows, quick: bool = False) -> str:
    """results/table.md: the results, the paired comparison and (when runs stopped early) the common epoch."""
    return "\n\n".join(t for t in (table(rows, quick), paired_table(rows, quick), common_table(rows)) if t)


def check(cfg) -> int:
    """--check: regenerate the README's blocks and results/table.md from the committed results; write nothing."""
    results, readme = Path(cfg.results), Path(cfg.readme)
    if not (results / "summary.json").exists():
        raise SystemExit(f"error: no {results / 'summary.json'} to check against")
    blocks = readme_blocks(results, Path(cfg.snapshots), readme.read_text())
    stale = [name for name, text in blocks.items() if update_block(readme, name, text, check=True)]
    rows = json.loads((results / "summary.json").read_text())["rows"]
    table_md = results / "table.md"
    if read_text(table_md) != results_text(rows) + "\n":
        stale.append(str(table_md.relative_to(table_md.parents[1])))
    if stale:
        print(f"error: stale generated block(s) of {readme.name}: {', '.join(stale)} (differ from {results.name}/; "
              f"regenerate with `python aggregate.py --update-readme`)", file=sys.stderr)
        return 1
    print(f"{readme.name}: {len(blocks)} generated blocks and {table_md.name} match {results.name}/")
    return 0


def read_text(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


# ---- the four games (issue 20) ------------------------------------------------------------------

def sweep_selection(rows, game: str, dataset: str) -> dict | None:
    """With 3 or more Fourier N of one (game, dataset), a sweep: the N the authors' protocol picks (highest mean
    best-epoch return: chosen on the very evaluations it reports) and the N the held-out cross-entropy picks (no
    episode involved), each scored on both the best epoch and the separate final evaluation (other env seeds).
    The gap between `authors_protocol`'s best-epoch and final gains is what picking N on the test episodes adds."""
    four = sorted((r for r in rows if (r["game"], r["dataset"], r["head"]) == (game, dataset, "fourier")),
                  key=lambda r: r["num_frequencies"])
    if len(four) < 3:
        return None
    lin = next((r for r in rows if (r["game"], r["dataset"], r["head"]) == (game, dataset, "linear")), None)

    def scored(r, how):
        out = {"num_frequencies": r["num_frequencies"], "chosen_by": how, "n_seeds": r["n_seeds"],
               **{f"normalized_return_{k}": r[f"normalized_return_{k}"]["mean"] for k in ("best", "final")}}
        if lin:
            for k in ("best", "final"):
                out[f"gain_{k}_over_linear"] = out[f"normalized_return_{k}"] - lin[f"normalized_return_{k}"]["mean"]
        return out
    by_eval = max(four, key=lambda r: r["normalized_return_best"]["mean"])
    out = {"game": game, "dataset": dataset, "num_frequencies": [r["num_frequencies"] for r in four],
           "linear": {k: lin[f"normalized_return_{k}"]["mean"] for k in ("best", "final")} if lin else None,
           "authors_protocol": scored(by_eval, "highest mean best-epoch return (the evaluations it reports)")}
    if all("test_loss_final" in r for r in four):
        by_loss = min(four, key=lambda r: r["test_loss_final"]["mean"])
        out["held_out_loss"] = scored(by_loss, "lowest held-out cross-entropy after the last epoch")
    return out


def sweeps(rows) -> list:
    pairs = sorted({(r["game"], r["dataset"]) for r in rows}, key=lambda p: row_order(*p, "linear", 0))
    return [s for s in (sweep_selection(rows, g, d) for g, d in pairs) if s]


def data_cell(results: Path, game: str, dataset: str) -> str:
    m, d = read_json(results / manifest_name(game, dataset)), read_json(results / f"diagnostics_{game}_{dataset}.json")
    if not m:
        return "not built"
    text = f"{m['splits']['train']['transitions'] / 1e3:.0f}k, best {m['splits']['train']['returns']['max']:.0f}"
    if d:
        text += (f", {d['data_per_state_entropy_nats']:.2f} nats/state, {100 * d['train_episodes_at_or_above_target']:.0f}% "
                 f">= target, check {'passed' if d.get('check', {}).get('passed') else 'refused'}")
    return text


def authors_cell(game: str) -> str:
    if game == "Seaquest":
        p = [PAPER[("Seaquest", h, n)]["normalized_return"][0] for h, n in (("linear", 0), ("fourier", 8), ("fourier", 14))]
        return f"paper v1: {p[0]:.2f} / {p[1]:.2f} / {p[2]:.2f}; branch plot peak ≈3.47 (N = 24)"
    a = atari.AUTHORS_PLOTS[game]
    return (f"≈{a['linear']:g} / ≈{a['fourier'][8]:g} / ≈{a['fourier'][14]:g}; peak ≈{a['peak'][1]:g} "
            f"(N = {a['peak'][0]})")


def games_table(rows, results: Path) -> str:
    """The camera-ready's four games: per game and dataset our heads (final / best epoch, mean ± std over seeds),
    the sweep's choice, the data, and the authors' numbers; a game or dataset without runs says so."""
    lines = ["| game | target return | random / human | data | ours: Linear, final / best | Fourier-8 | Fourier-14 | "
             "our sweep: N picked by best epoch, best / final | authors: Linear / Fourier-8 / Fourier-14; best N |",
             "|---|---|---|---|---|---|---|---|---|"]
    picked = {(s["game"], s["dataset"]): s for s in sweeps(rows)}
    for game, g in atari.GAMES.items():
        datasets = sorted({r["dataset"] for r in rows if r["game"] == game} | {"dqn-replay-like"},
                          key=lambda d: list(DATASETS).index(d) if d in DATASETS else 99)
        for d in datasets:
            def head(h, n):
                r = next((r for r in rows if (r["game"], r["dataset"], r["head"], r["num_frequencies"]) == (game, d, h, n)), None)
                if r is None:
                    return "–"
                return f"{ms(r['normalized_return_final'])} / {ms(r['normalized_return_best'])} ({r['n_seeds']} seeds)"
            cells = [head("linear", 0), head("fourier", 8), head("fourier", 14)]
            sw = picked.get((game, d))
            sweep = "–" if sw is None else (f"N = {sw['authors_protocol']['num_frequencies']}: "
                                            f"{sw['authors_protocol']['normalized_return_best']:.2f} / "
                                            f"{sw['authors_protocol']['normalized_return_final']:.2f}")
            if cells == ["–"] * 3 and sw is None:
                cells = ["no finished runs yet", "–", "–"]
            lines.append(f"| {game} | {g['target_return']:g} | {g['random']:g} / {g['human']:g} | {d}: "
                         f"{data_cell(results, game, d)} | " + " | ".join(cells) + f" | {sweep} | {authors_cell(game)} |")
    return "\n".join(lines)


def sweep_table(rows) -> str:
    """Every sweep's curve (ours beside the authors' reading at the same N) and what choosing N on other data keeps."""
    found = sweeps(rows)
    if not found:
        return (f"No frequency sweep has run yet (N in {{{', '.join(map(str, atari.SWEEP))}}}: "
                "`GRID=sweep bash gpu_jobs/game_dt.sh <game>`).")
    out = []
    for s in found:
        game, d = s["game"], s["dataset"]
        a = atari.AUTHORS_PLOTS.get(game)
        lines = [f"| {game}, {d}: N | seeds | normalized return, final | best epoch | smoothness (seed 123) | authors (≈, best epoch) |",
                 "|---|---|---|---|---|---|"]
        for r in rows:
            if (r["game"], r["dataset"]) != (game, d):
                continue
            n = r["num_frequencies"]
            sm = r.get("smoothness_seed123_over_pmfs")
            ref = (a["linear"] if n == 0 else a["fourier"].get(n)) if a else None
            lines.append(f"| {name_of(r)} | {r['n_seeds']} | {ms(r['normalized_return_final'])} | "
                         f"{ms(r['normalized_return_best'])} | " + (ms(sm, 3) if sm else "–") + " | "
                         + ("–" if ref is None else f"≈{ref:g}") + " |")
        p = s["authors_protocol"]
        text = (f"Picked as the authors did (best mean best-epoch return): N = {p['num_frequencies']}, best epoch "
                f"{p['normalized_return_best']:.2f}, final evaluation {p['normalized_return_final']:.2f}")
        if s["linear"]:
            text += (f"; gain over linear {p['gain_best_over_linear']:+.2f} (best epoch) vs "
                     f"{p['gain_final_over_linear']:+.2f} (final evaluation, other episodes)")
        if "held_out_loss" in s:
            q = s["held_out_loss"]
            text += (f". Picked on the held-out cross-entropy: N = {q['num_frequencies']}, final evaluation "
                     f"{q['normalized_return_final']:.2f}" + (f" (gain {q['gain_final_over_linear']:+.2f})" if s["linear"] else ""))
        out.append("\n".join(lines) + "\n\n" + text + ".")
    return "\n\n".join(out)


# ---- main -----------------------------------------------------------------------------------------

@dataclass
class Config:
    runs: str = Field(str(HERE / "runs"), "train.py's run folders")
    results: str = Field(str(HERE / "results"), "summary.json, table.md, the data manifests and PMF traces")
    data: str = Field(str(HERE / "data"), "make_dataset.py's data root (<game>/, dqn-replay-like/<game>/)")
    snapshots: str = Field(str(HERE / "snapshots/pqn"), "PQN runs' curve.json (<game>/curve.json)")
    readme: str = Field(str(HERE / "README.md"), "the README with the generated blocks")
    update_readme: bool = Field(False, "also rewrite the README's generated blocks")


QUICK = dict(runs=str(HERE / "runs/quick"), results=str(HERE / "runs/quick/results"), data=str(HERE / "runs/quick/data"),
             snapshots=str(HERE / "runs/quick/snapshots/pqn"))


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK, extra=lambda p: p.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when a generated README block is stale"))
    if cfg._args.check:
        if cfg._args.quick:
            raise SystemExit("error: --check compares the committed results/ with the README; it takes no --quick")
        sys.exit(check(cfg))
    runs, results = Path(cfg.runs), Path(cfg.results)
    done, incomplete = collect(runs)
    quick = cfg._args.quick or any(c.get("quick") for items in done.values() for _, c, _, _ in items)
    committed = results.resolve() == (HERE / "results").resolve()
    if quick and (committed or cfg.update_readme):
        raise SystemExit("error: quick runs never go into results/ or the README (use --quick: runs/quick/results)")
    results.mkdir(parents=True, exist_ok=True)
    previous_file = results / "summary.json"
    previous = json.loads(previous_file.read_text()) if previous_file.exists() else {"rows": []}
    calls_file = results / "gpu_calls.json"
    dt_runs = json.loads(calls_file.read_text()).get("dt_runs", {}) if calls_file.exists() else {}
    rows = summarize(done, results, runs, dt_runs, quick)
    here = {(r["game"], r["dataset"]) for r in rows}
    carried = [upgrade_row(r) for r in previous["rows"] if (r["game"], r.get("dataset", LEGACY_DATASET)) not in here]
    dropped = {(r["game"], r.get("dataset", LEGACY_DATASET)) for r in previous["rows"]} & here
    if dropped:
        print(f"rows of {sorted(dropped)} recomputed from the run folders (the earlier summary's rows replaced)")
    rows = sorted(rows + carried, key=lambda r: row_order(r["game"], r["dataset"], r["head"], r["num_frequencies"]))
    if not rows:
        raise SystemExit(f"error: no finished runs (metrics.json) under {runs} and no rows in {previous_file}")
    # every dataset built here is copied into results/, also one whose DT runs have not finished yet
    pairs = {(r["game"], r["dataset"]) for r in rows} | {(r["game"], d) for r in rows for d in DATASETS}
    infos = {(g, d): data_info(results, Path(cfg.data), g, d) for g, d in pairs}
    for r in rows:
        attach_data(r, infos[(r["game"], r["dataset"])])
    paired_vs_linear(rows)
    curves = {}
    for key, items in done.items():
        curves[f"{key[0]}/{key[1]}/{head_label(key[2], key[3])}"] = {
            str(m["seed"]): [h["normalized_return"] for h in m["history"]] for _, _, m, _ in items}
    for k, v in previous.get("normalized_return_per_epoch", {}).items():
        parts = k.split("/")
        k = "/".join([parts[0], LEGACY_DATASET, parts[1]]) if len(parts) == 2 else k
        if (parts[0], k.split("/")[1]) not in here:
            curves.setdefault(k, v)
    summary = {"rows": rows, "incomplete_runs": incomplete, "normalized_return_per_epoch": dict(sorted(curves.items()))}
    if sweeps(rows):
        summary["sweeps"] = sweeps(rows)
    if quick:
        summary["quick"] = True  # plot.py titles its figures "quick run"
    write_json(results / "summary.json", summary)
    text = results_text(rows, quick)
    (results / "table.md").write_text(text + "\n")
    print(text)
    if cfg.update_readme:
        readme = Path(cfg.readme)
        for name, block in readme_blocks(results, Path(cfg.snapshots), readme.read_text()).items():
            update_block(readme, name, block)


if __name__ == "__main__":
    main()
