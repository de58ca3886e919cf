"""aggregate.py and plot.py on the committed results (CPU, seconds): --check, the old run files still read,
quick outputs kept apart and labelled."""

import json
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

import aggregate  # noqa: E402
import plot  # noqa: E402
import train  # noqa: E402


def test_check_passes_on_the_committed_results(capsys):
    readme = (HERE / "README.md").read_text()
    assert aggregate.check_committed() == 0, capsys.readouterr().err
    assert (HERE / "README.md").read_text() == readme


def test_check_names_a_stale_block_and_writes_nothing(tmp_path, monkeypatch, capsys):
    shutil.copy(HERE / "README.md", tmp_path / "README.md")
    shutil.copytree(HERE / "results", tmp_path / "results")
    monkeypatch.setattr(aggregate, "HERE", tmp_path)
    monkeypatch.setattr(aggregate, "README", tmp_path / "README.md")
    monkeypatch.setattr(aggregate, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(aggregate, "COMMITTED", (tmp_path / "results", tmp_path / "results" / "pilot"))
    assert aggregate.check_committed() == 0
    text = (tmp_path / "README.md").read_text().replace("| Linear (mini) | 3.950 |", "| Linear (mini) | 3.951 |")
    (tmp_path / "README.md").write_text(text)
    assert aggregate.check_committed() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "block tsf-table" in err
    assert (tmp_path / "README.md").read_text() == text  # nothing written


def test_old_pilot_run_files_give_the_committed_pilot(tmp_path):
    """results/pilot/ was made by `aggregate.py --runs runs/slice --results results/pilot` from run files with
    the old env.json (GIT_COMMIT era): the same summary and table come back from the committed copies."""
    pilot = HERE / "results" / "pilot"
    aggregate.main(["--runs", str(pilot / "run_files"), "--results", str(tmp_path)])
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads((pilot / "summary.json").read_text())
    assert (tmp_path / "table.md").read_text() == (pilot / "table.md").read_text()


def test_quick_runs_stay_out_of_results_and_are_labelled(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(HERE / "results" / "pilot" / "run_files", runs)
    for cfg in runs.glob("*/config.json"):
        cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "quick": True}))
    with pytest.raises(SystemExit) as e:
        aggregate.main(["--runs", str(runs)])  # into the committed results/
    assert "quick runs never go into the committed results" in str(e.value.code)
    aggregate.main(["--runs", str(runs), "--results", str(tmp_path / "out")])
    text = (tmp_path / "out" / "table.md").read_text()
    assert "paper" not in text and "±" not in text and "k windows" not in text and text.startswith("**Quick run**")
    titles = []
    monkeypatch.setattr(plot.plot_style, "save", lambda fig, path: titles.append(fig._suptitle.get_text()))
    with pytest.raises(SystemExit) as e:
        plot.main(["--results", str(tmp_path / "out")])  # into the committed figures/
    assert "never go into the committed figures" in str(e.value.code)
    plot.main(["--results", str(tmp_path / "out"), "--figures", str(tmp_path / "fig")])
    assert titles and all(t.startswith("quick run") for t in titles)


def test_quick_presets_write_only_under_runs_quick():
    quick = (HERE / "runs" / "quick").resolve()
    paths = [train.QUICK["out_dir"], train.QUICK["kernel_synth_dir"], *aggregate.QUICK.values(), *plot.QUICK.values()]
    assert all(Path(p).resolve().is_relative_to(quick) for p in paths)


def test_paired_comparison_per_dataset():
    """Each model against the linear run of the same size, steps, batch and seed: ratio = exp(mean over datasets
    of the seed-averaged log ratio), wins, a Wilcoxon test over datasets; unmatched runs are left out."""
    np = pytest.importorskip("numpy")
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    names = [f"d{i}" for i in range(8)]

    def row(head, label, seed, mase, steps=100):
        return {"head": head, "label": label, "size": "smoke", "steps": steps, "batch_size": 4, "seed": seed,
                "mase": 1.0, "wql": 1.0, "smoothness": None,
                "per_dataset": {d: {"mase": m, "wql": m / 2, "relative_mase": m, "relative_wql": m / 2}
                                for d, m in zip(names, mase)}}
    lin = {s: rng.uniform(1, 2, 8) for s in (0, 1)}
    four = {s: lin[s] * rng.uniform(0.7, 1.1, 8) for s in (0, 1)}
    rows = [row("linear", "Linear", s, lin[s]) for s in (0, 1)] + [row("fourier", "Fourier-8", s, four[s]) for s in (0, 1)]
    rows.append(row("fourier", "Fourier-8", 0, four[0], steps=200))  # no linear run at 200 steps: not paired
    (e,) = aggregate.paired_vs_linear(rows)
    logr = np.mean([np.log(four[s] / lin[s]) for s in (0, 1)], axis=0)
    assert e["model"] == "Fourier-8" and e["seeds"] == [0, 1] and e["datasets"] == 8 and e["steps"] == 100
    assert e["mase"]["ratio"] == pytest.approx(np.exp(logr.mean()))
    assert e["mase"]["wins"] == int((logr < 0).sum()) and e["mase"]["wins"] + e["mase"]["losses"] == 8
    assert e["mase"]["wilcoxon_p"] == pytest.approx(stats.wilcoxon(logr).pvalue)
    lo, hi = e["mase"]["ratio_bootstrap_95"]
    assert lo <= e["mase"]["ratio"] <= hi and e["wql"]["ratio"] == pytest.approx(e["mase"]["ratio"])
    assert "Against the linear head" in aggregate.table(rows, {d: {"mase": 1, "wql": 1} for d in names})
    assert "Against the linear head" not in aggregate.table(rows, {d: {"mase": 1, "wql": 1} for d in names}, quick=True)
    assert aggregate.paired_table([r for r in rows if r["head"] != "linear"]) == ""


def test_learning_curves_only_from_runs_that_logged_them(tmp_path):
    """The pilot's rows hold held-out CE and intermediate evaluations: a figure; the 900-step runs' do not."""
    pilot = json.loads((HERE / "results" / "pilot" / "summary.json").read_text())
    assert plot.learning_curves_figure(pilot["rows"], tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 0
    main = json.loads((HERE / "results" / "summary.json").read_text())
    assert not plot.learning_curves_figure(main["rows"], tmp_path / "b.png")
    assert not (tmp_path / "b.png").exists()
