"""Collect the DT runs into results/summary.json (one row per game, head, N) and the README tables.

    python aggregate.py                                   # runs/ -> results/
    python aggregate.py --runs runs/quick --results runs/quick/results
    python aggregate.py --update-readme                   # also rewrite README's generated tables

A run counts when its metrics.json exists; a run that stopped early (history.json only) is listed
under "incomplete" with the epochs it finished and flagged in its row (epochs done). Only runs at
<runs>/<game>/<head>/seed<s>/ whose config names that game are read, so set-aside folders such as
runs/incomplete_call4/<head>/seed<s>/ are ignored. When the runs finished different numbers of epochs, a
second table compares every head after the last epoch all of them finished; when all runs are complete
that table is not made.

Provenance: env.json gives each run's GPU, torch and commit; results/gpu_calls.json ("dt_runs", keyed by
that commit) says which GPU calls trained it, what code ran (a commit plus fixes) and how many runs shared
the GPU, which the per-run samples/s depend on.
"""

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PAPER = {  # paper v1 Table 2 (Seaquest, normalized return over 4 seeds; smoothness over one seed's rollouts)
    ("Seaquest", "linear", 0): {"normalized_return": [2.53, 0.63], "smoothness": [0.48, 0.14]},
    ("Seaquest", "fourier", 8): {"normalized_return": [2.78, 0.47], "smoothness": [0.22, 0.04]},
    ("Seaquest", "fourier", 14): {"normalized_return": [3.70, 0.47], "smoothness": [0.39, 0.11]},
}


def stats(per_seed: dict) -> dict:
    v = np.array(list(per_seed.values()), dtype=np.float64)
    return {"per_seed": per_seed, "mean": float(v.mean()), "std": float(v.std())}  # np.std, as the reference


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
    return {"seed": cfg["seed"], "normalized_return_final": norm[-1], "normalized_return_best": max(norm),
            "return_final": hist[-1]["eval_mean_return"], "return_best": max(h["eval_mean_return"] for h in hist),
            "smoothness": sum(h["smoothness_sum"] for h in hist) / n, "episodes_per_eval": cfg["eval_episodes"],
            "epochs": cfg["epochs"], "epoch_samples": cfg["epoch_samples_resolved"],
            "train_samples_per_second": round(hist[-1]["tokens"] / cfg["context"] / hist[-1]["train_seconds_cumulative"], 1),
            # no end-of-run wall time: the training and evaluation seconds of the finished epochs instead
            "wall_seconds": round(hist[-1]["train_seconds_cumulative"] + sum(h["eval_seconds"] for h in hist), 1),
            "history": hist}


def collect(runs: Path):
    """Finished runs, plus stopped runs with at least one evaluated epoch (marked incomplete)."""
    done, incomplete = {}, []
    for cfg_path in sorted(runs.glob("*/*/seed*/config.json")):
        run = cfg_path.parent
        cfg = json.loads(cfg_path.read_text())
        if run.parent.parent.name != cfg["game"]:  # e.g. runs/incomplete_call4/fourier8/seed123: set aside
            continue
        key = (cfg["game"], cfg["head"], cfg["num_frequencies"])
        if any(c["seed"] == cfg["seed"] for _, c, _, _ in done.get(key, [])):
            raise SystemExit(f"two runs of {key} with seed {cfg['seed']} under {runs}")
        env = json.loads((run / "env.json").read_text())
        if (run / "metrics.json").exists():
            m = json.loads((run / "metrics.json").read_text())
            m["complete"] = True
        else:
            hist = json.loads((run / "history.json").read_text()) if (run / "history.json").exists() else []
            incomplete.append({"run": str(run.relative_to(runs)), "epochs_finished": len(hist),
                               "epochs_planned": cfg["epochs"]})
            if not hist:
                continue
            m = metrics_from_history(cfg, hist)
            m["complete"] = False
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


def summarize(done, results: Path, runs: Path, dt_runs: dict | None = None):
    rows = []
    dt_runs = dt_runs or {}
    lengths = {len(m["history"]) for items in done.values() for _, _, m, _ in items}
    # the last epoch every run finished; only used when the runs stopped at different epochs
    common = min(lengths) if len(lengths) > 1 else None
    commits = {}
    for items in done.values():
        for _, _, _, e in items:
            commits[e["commit"]] = commits.get(e["commit"], 0) + 1
    for (game, head, n), items in sorted(done.items(), key=lambda kv: (kv[0][0], kv[0][1] != "linear", kv[0][2])):
        seeds = {str(m["seed"]): m for _, _, m, _ in items}
        envs = [e for _, _, _, e in items]
        manifest_file = f"dataset_manifest_{game}.json"
        row_commits = sorted({e["commit"] for e in envs})
        calls = {c: dt_runs.get(c, {}) for c in row_commits}
        # how many runs shared the GPU: from gpu_calls.json, else the runs launched from the same commit
        sharing = sorted({calls[c].get("runs_sharing_gpu", commits[c]) for c in row_commits})
        row = {
            "game": game, "head": head, "num_frequencies": n, "n_seeds": len(seeds), "seeds": sorted(map(int, seeds)),
            "normalized_return_final": stats({s: m["normalized_return_final"] for s, m in seeds.items()}),
            "normalized_return_best": stats({s: m["normalized_return_best"] for s, m in seeds.items()}),
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
                           "dataset_manifest": manifest_file, "gpu_calls": "gpu_calls.json"},
        }
        if "123" in seeds:  # the paper's smoothness: all rollout PMFs of seed 123
            row["smoothness_seed123_over_pmfs"] = pooled_smoothness(seeds["123"]["history"])
        if common is not None:
            row["at_common_epoch"] = at_epoch(seeds, common)
        if (game, head, n) in PAPER:
            row["paper"] = PAPER[(game, head, n)]
        rows.append(row)
        # the final-epoch PMF trace of the first seed, for the PMF figure
        run = items[0][0]
        last = run / f"pmf_trace_epoch{len(items[0][2]['history'])}.npz"
        if last.exists():
            (results / "pmf_traces").mkdir(parents=True, exist_ok=True)
            shutil.copy(last, results / "pmf_traces" / f"{game}_{head}{n or ''}_seed{items[0][2]['seed']}.npz")
    return rows


def windows(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def common_table(rows) -> str:
    """Every head after the last epoch all runs finished; empty when every run finished the same epochs."""
    if "at_common_epoch" not in rows[0]:
        return ""
    k = rows[0]["at_common_epoch"]["epoch"]
    lines = [f"| game | head | seeds | normalized return, epoch {k} | normalized return, best of epochs 1–{k} | "
             f"smoothness, epochs 1–{k} (seed 123, over PMFs) | test loss, epoch {k} |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        name = "Linear" if r["head"] == "linear" else f"Fourier-{r['num_frequencies']}"
        c = r["at_common_epoch"]
        f, b, t, sm = c["normalized_return"], c["normalized_return_best"], c["test_loss"], c.get("smoothness_seed123_over_pmfs")
        lines.append(f"| {r['game']} | {name} | {r['n_seeds']} | {f['mean']:.2f} ± {f['std']:.2f} | {b['mean']:.2f} ± {b['std']:.2f} | "
                     + (f"{sm['mean']:.3f} ± {sm['std']:.3f}" if sm else "–") + f" | {t['mean']:.3f} ± {t['std']:.3f} |")
    return "\n".join(lines)


def table(rows) -> str:
    lines = ["| game | head | seeds | epochs done | windows seen per run | normalized return, final epoch | normalized return, best epoch | smoothness "
             "(seed 123, over PMFs) | paper: normalized return | paper: smoothness |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = "Linear" if r["head"] == "linear" else f"Fourier-{r['num_frequencies']}"
        f, b = r["normalized_return_final"], r["normalized_return_best"]
        sm = r.get("smoothness_seed123_over_pmfs")
        p = r.get("paper")
        ep = sorted(set(r["epochs_finished"].values()))
        seen = sorted({windows(v) for v in r["train_samples_seen"].values()})
        lines.append(f"| {r['game']} | {name} | {r['n_seeds']} | {'/'.join(map(str, ep))} of {r['epochs_planned']} | "
                     f"{'–'.join(seen)} | {f['mean']:.2f} ± {f['std']:.2f} | "
                     f"{b['mean']:.2f} ± {b['std']:.2f} | "
                     + (f"{sm['mean']:.3f} ± {sm['std']:.3f}" if sm else "–") + " | "
                     + (f"{p['normalized_return'][0]:.2f} ± {p['normalized_return'][1]:.2f} | "
                        f"{p['smoothness'][0]:.2f} ± {p['smoothness'][1]:.2f} |" if p else "– | – |"))
    return "\n".join(lines)


def data_table(manifest: dict) -> str:
    lines = ["| split | transitions | episodes | return mean ± std | min | median | max | episode length (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for split, s in manifest["splits"].items():
        r = s["returns"]
        lines.append(f"| {split} | {s['transitions']:,} | {r['episodes']} | {r['mean']:.0f} ± {r['std']:.0f} | "
                     f"{r['min']:.0f} | {r['q50']:.0f} | {r['max']:.0f} | {s['episode_lengths']['mean']:.0f} |")
    lines += ["", "| policy snapshot | PPO agent steps | train transitions | return mean ± std (train) |", "|---|---|---|---|"]
    for p in manifest["splits"]["train"]["per_policy"]:
        lines.append(f"| {p['file']} | {p.get('agent_steps', '–'):,} | {p['transitions']:,} | "
                     f"{p['returns']['mean']:.0f} ± {p['returns']['std']:.0f} |")
    return "\n".join(lines)


def throughput_table(rows, manifest, timing) -> str:
    lines = ["| stage | measured | where |", "|---|---|---|"]
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
    for r in rows:
        name = "linear" if r["head"] == "linear" else f"Fourier-{r['num_frequencies']}"
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


def replace_block(text: str, name: str, body: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text:
        return text
    a, b = text.index(start) + len(start), text.index(end)
    return text[:a] + "\n" + body + "\n" + text[b:]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default=str(HERE / "runs"))
    p.add_argument("--results", default=str(HERE / "results"))
    p.add_argument("--data", default=str(HERE / "data"), help="where make_dataset.py wrote <game>/manifest.json")
    p.add_argument("--update-readme", action="store_true")
    args = p.parse_args(argv)
    runs, results = Path(args.runs), Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    done, incomplete = collect(runs)
    if not done:
        raise SystemExit(f"no finished runs (metrics.json) under {runs}")
    calls_file = results / "gpu_calls.json"
    dt_runs = json.loads(calls_file.read_text()).get("dt_runs", {}) if calls_file.exists() else {}
    rows = summarize(done, results, runs, dt_runs)
    manifests = {}
    for game in {r["game"] for r in rows}:
        src = Path(args.data) / game / "manifest.json"
        dst = results / f"dataset_manifest_{game}.json"
        if src.exists():
            shutil.copy(src, dst)
        if dst.exists():
            manifests[game] = json.loads(dst.read_text())
    curves = {}
    for key, items in done.items():
        name = "linear" if key[1] == "linear" else f"fourier{key[2]}"
        curves[f"{key[0]}/{name}"] = {str(m["seed"]): [h["normalized_return"] for h in m["history"]] for _, _, m, _ in items}
    summary = {"rows": rows, "incomplete_runs": incomplete, "normalized_return_per_epoch": curves}
    (results / "summary.json").write_text(json.dumps(summary, indent=1))
    tab = table(rows)
    ctab = common_table(rows)
    both = tab + ("\n\n" + ctab if ctab else "")
    (results / "table.md").write_text(both + "\n")
    print(both)
    if args.update_readme:
        readme = HERE / "README.md"
        text = replace_block(readme.read_text(), "results", tab)
        text = replace_block(text, "results_common", ctab)
        if "Seaquest" in manifests:
            text = replace_block(text, "data", data_table(manifests["Seaquest"]))
        timing_file = results / "dt_timing_call1.json"
        timing = json.loads(timing_file.read_text()) if timing_file.exists() else None
        text = replace_block(text, "throughput", throughput_table(rows, manifests.get("Seaquest"), timing))
        readme.write_text(text)


if __name__ == "__main__":
    main()
