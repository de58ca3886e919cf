"""Tests of the toy example: data, metrics, batched-vs-single training, and the CLI chain."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # the experiment's own modules (data, models, train) are plain files

import data as toy_data  # noqa: E402
from models import ModelSpec, build_single, single_loss  # noqa: E402
import train  # noqa: E402


# ---- data --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", toy_data.DATASETS)
def test_true_pmfs_sum_to_one_and_match_samples(name):
    triples = toy_data.generate(name, 20000, 0.01, seed=7)
    true = toy_data.true_pmfs(name, triples[:, :2], 50, 0.01)
    np.testing.assert_allclose(true.sum(axis=1), 1, atol=1e-12)
    hist = np.bincount(toy_data.quantize(triples[:, 2], 50), minlength=50) / len(triples)
    tv = 0.5 * np.abs(hist - true.mean(axis=0)).sum()
    assert tv < 0.04, f"{name}: histogram of z differs from the mean true PMF (TV {tv:.3f})"
    shifted = np.roll(true.mean(axis=0), 3)  # the check can fail: a shifted PMF is far away
    assert 0.5 * np.abs(hist - shifted).sum() > 2 * tv


def test_generators_are_deterministic_and_bounded():
    for name in toy_data.DATASETS:
        a, b = toy_data.generate(name, 500, 0.01, 3), toy_data.generate(name, 500, 0.01, 3)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, toy_data.generate(name, 500, 0.01, 4))
        assert np.abs(a[:, 0]).max() <= 0.8
    with pytest.raises(ValueError, match="unknown dataset"):
        toy_data.generate("cauchy", 10, 0.01, 0)


def test_split_matches_sklearn():
    sklearn = pytest.importorskip("sklearn.model_selection")
    x = np.arange(5000)
    train_ref, test_ref = sklearn.train_test_split(x, test_size=0.2, random_state=42)
    train_idx, test_idx = toy_data.split_indices(5000, 0.2, 42)
    np.testing.assert_array_equal(train_idx, train_ref)
    np.testing.assert_array_equal(test_idx, test_ref)


def test_quantize_and_inputs():
    assert list(toy_data.quantize(np.array([-1.0, -0.99, 0.0, 0.999, 1.0, 5.0]), 50)) == [0, 0, 25, 49, 49, 49]
    d = toy_data.make_data("gmm2", 1, n_samples=500)
    assert d.x_train_bins.shape == (400, 2) and d.x_test_bins.shape == (100, 2)
    assert d.x_train_bins.min() >= 0 and d.x_train_bins.max() <= 49  # bin indices as floats, as the reference
    assert d.true_test_pmfs.shape == (100, 50)


# ---- metrics ------------------------------------------------------------------------------------------

def test_kl_hand_computed():
    true = torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64)
    pred = torch.tensor([[0.25, 0.75, 0.0]], dtype=torch.float64)
    expected = 0.5 * math.log(0.5 / (0.25 + 1e-10)) + 0.5 * math.log(0.5 / (0.75 + 1e-10))
    assert train.kl_divergence(true, pred).item() == pytest.approx(expected, rel=1e-9)
    assert train.kl_divergence(true, true).item() == pytest.approx(0, abs=1e-8)


def test_classification_metrics_hand_computed():
    centers = torch.tensor([-0.75, -0.25, 0.25, 0.75], dtype=torch.float64)
    pred = torch.tensor([[0.1, 0.6, 0.3, 0.0],    # argmax 1; expected bin 1.2 -> 1
                         [0.0, 0.0, 0.5, 0.5]],   # argmax 2 (first max); expected 2.5 -> round half to even 2
                        dtype=torch.float64)
    labels = torch.tensor([1, 3])
    m = train.classification_metrics(pred, labels, pred, centers)
    assert m["accuracy"].item() == 0.5
    assert m["mse_argmax"].item() == pytest.approx((0 + 0.5 ** 2) / 2)
    assert m["mse"].item() == pytest.approx((0 + 0.5 ** 2) / 2)
    assert m["kl"].item() == pytest.approx(0, abs=1e-8)
    assert m["smoothness"].item() > 0


# ---- batched training == training each model alone -----------------------------------------------------

def train_alone(spec, cfg, draw, mle):
    """The plain loop a user would write for one model (reference semantics)."""
    model = build_single(spec, cfg.num_bins).double()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(spec.seed)
    x = torch.tensor(draw.x_train if mle else draw.x_train_bins, dtype=torch.float64)
    label, z = torch.tensor(draw.y_train), torch.tensor(draw.z_train, dtype=torch.float64)
    centers = torch.tensor(toy_data.bin_centers(cfg.num_bins))
    for epoch in range(cfg.epochs):
        if mle:
            opt.param_groups[0]["lr"] = train.cosine_lr(cfg, epoch)
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), cfg.batch_size):
            i = perm[start:start + cfg.batch_size]
            opt.zero_grad()
            single_loss(spec, model, x[i], label[i], z[i], centers).backward()
            if mle:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.mle_clip)
            opt.step()
    with torch.no_grad():
        x_test = torch.tensor(draw.x_test if mle else draw.x_test_bins, dtype=torch.float64)
        if spec.head == "fourier-mle":
            dens = model(x_test).pdf_on_grid(centers)
            return dens / dens.sum(-1, keepdim=True)
        if spec.head == "gmm-mle":
            from models import gmm_pdf
            means, stds = model(x_test)
            dens = gmm_pdf(means, stds.expand_as(means), centers.expand(len(x_test), -1))
            return dens / dens.sum(-1, keepdim=True)
        return torch.softmax(model(x_test), -1)


def test_single_model_trainer_equals_the_stacked_sweep(tmp_path):
    """train_single.py, the plain loop the README's fork section points to, is the sweep's model."""
    import train_single
    cfg = train.Config(epochs=2, n_samples=250, eval_every=2, device="cpu", dtype="float64")
    specs = [ModelSpec("gmm2", 1, "fourier", 12, 1e-3), ModelSpec("gmm2", 1, "gmm", num_gaussians=2),
             ModelSpec("gmm2", 1, "linear")]
    ens, batch, *_, pmfs = train.train_family(cfg, specs, torch.device("cpu"), False)
    draw = batch["draws"][0]
    for spec in specs:
        single = train_single.Config(dataset="gmm2", head=spec.head, num_frequencies=12, gamma=1e-3, seed=1,
                                     epochs=2, n_samples=250, dtype="float64")
        torch.testing.assert_close(train_single.train(single, draw, torch.device("cpu")), pmfs[ens.specs.index(spec)],
                                   atol=1e-9, rtol=1e-7, msg=str(spec))
    out = subprocess.run([sys.executable, "train_single.py", "--epochs", "0"], cwd=HERE, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip() == "error: --epochs must be >= 1 (got 0)"


@pytest.mark.parametrize("mle", [False, True])
def test_batched_training_equals_training_alone(mle):
    # float64: in float32, Adam turns the rounding noise of near-zero gradients into +-lr steps, and
    # the sharp GMM head (std 0.04) amplifies that, so only the float64 comparison is tight.
    cfg = train.Config(epochs=2, n_samples=250, eval_every=1, device="cpu", dtype="float64")
    if mle:
        specs = [ModelSpec("gmm2", 1, "fourier-mle", 4, 1e-3), ModelSpec("gmm2", 1, "fourier-mle", 9, 0.0),
                 ModelSpec("gaussian", 2, "gmm-mle", num_gaussians=1), ModelSpec("gmm2", 1, "gmm-mle", num_gaussians=2)]
    else:
        specs = [ModelSpec("gmm2", 1, "linear"), ModelSpec("gaussian", 2, "gmm", num_gaussians=1),
                 ModelSpec("gmm2", 1, "gmm", num_gaussians=2), ModelSpec("gmm2", 1, "fourier", 4, 1e-3),
                 ModelSpec("gaussian", 2, "fourier", 10, 0.0)]
    ens, batch, model_group, history, extras, pmfs = train.train_family(cfg, specs, torch.device("cpu"), mle)
    assert len(history) == 2
    for spec in specs:
        i = ens.specs.index(spec)
        draw = batch["draws"][batch["groups"].index((spec.dataset, spec.seed))]
        alone = train_alone(spec, cfg, draw, mle)
        torch.testing.assert_close(pmfs[i], alone, atol=1e-9, rtol=1e-7, msg=f"{spec}")


def test_regression_batched_equals_alone():
    cfg = train.Config(epochs=2, n_samples=250, eval_every=2, device="cpu", dtype="float64")
    spec = ModelSpec("beta", 3, "regression")
    ens, batch, *_ = train.train_family(cfg, [spec, ModelSpec("beta", 3, "linear")], torch.device("cpu"), False)
    model = build_single(spec).double()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen, draw = torch.Generator().manual_seed(3), batch["draws"][0]
    centers = torch.tensor(toy_data.bin_centers(50))
    x, label = torch.tensor(draw.x_train_bins, dtype=torch.float64), torch.tensor(draw.y_train)
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), cfg.batch_size):
            i = perm[start:start + cfg.batch_size]
            opt.zero_grad()
            single_loss(spec, model, x[i], label[i], None, centers).backward()
            opt.step()
    k = ens.specs.index(spec)
    torch.testing.assert_close(ens.heads["regression"].weight[0], model[-1].weight.detach(), atol=1e-10, rtol=1e-8)
    assert k == 1  # heads are ordered linear, ..., regression


# ---- the command line ----------------------------------------------------------------------------------

def test_cli_chain_smoke(tmp_path):
    runs, results, figures = tmp_path / "runs", tmp_path / "results", tmp_path / "figures"
    py = sys.executable
    subprocess.run([py, "train.py", "--quick", "--epochs", "2", "--datasets", "gmm2", "--frequencies", "4", "12",
                    "--out-dir", str(runs)], cwd=HERE, check=True, capture_output=True)
    # resuming: everything is done, nothing is retrained
    again = subprocess.run([py, "train.py", "--quick", "--epochs", "2", "--datasets", "gmm2", "--frequencies", "4", "12",
                            "--out-dir", str(runs)], cwd=HERE, check=True, capture_output=True, text=True)
    assert "0 already done" not in again.stdout and "trained" not in again.stdout
    run = runs / "gmm2" / "fourier-f12-g1e-06" / "seed1"
    assert {p.name for p in run.iterdir()} >= {"config.json", "env.json", "metrics.json", "pmfs.npy"}
    assert json.loads((run / "config.json").read_text())["gamma"] == 1e-6
    subprocess.run([py, "aggregate.py", "--runs", str(runs), "--results", str(results)], cwd=HERE, check=True,
                   capture_output=True)
    summary = json.loads((results / "summary.json").read_text())
    assert {"gpu", "torch", "commit", "wall_seconds"} <= set(summary["provenance"])
    row = next(r for r in summary["rows"] if r["config"] == "fourier-f12-g0")
    assert row["n_seeds"] == 1 and set(row) >= {"kl", "mse", "mse_argmax", "smoothness"}
    subprocess.run([py, "plot.py", "--results", str(results), "--figures", str(figures)], cwd=HERE, check=True,
                   capture_output=True)
    assert (figures / "varying_frequencies.png").stat().st_size > 10_000
    assert (figures / "training.gif").exists()


def test_committed_results_schema():
    summary = json.loads((HERE / "results" / "summary.json").read_text())
    assert {"gpu", "torch", "commit", "wall_seconds"} <= set(summary["provenance"])
    keys = {(r["dataset"], r["head"], r["num_frequencies"], r["gamma"]) for r in summary["rows"]}
    assert len(keys) == len(summary["rows"])  # one row per (dataset, head, num_frequencies, gamma)
    for r in summary["rows"]:
        assert r["n_seeds"] >= 1
        for metric in ("kl", "mse", "mse_argmax", "smoothness"):
            if r["head"] != "regression" or metric in ("mse", "mse_argmax"):
                assert set(r[metric]) >= {"mean", "std"}, (r["config"], metric)
        if r["head"].endswith("-mle"):
            assert "perplexity" in r
