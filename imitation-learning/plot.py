"""Figures from saved results only (results/summary.json, results/pmf_traces/, the dataset manifest).

    python plot.py                                        # results/ -> figures/
    python plot.py --quick                                # runs/quick/results -> runs/quick/figures

figures/<game>[_<dataset>]_vs_frequencies.png  normalized return (final and best epoch) and smoothness vs
                                   N, with the linear baseline as a band (mean ± std over seeds), paper values
figures/<game>[_<dataset>]_pmfs.png  next-action PMFs from rollouts, linear vs Fourier, joystick tick labels
figures/<game>[_<dataset>]_per_epoch.png  normalized return after each epoch, every seed
figures/<game>_data_returns.png    returns of the ppo-sampled episodes per policy snapshot
figures/atari_four_games.png       the camera-ready's four games side by side: normalized return (final
                                   evaluation) and smoothness vs head (linear band, Fourier vs N) per game and
                                   dataset, the authors' values as black marks; a game without runs says so
figures/<game>_pqn_curve.png       the PQN agent's learning curve (snapshots/pqn/<game>/curve.json): training
                                   and epsilon-0.01 evaluation returns, the snapshots the data uses, the target
The dataset suffix is left out for ppo-sampled (the first figures' names); the dqn-replay-like data figure
(<game>_dqn-replay-like_data.png) is diagnostics.py's. Figures of a quick run (summary.json `quick`) say
"quick run" and the data they really used (the quick data is played by a random policy) in their titles,
and carry no paper values.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import plot_style
from atari import AUTHORS_PLOTS, GAMES, JOYSTICK_NAMES
from scaffold import Field, parse_config

HERE = Path(__file__).resolve().parent
LEGACY_DATASET = "ppo-sampled"  # as train.LEGACY_DATASET (not imported: plotting needs no torch)


def stem(game: str, dataset: str) -> str:
    return game if dataset == LEGACY_DATASET else f"{game}_{dataset}"


def data_label(results: Path, game: str, dataset: str, quick: bool) -> str:
    """'<game>, <dataset>' for titles; a quick run says so, and names a random-policy data set as such."""
    name = dataset
    manifest = results / (f"dataset_manifest_{game}.json" if dataset == LEGACY_DATASET
                          else f"dataset_manifest_{game}_{dataset}.json")
    if manifest.exists() and json.loads(manifest.read_text()).get("config", {}).get("policy") == "random":
        name = "random-policy data"
    return f"{game}, quick run ({name})" if quick else f"{game}, {name}"
# short joystick labels: arrows for the directions, "F" for fire
ARROWS = {"NOOP": "·", "LEFT": "←", "UPLEFT": "↖", "UP": "↑", "UPRIGHT": "↗", "RIGHT": "→", "DOWNRIGHT": "↘",
          "DOWN": "↓", "DOWNLEFT": "↙", "FIRE": "F"}


def tick_label(name: str) -> str:
    if name.endswith("FIRE") and name != "FIRE":
        return ARROWS[name[:-4]] + "\nF"
    return ARROWS[name]


def vs_frequencies(rows, game, figures, dataset=LEGACY_DATASET, label=None, quick=False):
    import matplotlib.pyplot as plt
    rows = [r for r in rows if r.get("dataset", LEGACY_DATASET) == dataset]
    lin = [r for r in rows if r["game"] == game and r["head"] == "linear"]
    four = sorted([r for r in rows if r["game"] == game and r["head"] == "fourier"], key=lambda r: r["num_frequencies"])
    if not four:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    n = [r["num_frequencies"] for r in four]
    for ax, key, ylabel in ((axes[0], "normalized_return", "normalized return (×100)"), (axes[1], "smoothness", "smoothness (↓)")):
        variants = [("_final", "-o", "final epoch"), ("_best", "--s", "best epoch")] if key == "normalized_return" else [("", "-o", "")]
        for suffix, style, what in variants:
            m = np.array([r[key + suffix]["mean"] for r in four])
            s = np.array([r[key + suffix]["std"] for r in four])
            ax.errorbar(n, m, yerr=s, fmt=style, color=plot_style.COLORS["fourier"], capsize=3,
                        label=f"Fourier head, {what}".rstrip(", "), alpha=1.0 if suffix != "_best" else 0.6)
            if lin:
                lm, ls = lin[0][key + suffix]["mean"], lin[0][key + suffix]["std"]
                ax.axhline(lm, color=plot_style.COLORS["linear"], ls="-" if suffix != "_best" else "--",
                           alpha=1.0 if suffix != "_best" else 0.6, label=f"linear head, {what}".rstrip(", "))
                ax.axhspan(lm - ls, lm + ls, color=plot_style.COLORS["linear"], alpha=0.08)
        points = [] if quick else [(r["num_frequencies"], r["paper"][key][0]) for r in four if "paper" in r]
        if points:
            ax.plot(*zip(*points), "x", color="k", label="paper v1 (Fourier)")
        if not quick and lin and "paper" in lin[0]:
            ax.axhline(lin[0]["paper"][key][0], color="k", ls=":", lw=1, label="paper v1 (linear)")
        ax.set_xlabel("number of frequencies N")
        ax.set_ylabel(ylabel)
        ax.set_xticks(n)
    seeds = four[0]["n_seeds"]
    seeds = f"{seeds} seed{'s' if seeds > 1 else ''}"
    if quick:  # the longer label on top, the panels' own titles short
        fig.suptitle(label, fontsize=10)
        axes[0].set_title(f"normalized return ({seeds})")
        axes[1].set_title("smoothness of rollout PMFs")
    else:
        axes[0].set_title(f"{label or f'{game}, {dataset}'}: normalized return ({seeds})")
        axes[1].set_title(f"{label or f'{game}, {dataset}'}: smoothness of rollout PMFs")
    axes[0].legend(fontsize=7)
    plot_style.save(fig, figures / f"{stem(game, dataset)}_vs_frequencies.png")


def pmfs(results, game, figures, steps=(0, 50, 100, 200), dataset=LEGACY_DATASET, label=None):
    import matplotlib.pyplot as plt
    # <stem>_<head>_seed<k>.npz, the stem without dataset for ppo-sampled
    traces = sorted(t for t in (results / "pmf_traces").glob(f"{stem(game, dataset)}_*.npz")
                    if len(t.stem[len(stem(game, dataset)) + 1:].split("_")) == 2)
    if not traces:
        return
    head_of = lambda t: t.stem[len(stem(game, dataset)) + 1:].split("_")[0]  # noqa: E731
    fourier = sorted((t for t in traces if head_of(t).startswith("fourier")), key=lambda t: int(head_of(t)[7:]))
    chosen = [t for t in traces if head_of(t) == "linear"][:1] + fourier
    labels = [tick_label(nm) for nm in JOYSTICK_NAMES]
    usable = [s for s in steps if all(len(np.load(t)["pmf"]) > s for t in chosen)]
    if not usable:
        return
    fig, axes = plt.subplots(len(usable), len(chosen), figsize=(3.4 * len(chosen), 2.3 * len(usable)), squeeze=False,
                             constrained_layout=True)
    for j, t in enumerate(chosen):
        d = np.load(t)
        name = head_of(t)
        color = plot_style.COLORS["linear" if name == "linear" else "fourier"]
        for i, s in enumerate(usable):
            ax = axes[i, j]
            ax.bar(np.arange(18), d["pmf"][s].astype(np.float32), color=color)
            ax.plot(d["action"][s], 0, "o", color=plot_style.COLORS["true"], ms=5, clip_on=False)
            ax.set_xticks(np.arange(18), labels, fontsize=8)
            ax.set_ylim(0, 1)
            if i == 0:
                ax.set_title(("Linear" if name == "linear" else f"Fourier-{name[7:]}") + " head", fontsize=10)
            if j == 0:
                ax.set_ylabel(f"step {s}", fontsize=9)
    seed = chosen[0].stem.rsplit("_seed", 1)[1]
    fig.suptitle(f"{label or f'{game}, {dataset}'}: next-action PMFs during a rollout (last evaluated epoch, seed "
                 f"{seed}; green dot: the sampled action)", fontsize=10)
    plot_style.save(fig, figures / f"{stem(game, dataset)}_pmfs.png")


def per_epoch(summary, game, figures, dataset=LEGACY_DATASET, label=None):
    import matplotlib.pyplot as plt
    curves = {}
    for k, v in summary["normalized_return_per_epoch"].items():  # <game>/<dataset>/<head> (older: <game>/<head>)
        parts = k.split("/")
        parts = parts if len(parts) == 3 else [parts[0], LEGACY_DATASET, parts[1]]
        if parts[:2] == [game, dataset]:
            curves[parts[2]] = v
    if not curves:
        return
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    shades = iter(["#2471a3", "#5dade2", "#1a5276", "#85c1e9"])
    for name, seeds in sorted(curves.items()):
        color = plot_style.COLORS["linear"] if name == "linear" else next(shades)
        for k, (seed, ys) in enumerate(sorted(seeds.items())):
            ax.plot(np.arange(1, len(ys) + 1), ys, "-o", color=color, ms=3, alpha=0.8,
                    label=name if k == 0 else None)
    ax.set_xticks(range(1, 1 + max(len(ys) for seeds in curves.values() for ys in seeds.values())))
    ax.set_xlabel("epoch")
    ax.set_ylabel("normalized return (×100)")
    episodes = sorted({r["episodes_per_evaluation"] for r in summary["rows"]
                       if r["game"] == game and r.get("dataset", LEGACY_DATASET) == dataset})
    ax.set_title(f"{label or f'{game}, {dataset}'}: return after each epoch "
                 f"({'/'.join(map(str, episodes))} episode{'s' if episodes != [1] else ''} each)")
    ax.legend(fontsize=8)
    plot_style.save(fig, figures / f"{stem(game, dataset)}_per_epoch.png")


def data_returns(results, game, figures, quick=False):
    import matplotlib.pyplot as plt
    path = results / f"dataset_manifest_{game}.json"
    if not path.exists():
        return
    m = json.loads(path.read_text())
    pol = m["splits"]["train"]["per_policy"]
    x = np.arange(len(pol))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    q = lambda key: np.array([p["returns"][key] for p in pol])
    ax.fill_between(x, q("q10"), q("q90"), color=plot_style.COLORS["regression"], alpha=0.25, label="10–90% of episodes")
    ax.plot(x, q("q50"), "-o", color="k", ms=3, label="median")
    ax.plot(x, q("mean"), "--", color=plot_style.COLORS["fourier"], label="mean")
    ax.axhline(m["splits"]["train"]["returns"]["mean"], color="grey", lw=0.8, ls=":", label="whole train split, mean")
    random = m.get("config", {}).get("policy") == "random"
    ax.set_xticks(x, ["random" if random else f"{p.get('agent_steps', 0) / 1e6:.2f}M" for p in pol], fontsize=8)
    ax.set_xlabel("policy" if random else "PPO snapshot (agent steps when saved)")
    ax.set_ylabel("episode return")
    ax.set_title(f"{data_label(results, game, LEGACY_DATASET, quick)}: returns in the offline data (train split)"
                 if quick or random else f"{game}: returns in the offline dataset (train split)")
    ax.legend(fontsize=7)
    plot_style.save(fig, figures / f"{game}_data_returns.png")


def pqn_curve(curve_file: Path, figures: Path, target_return: float | None = None, quick: bool = False):
    """Training return (last 100 games) and epsilon-0.01 evaluation return (last 16 games, never learned from)
    against agent steps (frames on top), every evaluation game as a dot, the snapshots saved (ticks: all; the
    committed ones, which the dqn-replay-like data replays, filled), the target return dashed."""
    import matplotlib.pyplot as plt
    c = json.loads(Path(curve_file).read_text())
    game = c["config"]["game"]
    rows = c["rows"]
    x = np.array([r["agent_steps"] for r in rows]) / 1e6
    fig, ax = plt.subplots(figsize=(7.5, 4))
    ev = np.array(c["eval_episodes"], dtype=np.float64).reshape(-1, 3)
    if len(ev):
        ax.plot(ev[:, 0] / 1e6, ev[:, 1], ".", color=plot_style.COLORS["fourier"], ms=2.5, alpha=0.35,
                label="evaluation game (epsilon 0.01)")
    train = [r["train_return_last100"] for r in rows]
    evals = [np.nan if r["eval_return_last16"] is None else r["eval_return_last16"] for r in rows]
    ax.plot(x, train, "-", color=plot_style.COLORS["regression"], lw=1.5,
            label=f"training return, last 100 games (epsilon {c['config']['eps_end']} after the decay)")
    ax.plot(x, evals, "-", color=plot_style.COLORS["fourier"], lw=1.5, label="evaluation return, last 16 games (epsilon 0.01)")
    if target_return:
        ax.axhline(target_return, color="k", ls="--", lw=1, label=f"DT target return {target_return:.0f}")
    committed = {p.name for p in Path(curve_file).parent.glob("policy_*.pt")}
    snaps = c["snapshots"]
    used = [s["agent_steps"] / 1e6 for s in snaps if s["file"] in committed]
    other = [s["agent_steps"] / 1e6 for s in snaps if s["file"] not in committed]
    ymin = ax.get_ylim()[0]
    ax.plot(used, [ymin] * len(used), "|", color="k", ms=10, mew=1.2, clip_on=False,
            label=f"snapshots replayed by the data ({len(used)})")
    if other:
        ax.plot(other, [ymin] * len(other), "|", color="#bbbbbb", ms=10, mew=1.2, clip_on=False,
                label=f"snapshots not kept ({len(other)})")
    ax.set_ylim(bottom=ymin)
    ax.set_xlabel("agent steps (millions)")
    ax.set_ylabel("episode return")
    top = ax.secondary_xaxis("top", functions=(lambda s: 4 * s, lambda f: f / 4))
    top.set_xlabel("frames (millions; frame skip 4)")
    last = rows[-1]
    ax.set_title(f"{game}{', quick run' if quick else ''}: PQN agent, sticky actions {c['config']['sticky']} "
                 f"({last['agent_steps'] / 1e6:.1f}M steps)")
    ax.legend(fontsize=7, loc="upper left")
    return plot_style.save(fig, figures / f"{game}_pqn_curve.png")


PAPER_SEAQUEST = {0: (2.53, 0.48), 8: (2.78, 0.22), 14: (3.70, 0.39)}  # paper v1 Table 2 (as aggregate.PAPER)


def four_games(rows, figures, quick=False):
    """One column per game (atari.GAMES' order): normalized return of the final evaluation (top) and smoothness
    (bottom) vs N, the linear head as a band (mean ± std over seeds), every dataset with runs as its own line.
    The authors' values (Seaquest: paper v1; the others: our reading of their branch plots, approximate) are
    black marks; a game without runs of ours says so in its panel, nothing is filled in."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(GAMES), figsize=(3.4 * len(GAMES), 5.6), squeeze=False)
    styles = {"ppo-sampled": ("s", ":"), "dqn-replay-like": ("o", "-")}
    for j, game in enumerate(GAMES):
        mine = [r for r in rows if r["game"] == game]
        for i, (key, ylabel) in enumerate((("normalized_return_final", "normalized return (×100), final"),
                                           ("smoothness", "smoothness (↓)"))):
            ax = axes[i, j]
            for dataset in sorted({r.get("dataset", LEGACY_DATASET) for r in mine}):
                marker, ls = styles.get(dataset, ("^", "--"))
                rs = [r for r in mine if r.get("dataset", LEGACY_DATASET) == dataset]
                four = sorted((r for r in rs if r["head"] == "fourier"), key=lambda r: r["num_frequencies"])
                if four:
                    ax.errorbar([r["num_frequencies"] for r in four], [r[key]["mean"] for r in four],
                                yerr=[r[key]["std"] for r in four], fmt=marker, ls=ls, capsize=3,
                                color=plot_style.COLORS["fourier"], label=f"Fourier, {dataset}")
                for r in (r for r in rs if r["head"] == "linear"):
                    m, sd = r[key]["mean"], r[key]["std"]
                    ax.axhline(m, color=plot_style.COLORS["linear"], ls=ls, label=f"linear, {dataset}")
                    ax.axhspan(m - sd, m + sd, color=plot_style.COLORS["linear"], alpha=0.08)
            if not quick:
                k = 0 if i == 0 else 1
                if game == "Seaquest":
                    pts = [(n, v[k]) for n, v in PAPER_SEAQUEST.items() if n]
                    lin, what = PAPER_SEAQUEST[0][k], "paper v1"
                elif game in AUTHORS_PLOTS:
                    a = AUTHORS_PLOTS[game]
                    pts = sorted((a["fourier"] if i == 0 else a["fourier_smoothness"]).items())
                    lin, what = a["linear"] if i == 0 else a["linear_smoothness"], "authors' plot (≈, best epoch)"
                else:
                    pts, lin = [], None
                if pts:
                    ax.plot(*zip(*pts), "x", color="k", label=f"{what}, Fourier")
                if lin is not None:
                    ax.axhline(lin, color="k", ls="--", lw=0.8, label=f"{what}, linear")
            if not mine:
                ax.text(0.5, 0.5, "no runs of ours yet", transform=ax.transAxes, ha="center", va="center",
                        fontsize=11, color="#7f8c8d")
            ax.set_xlabel("number of frequencies N")
            ax.set_ylabel(ylabel)
            ax.set_xlim(0, 34)
            if i == 0:
                g = GAMES[game]
                ax.set_title(f"{game} (target {g['target_return']:g}; random {g['random']:g}, human {g['human']:g})",
                             fontsize=9)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6)
    fig.suptitle(("quick run: tiny models, " if quick else "") + "Decision Transformer, linear vs Fourier head, four "
                 "Atari games (ours: mean ± std over seeds)", fontsize=11)
    fig.tight_layout()
    with plt.rc_context({"savefig.dpi": 100}):  # 8 panels: the repository travels to every GPU machine
        return plot_style.save(fig, figures / "atari_four_games.png")


@dataclass
class Config:
    results: str = Field(str(HERE / "results"), "aggregate.py's output (summary.json, pmf_traces/, manifests)")
    figures: str = Field(str(HERE / "figures"), "where the figures go")
    snapshots: str = Field(str(HERE / "snapshots/pqn"), "PQN runs: <game>/curve.json")


QUICK = dict(results=str(HERE / "runs/quick/results"), figures=str(HERE / "runs/quick/figures"),
             snapshots=str(HERE / "runs/quick/snapshots/pqn"))


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__, quick=QUICK)
    results, figures = Path(cfg.results), Path(cfg.figures)
    if not (results / "summary.json").exists():
        raise SystemExit(f"error: no {results / 'summary.json'}: run aggregate.py{' --quick' if cfg._args.quick else ''} "
                         "first")
    summary = json.loads((results / "summary.json").read_text())
    quick = summary.get("quick", False) or cfg._args.quick
    if quick and figures.resolve() == (HERE / "figures").resolve():
        raise SystemExit("error: quick results never go into figures/ (use --quick: runs/quick/figures)")
    plot_style.use()
    for game in sorted({r["game"] for r in summary["rows"]}):
        for dataset in sorted({r.get("dataset", LEGACY_DATASET) for r in summary["rows"] if r["game"] == game}):
            label = data_label(results, game, dataset, quick)
            vs_frequencies(summary["rows"], game, figures, dataset, label, quick)
            pmfs(results, game, figures, dataset=dataset, label=label)
            per_epoch(summary, game, figures, dataset, label)
        data_returns(results, game, figures, quick)
    four_games(summary["rows"], figures, quick)
    for curve in sorted(Path(cfg.snapshots).glob("*/curve.json")):
        game = curve.parent.name
        pqn_curve(curve, figures, GAMES[game]["target_return"] if game in GAMES else None, quick)
    print(f"figures in {figures}")


if __name__ == "__main__":
    main()
