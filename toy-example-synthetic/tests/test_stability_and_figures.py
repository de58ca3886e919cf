"""Tests of the GMM-head stability summary, the per-PMF smoothness spread, the paper's PMF grid, the
mixture ground truths and the paired design (every head of one seed: same backbone init, same batches)."""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # the experiment's own modules are plain files

import aggregate  # noqa: E402
import data as toy_data  # noqa: E402
import gmm_stability  # noqa: E402
import plot  # noqa: E402
import train  # noqa: E402
from fourier_head import smoothness  # noqa: E402
from models import Ensemble, ModelSpec  # noqa: E402
from scaffold import parse_config  # noqa: E402


# ---- the stability summary ------------------------------------------------------------------------------

def test_stability_summary_on_a_synthetic_list():
    kl = [0.02, 0.03, 0.50, 0.04, 1.00]
    out = gmm_stability.stability_summary(kl, kl_uniform=[1.0] * 5, kl_fit=[0.0] * 5)
    assert out["stuck"] == [False, False, True, False, True]  # gap fraction = kl here; stuck above 1/3
    assert out["n_seeds"] == 5 and out["n_stuck"] == 2 and out["stuck_rate"] == pytest.approx(0.4)
    assert out["kl_median"] == pytest.approx(0.04)
    assert out["kl_mean"] == pytest.approx(statistics.fmean(kl))
    assert out["kl_std"] == pytest.approx(statistics.stdev(kl))  # sample std, as the sweep's table
    assert out["kl_mean_not_stuck"] == pytest.approx(0.03)
    assert out["kl_std_not_stuck"] == pytest.approx(statistics.stdev([0.02, 0.03, 0.04]))


def test_stability_summary_measures_the_gap_from_the_family_fit():
    # beta-like: the family's best fit is 0.15, uniform 1.45; 0.40 closes most of the gap, 0.60 does not
    out = gmm_stability.stability_summary([0.40, 0.60], kl_uniform=[1.45, 1.45], kl_fit=[0.15, 0.15])
    assert out["gap_fraction"] == pytest.approx([0.25 / 1.30, 0.45 / 1.30])
    assert out["stuck"] == [False, True]
    none_stuck = gmm_stability.stability_summary([0.1, 0.2], [1.0, 1.0], [0.0, 0.0])
    assert none_stuck["stuck_rate"] == 0 and none_stuck["kl_mean_not_stuck"] == pytest.approx(0.15)
    all_stuck = gmm_stability.stability_summary([0.9], [1.0], [0.0])
    assert all_stuck["stuck_rate"] == 1 and all_stuck["kl_mean_not_stuck"] is None and all_stuck["kl_std"] is None
    with_dead = gmm_stability.stability_summary([0.1, 0.2], [1.0, 1.0], [0.0, 0.0], dead=[True, False])
    assert with_dead["n_dead_component"] == 1 and with_dead["dead_component_rate"] == 0.5
    assert with_dead["n_stuck"] == 0  # counted beside the stuck rule, not part of it


def test_dead_component_rule():
    dead = gmm_stability.has_dead_component
    assert not dead({"std": [0.1, 0.12], "edge_fraction": [0.0, 0.3]})
    assert dead({"std": [0.18, 48.1], "edge_fraction": [0.001, 1.0]})  # a flat floor at the edge
    assert dead({"std": [0.1, 0.1], "edge_fraction": [0.0, 0.995]})
    assert dead({"std": [0.6], "edge_fraction": [0.0]})


def _mixture_pmfs(means, std, centers):
    dens = np.exp(-0.5 * ((centers - np.asarray(means)[..., None]) / std) ** 2).mean(-2) + 1e-5
    return dens / dens.sum(-1, keepdims=True)


def test_family_fit_reaches_an_in_family_truth_and_not_a_bimodal_one_with_one_component():
    rng = np.random.default_rng(0)
    centers = toy_data.bin_centers(50)
    means = rng.uniform(-0.7, 0.7, size=(2, 30, 2))  # 2 groups x 30 rows x K=2 means, std 0.1: in the family
    true = torch.tensor(_mixture_pmfs(means, 0.1, centers))
    fit = gmm_stability.family_fit_kl(true, 2, steps=200)
    assert fit.shape == (2,) and (fit < 2e-3).all()
    far = torch.tensor(_mixture_pmfs(np.stack([np.full((2, 30), -0.5), np.full((2, 30), 0.5)], -1), 0.1, centers))
    assert (gmm_stability.family_fit_kl(far, 1, steps=200) > 0.3).all()  # one Gaussian cannot fit two far modes
    assert (gmm_stability.family_fit_kl(far, 2, steps=200) < 2e-3).all()
    uniform = torch.full((1, 4, 50), 1 / 50, dtype=torch.float64)
    assert gmm_stability.uniform_kl(uniform).item() == pytest.approx(0, abs=1e-8)  # log(p + 1e-10)
    assert gmm_stability.uniform_kl(far)[0].item() > 0.5


def test_stability_table_renders_the_rows():
    rows = []
    for dataset, head in (("gmm2", "gmm"), ("gaussian", "gmm-mle")):
        dead = [False, True, False] if head == "gmm" else None
        s = gmm_stability.stability_summary([0.02, 0.5, 0.04], [1.0] * 3, [0.0] * 3, dead=dead)
        rows.append({"dataset": dataset, "head": head, "num_gaussians": 2, "epochs": 500, "seeds": [100, 101, 102],
                     **s})
    provenance = {"gpu": "GPU-1", "torch": "2.x", "commit": "abc", "wall_seconds": 9}
    text = aggregate.stability_table({"rows": rows, "stuck_definition": "Stuck: X.",
                                      "dead_component_definition": "Dead: Y.", "provenance": provenance})
    lines = text.splitlines()
    assert lines[2] == "| gaussian | GMM-MLE (K=2) | 3 | 1/3 (33%) | 0.040 | 0.187 ± 0.272 | 0.030 ± 0.014 | – |"
    assert lines[3].endswith("| 0.030 ± 0.014 | 1/3 |")
    assert "Seeds 100–102, 500 epochs, on GPU-1" in text and text.rstrip().endswith("Stuck: X. Dead: Y.")


def test_stability_cli_quick(tmp_path):
    out = subprocess.run([sys.executable, "gmm_stability.py", "--quick", "--epochs", "2", "--seeds", "1", "2",
                          "--datasets", "gaussian", "gmm2", "--device", "cpu", "--fit-steps", "20",
                          "--out-dir", str(tmp_path / "runs"), "--results", str(tmp_path / "results")],
                         cwd=HERE, check=True, capture_output=True, text=True)
    result = json.loads((tmp_path / "results" / "gmm_head_stability.json").read_text())
    assert {"device", "torch", "commit", "wall_seconds", "command"} <= set(result["provenance"])
    assert [(r["dataset"], r["head"]) for r in result["rows"]] == [("gaussian", "gmm"), ("gaussian", "gmm-mle"),
                                                                  ("gmm2", "gmm"), ("gmm2", "gmm-mle")]
    for r in result["rows"]:
        assert r["seeds"] == [1, 2] and len(r["kl_values"]) == 2
        assert set(r) >= {"stuck_rate", "kl_median", "kl_mean", "kl_std", "kl_uniform", "kl_fit", "dead_component_rate"}
        assert [len(c["std"]) for c in r["components"]] == [r["num_gaussians"]] * 2
    assert "| gmm2 | GMM (K=2) | 2 |" in out.stdout
    refused = subprocess.run([sys.executable, "gmm_stability.py", "--quick", "--update-readme"], cwd=HERE,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "smoke numbers" in refused.stderr


# ---- smoothness over all test PMFs (the figure bands) -----------------------------------------------------

def test_pooled_smoothness_is_over_all_pmfs_not_seed_means():
    rng = np.random.default_rng(1)
    seeds = [rng.dirichlet(np.full(50, a), size=40) for a in (0.5, 1.0, 5.0)]
    pooled = aggregate.pooled_smoothness(seeds)
    every = smoothness(torch.from_numpy(np.concatenate(seeds))).numpy()
    assert pooled["n_pmfs"] == 120
    assert pooled["mean"] == pytest.approx(every.mean())
    assert pooled["std"] == pytest.approx(every.std(ddof=1))
    per_seed = [smoothness(torch.from_numpy(s)).numpy().mean() for s in seeds]
    assert pooled["mean"] == pytest.approx(np.mean(per_seed))  # equal sizes: the same mean ...
    assert abs(pooled["std"] - statistics.stdev(per_seed)) > 1e-3  # ... but another spread


def test_plot_bands_use_the_pooled_smoothness_when_present():
    row = {"kl": {"mean": 0.1, "std": 0.02}, "smoothness": {"mean": 0.05, "std": 0.001},
           "smoothness_all_pmfs": {"mean": 0.0501, "std": 0.012, "n_pmfs": 4000}}
    assert plot.stat(row, "smoothness") == (0.0501, 0.012)
    assert plot.stat(row, "kl") == (0.1, 0.02)
    del row["smoothness_all_pmfs"]
    assert plot.stat(row, "smoothness") == (0.05, 0.001)


# ---- the paper's PMF grid ---------------------------------------------------------------------------------

def _fake_run(runs, dataset, config, seed, pmfs, **fields):
    run = runs / dataset / config / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"seed": seed, "snapshot_test_indices": [488, 331, 180], **fields}))
    (run / "metrics.json").write_text(json.dumps({"final": {"kl": 0.1}, "history": [{"epoch": 10}, {"epoch": 20}]}))
    np.save(run / "pmfs.npy", pmfs.astype(np.float16))
    np.save(run / "snapshots.npy", np.stack([pmfs[:3], pmfs[:3]]).astype(np.float16))  # (evals, points, m)


def test_paper_grid_takes_the_camera_ready_n_and_seed(tmp_path):
    rng = np.random.default_rng(2)
    fake = lambda: rng.dirichlet(np.ones(50), size=500)
    for seed in (1, 42):
        np.save(tmp_path / f"true_{seed}.npy", fake())
    for dataset, n, seed in (("gaussian", 18, 1), ("gmm2", 10, 1), ("beta", 16, 42)):
        k = 1 if dataset == "gaussian" else 2
        (tmp_path / dataset).mkdir()
        for s in {1, 42}:
            np.save(tmp_path / dataset / f"true_pmfs_seed{s}.npy", fake())
            for config in ("linear", f"gmm-k{k}", f"fourier-f{n}-g0", "fourier-f12-g0"):
                _fake_run(tmp_path, dataset, config, s, fake())
    examples = aggregate.examples(aggregate.load_runs(tmp_path), tmp_path)
    paper = {e["dataset"]: e for e in examples["pmf_grid_paper"]}
    assert list(paper) == ["gaussian", "gmm2", "beta"]
    for dataset, n, seed in (("gaussian", 18, 1), ("gmm2", 10, 1), ("beta", 16, 42)):
        e = paper[dataset]
        assert e["heads"]["fourier"]["config"] == f"fourier-f{n}-g0"
        assert {h["seed"] for h in e["heads"].values()} == {seed}
        index = aggregate.FIGURE_POINTS[dataset] % 500
        pmfs = np.load(tmp_path / dataset / f"fourier-f{n}-g0" / f"seed{seed}" / "pmfs.npy").astype(np.float64)
        np.testing.assert_allclose(e["heads"]["fourier"]["pmf"], pmfs[index])
        np.testing.assert_allclose(e["true_pmf"], np.load(tmp_path / dataset / f"true_pmfs_seed{seed}.npy")[index])
    assert all(e["heads"]["fourier"]["config"] == "fourier-f12-g0" for e in examples["pmf_grid"])


# ---- the mixture ground truths ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gmm", "gmm2"])
def test_per_component_truth_normalises_each_gaussian_over_the_bins(name):
    features = toy_data.generate(name, 400, 0.01, seed=5)[:, :2]
    centers = toy_data.bin_centers(50)
    a, b = toy_data.mixture_means(name, features)
    part = lambda m: np.exp(-0.5 * ((centers - m) / 0.1) ** 2)
    expected = 0.5 * part(a) / part(a).sum(1, keepdims=True) + 0.5 * part(b) / part(b).sum(1, keepdims=True)
    ours = toy_data.true_pmfs(name, features, 50, 0.01, mixture="per-component")
    np.testing.assert_allclose(ours, expected, atol=1e-12)
    np.testing.assert_allclose(ours.sum(1), 1, atol=1e-12)
    joint = toy_data.true_pmfs(name, features, 50, 0.01)
    both_inside = (np.abs(np.hstack([a, b])) < 0.6).all(1)  # both components well inside [-1, 1]: the same
    np.testing.assert_allclose(ours[both_inside], joint[both_inside], atol=1e-5)  # mass past +-1: < 4e-5
    if name == "gmm":  # a component past the edge keeps weight 1/2 on the bins it still covers
        past = (b[:, 0] > 1.05)
        assert past.any()
        assert (ours[past, -1] > joint[past, -1] + 0.05).all()


def test_mixture_truth_leaves_the_other_datasets_alone():
    for name in ("gaussian", "beta"):
        f = toy_data.generate(name, 200, 0.01, seed=2)[:, :2]
        np.testing.assert_array_equal(toy_data.true_pmfs(name, f, 50, 0.01, "per-component"),
                                      toy_data.true_pmfs(name, f, 50, 0.01))
    with pytest.raises(ValueError, match="unknown mixture truth"):
        toy_data.true_pmfs("gmm", f, 50, 0.01, "average")
    cfg = parse_config(train.Config, ["--mixture-truth", "per-component", "--datasets", "gmm"])
    assert cfg.mixture_truth == "per-component"
    d = toy_data.make_data("gmm", 3, n_samples=300, mixture="per-component")
    test = toy_data.split_indices(300)[1]
    np.testing.assert_allclose(d.true_test_pmfs, toy_data.true_pmfs(
        "gmm", toy_data.generate("gmm", 300, 0.01, 3)[test, :2], 50, 0.01, "per-component"))


# ---- the paired design ------------------------------------------------------------------------------------

def test_every_head_of_one_seed_starts_from_the_same_backbone():
    specs = [ModelSpec("gmm2", 3, "linear"), ModelSpec("gmm2", 3, "gmm", num_gaussians=2),
             ModelSpec("gmm2", 3, "fourier", 4, 0.0), ModelSpec("gmm2", 3, "fourier", 18, 1e-6),
             ModelSpec("gmm2", 3, "regression"), ModelSpec("gmm2", 3, "gmm-mle", num_gaussians=2),
             ModelSpec("gmm2", 4, "linear")]
    ens = Ensemble(specs)
    same = [i for i, s in enumerate(ens.specs) if s.seed == 3]
    other = next(i for i, s in enumerate(ens.specs) if s.seed == 4)
    for layer in (ens.layer1, ens.layer2):
        for p in (layer.weight, layer.bias):
            for i in same[1:]:
                torch.testing.assert_close(p[i], p[same[0]], rtol=0, atol=0)
            assert not torch.equal(p[other], p[same[0]])


def test_every_head_of_one_seed_sees_the_same_batches(monkeypatch):
    drawn = []
    real = torch.randperm

    def recording(*args, **kwargs):
        out = real(*args, **kwargs)
        drawn.append(out.clone())
        return out

    monkeypatch.setattr(torch, "randperm", recording)
    cfg = train.Config(epochs=2, n_samples=200, eval_every=2, device="cpu")
    orders = []
    for specs in ([ModelSpec("gmm2", 7, "linear")],
                  [ModelSpec("gmm2", 7, "fourier", 12, 0.0), ModelSpec("gmm2", 7, "gmm", num_gaussians=2)]):
        drawn.clear()
        train.train_family(cfg, specs, torch.device("cpu"), mle=False)
        orders.append([d for d in drawn])
    assert len(orders[0]) == 2 and all(torch.equal(a, b) for a, b in zip(*orders))
