"""Smoke test of train.py --quick, and the claim that row n of the stacked head IS the N = n head."""

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fourier_head import Fourier_Head

SCRIPT = Path(__file__).resolve().parent / "train.py"  # for the `script`, `run_quick` fixtures (conftest)


def test_rows_are_independent_heads_with_n_frequencies(script):
    torch.manual_seed(0)
    rows, m, gamma = 5, 32, 1e-3
    model = script.HeadsForAllN(rows, m, gamma)
    weight = model.head.fc_extract_autocorrelation_params.weight
    histogram = torch.softmax(torch.randn(rows, m), dim=-1)
    # one Adam step: masked frequencies must stay exactly zero
    optimizer = torch.optim.Adam([weight], lr=1e-2)
    loss = F.cross_entropy(model(), histogram, reduction="sum") + model.head.loss_regularization
    loss.backward()
    optimizer.step()
    assert torch.all(weight[model.mask == 0] == 0)

    total = 0.0
    log_pmf = model()
    for n in range(1, rows + 1):
        single = Fourier_Head(1, m, n, regularization_gamma=gamma)
        fc = single.fc_extract_autocorrelation_params
        with torch.no_grad():
            fc.weight.zero_()  # input is 0: the bias holds [Re a_0..a_n, Im a_0..a_n]
            fc.bias.copy_(torch.cat([weight[:n + 1, n - 1], weight[rows + 1:rows + 2 + n, n - 1]]))
        out = single(torch.zeros(1, 1))
        torch.testing.assert_close(out[0], log_pmf[n - 1], rtol=1e-5, atol=1e-6)
        total = total + F.cross_entropy(out, histogram[n - 1:n]) + single.loss_regularization
    stacked = F.cross_entropy(log_pmf, histogram, reduction="sum") + model.head.loss_regularization
    torch.testing.assert_close(stacked, total, rtol=1e-5, atol=1e-7)


def test_bin_probabilities_are_a_distribution(script):
    for target in script.TARGETS:
        q = script.bin_probabilities(target, 128)
        assert q.shape == (128,) and np.all(q >= 0) and abs(q.sum() - 1) < 1e-12
    square = script.bin_probabilities("square-wave", 128)
    assert np.allclose(square[32:96], 1 / 64) and np.allclose(square[:32], 0)


def test_quick_cli(run_quick, tmp_path):
    run_quick("--runs-dir", str(tmp_path / "runs"), "--gif", str(tmp_path / "demo.gif"))
    out = tmp_path / "results"
    results = json.loads((out / "head_demo.json").read_text())
    assert set(results) == {"square-wave", "mog-10", "mog-33"}
    for r in results.values():
        assert len(r["kl"]) == 4 and all(k >= 0 for k in r["kl"])
        assert all(abs(sum(p) - 1) < 1e-5 for p in r["pmf"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["wall_seconds"] > 0 and summary["config"]["quick"]
    for name in ("kl_smoothness_vs_n.png", "density_vs_pmf.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000
    assert (tmp_path / "demo.gif").stat().st_size > 1_000
