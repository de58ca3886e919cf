"""The results schema (issue 17): summary_<setting>.json rows per (head, N) with {per_seed, mean, std},
validation-based selection, paired tests, and regeneration from a committed runs.csv."""

import csv
import json
import re
import shutil

import numpy as np
import pytest

SCHEMA_METRICS = ("accuracy", "f1", "mse_bpm", "nll", "ece", "smoothness")


def check_schema(summary):
    assert isinstance(summary["setting"], str) and "provenance" in summary
    keys = [(r["head"], r["num_frequencies"]) for r in summary["rows"]]
    assert len(keys) == len(set(keys))
    for r in summary["rows"]:
        assert r["n_seeds"] == len(r["seeds"])
        for m in SCHEMA_METRICS:
            assert set(r[m]) == {"per_seed", "mean", "std"} and len(r[m]["per_seed"]) == r["n_seeds"]


def fake_run(root, setting, head, n, seed, epochs, f1_val, f1_test, with_val=True):
    tag = "linear" if head == "linear" else f"fourier-f{n}-g1e-06"
    d = root / setting / f"{tag}-ep{epochs}" / f"seed{seed}"
    d.mkdir(parents=True)
    final = {"accuracy": f1_test, "precision": f1_test, "recall": f1_test, "f1": f1_test, "mse_class": 1.0,
             "mse_bpm": 25.0, "nll": 1.0 + n, "ece": 0.1, "smoothness": 0.01 * (n + 1)}
    metrics = {"final": final, "train_seconds": 1.0, "num_classes": 33, "n_train": 10, "n_val": 2, "n_test": 5,
               "num_params": 1, "history": []}
    if with_val:
        metrics["val"] = {**final, "f1": f1_val}
    (d / "metrics.json").write_text(json.dumps(metrics))
    (d / "config.json").write_text(json.dumps({"head": head, "num_frequencies": n, "seed": seed, "epochs": epochs,
                                               "split": "standard", "bin_size": 5, "encoder": "crepe-tiny"}))
    (d / "env.json").write_text(json.dumps({"gpu": None, "torch": "x", "commit": "c",
                                            "crepe_weights": {"path": "tiny.pth", "sha256": "0"}}))


def test_selection_on_validation_and_paired_tests(audio, tmp_path):
    runs, results = tmp_path / "runs", tmp_path / "results"
    setting = "pretrained-crepe-tiny/standard-bin5"
    for seed in range(3):
        for epochs in (2, 5):
            fake_run(runs, setting, "linear", 0, seed, epochs, 0.5 + 0.1 * (epochs == 5), 0.5 + seed / 100)
            # N=1 best on validation at 2 epochs; N=2 best on TEST (must not be chosen)
            fake_run(runs, setting, "fourier", 1, seed, epochs, 0.8 - 0.1 * (epochs == 5), 0.6 + seed / 50)
            fake_run(runs, setting, "fourier", 2, seed, epochs, 0.7, 0.9)
    audio.aggregate.main(["--runs", str(runs), "--results", str(results)])
    summary = json.loads((results / "summary_pretrained-crepe-tiny_standard-bin5.json").read_text())
    check_schema(summary)
    assert summary["selection"]["validation"] and summary["selection"]["best_num_frequencies"] == 1
    rows = {(r["head"], r["num_frequencies"]): r for r in summary["rows"]}
    assert rows[("linear", 0)]["epochs"] == 5 and rows[("fourier", 1)]["epochs"] == 2
    assert rows[("fourier", 1)]["f1"]["per_seed"] == pytest.approx([0.6, 0.62, 0.64])
    pair = next(c for c in summary["paired_vs_linear"] if c["num_frequencies"] == 1)
    diffs = np.array([0.6, 0.62, 0.64]) - np.array([0.5, 0.51, 0.52])
    assert pair["n_pairs"] == 3 and pair["f1"]["fourier_minus_linear"] == pytest.approx(diffs.mean())
    from scipy.stats import ttest_rel
    assert pair["f1"]["paired_t_p"] == pytest.approx(ttest_rel([0.6, 0.62, 0.64], [0.5, 0.51, 0.52]).pvalue)
    lo, hi = pair["f1"]["bootstrap_95"]  # the exact percentile interval of the 3 differences' mean
    assert lo == pytest.approx(diffs.min()) and hi == pytest.approx(diffs.max()) and lo <= diffs.mean() <= hi
    assert summary["provenance"]["crepe_weights"] == [{"path": "tiny.pth", "sha256": "0"}]
    assert "pretrained" in summary["setting"] and "crepe" in summary["setting"]
    # runs.csv keeps the validation metrics; a second aggregation from the csv alone gives the same rows
    (results / "again").mkdir()
    (results / "again" / "runs.csv").write_text((results / "runs.csv").read_text())
    audio.aggregate.main(["--runs", str(tmp_path / "absent"), "--results", str(results / "again")])
    again = json.loads((results / "again" / "summary_pretrained-crepe-tiny_standard-bin5.json").read_text())
    flat = lambda s: [v for r in s["rows"] for v in r["f1"]["per_seed"]]  # noqa: E731
    assert flat(again) == pytest.approx(flat(summary), abs=1e-6)
    assert again["selection"]["best_num_frequencies"] == 1


def test_committed_runs_csv_regenerates_the_existing_settings(audio, folder, tmp_path):
    """Every committed setting rebuilt from results/runs.csv alone (run folders are not committed; with no
    summary in results/): NLL and ECE per seed, no validation selection for the from-scratch sweeps."""
    results = tmp_path / "results"
    results.mkdir()
    for name in ("runs.csv",):
        (results / name).write_text((folder / "results" / name).read_text())
    audio.aggregate.main(["--runs", str(tmp_path / "absent"), "--results", str(results)])
    with open(folder / "results" / "runs.csv") as f:
        settings = {r["setting"] for r in csv.DictReader(f)}
    assert {"standard-bin5", "odds_evens-bin5", "short-15ep/standard-bin5"} <= settings
    for setting in settings:
        summary = json.loads((results / f"summary_{setting.replace('/', '_')}.json").read_text())
        check_schema(summary)
        if setting.startswith(("standard", "odds", "short")):
            assert summary["selection"]["validation"] is False
        assert all(r["ece"]["mean"] is not None and r["nll"]["mean"] is not None for r in summary["rows"])
        committed = json.loads((folder / "results" / f"summary_{setting.replace('/', '_')}.json").read_text())
        flat = lambda s: [v for r in s["rows"] for v in r["f1"]["per_seed"]]  # noqa: E731
        assert flat(summary) == pytest.approx(flat(committed), abs=1e-6)



def test_a_setting_without_run_folders_keeps_its_summary(audio, folder, tmp_path):
    """Aggregating new runs of one setting leaves the others' summaries as they are (runs.csv's 6 digits
    do not replace the full-precision numbers) and keeps their rows in runs.csv."""
    results = tmp_path / "results"
    results.mkdir()
    name = "summary_pretrained-crepe-tiny_standard-bin5.json"
    for f in ("runs.csv", name):
        (results / f).write_text((folder / "results" / f).read_text())
    runs = tmp_path / "runs"
    for seed in range(2):
        fake_run(runs, "odds_evens-bin5", "linear", 0, seed, 60, None, 0.5 + seed / 100, with_val=False)
        fake_run(runs, "odds_evens-bin5", "fourier", 2, seed, 60, None, 0.6, with_val=False)
    audio.aggregate.main(["--runs", str(runs), "--results", str(results)])
    assert (results / name).read_text() == (folder / "results" / name).read_text()
    with open(results / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert sum(r["setting"] == "pretrained-crepe-tiny/standard-bin5" for r in rows) == 60
    assert sum(r["setting"] == "odds_evens-bin5" for r in rows) == 4

def test_check_passes_on_the_committed_readme(folder):
    """`aggregate.py --check` (CI): the committed README block and table.md are what results/ gives."""
    import subprocess
    import sys

    before = {p: p.stat().st_mtime_ns for p in [folder / "README.md", *(folder / "results").iterdir()]}
    result = subprocess.run([sys.executable, str(folder / "aggregate.py"), "--check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before  # wrote nothing


def test_check_names_the_stale_block(audio, folder, tmp_path, monkeypatch, capsys):
    agg = audio.aggregate
    shutil.copytree(folder / "results", tmp_path / "results")
    readme = tmp_path / "README.md"
    readme.write_text((folder / "README.md").read_text())
    monkeypatch.setattr(agg, "README", readme)
    monkeypatch.setattr(agg, "RESULTS", tmp_path / "results")
    assert agg.check_committed() == 0
    text = readme.read_text()
    cell = re.search(r"\| (0\.\d{3}) ± (0\.\d{3}) \|", text)  # one hand-edited number
    edited = cell.group(0).replace(cell.group(1), f"{float(cell.group(1)) + 0.001:.3f}", 1)
    readme.write_text(text.replace(cell.group(0), edited, 1))
    capsys.readouterr()
    assert agg.check_committed() == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and "README.md block 'results'" in err
    assert "table.md" not in err and readme.read_text() != text  # names only what is stale; writes nothing
    readme.write_text(text)
    summary = tmp_path / "results" / "summary_odds_evens-bin5.json"  # a result changed, README not regenerated
    s = json.loads(summary.read_text())
    s["rows"][0]["f1"]["mean"] += 0.01
    summary.write_text(json.dumps(s))
    assert agg.check_committed() == 1
    err = capsys.readouterr().err
    assert "README.md block 'results'" in err and "results/table.md" in err


def test_quick_tables_have_no_paper_column_or_relative_change(audio, tmp_path, refusal):
    runs, results = tmp_path / "runs", tmp_path / "results"
    for seed in range(2):
        fake_run(runs, "odds_evens-bin5", "linear", 0, seed, 3, 0.01, 0.01 + seed / 100, with_val=False)
        fake_run(runs, "odds_evens-bin5", "fourier", 1, seed, 3, 0.05, 0.05 + seed / 50, with_val=False)
    for cfg in runs.rglob("config.json"):
        cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "quick": True}))
    assert "quick" in refusal(audio.aggregate.main, ["--runs", str(runs)])  # never into the committed results/
    audio.aggregate.main(["--runs", str(runs), "--results", str(results)])
    table = (results / "table.md").read_text()
    assert table.startswith("**Quick run**") and "| paper" not in table and "118" not in table
    assert "%" not in table and "relative" not in table
    assert json.loads((results / "summary_odds_evens-bin5.json").read_text())["quick"] is True
    assert "--update-readme" in refusal(audio.aggregate.main, ["--runs", str(runs), "--results", str(results),
                                                               "--update-readme"])


def test_every_schedule_is_kept_and_the_unselected_one_is_tabled(audio, tmp_path):
    """A setting with two schedules keeps both in `schedules` (rows + paired tests each); the README text
    shows the validation-selected one as the main table and the other one after it, marked unselected."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    setting = "pretrained-crepe-tiny/standard-bin5"
    for seed in range(2):
        for epochs in (2, 5):  # every head is best on validation at 5 epochs; at 2 the test F1 is higher
            fake_run(runs, setting, "linear", 0, seed, epochs, 0.5 + 0.1 * (epochs == 5), 0.4 + seed / 100)
            fake_run(runs, setting, "fourier", 4, seed, epochs, 0.6 + 0.1 * (epochs == 5),
                     0.9 - 0.3 * (epochs == 5) + seed / 50)
    audio.aggregate.main(["--runs", str(runs), "--results", str(results)])
    summary = json.loads((results / "summary_pretrained-crepe-tiny_standard-bin5.json").read_text())
    assert [s["epochs"] for s in summary["schedules"]] == [2, 5]
    assert {r["epochs"] for r in summary["rows"]} == {5}
    two = summary["schedules"][0]
    assert {r["epochs"] for r in two["rows"]} == {2}
    assert two["paired_vs_linear"][0]["f1"]["fourier_minus_linear"] == pytest.approx(0.9 + 0.01 - 0.405)
    table = (results / "table.md").read_text()
    assert table.count("At 2 epochs for every head") == 1 and "At 5 epochs" not in table
    assert "not selected on" in table


def test_settings_without_validation_report_the_pilots_validation_choice(audio, tmp_path):
    """From-scratch sweeps have no validation split: their headline N is the one the regenerated pilot
    (results/pilot.json, validation scores) picked among the base recipe's N-only variants, never the best
    by test F1, which is shown separately and marked optimistic."""
    runs, results = tmp_path / "runs", tmp_path / "results"
    for seed in range(2):
        fake_run(runs, "odds_evens-bin5", "linear", 0, seed, 60, 0.0, 0.50 + seed / 100, with_val=False)
        fake_run(runs, "odds_evens-bin5", "fourier", 1, seed, 60, 0.0, 0.70 + seed / 100, with_val=False)  # test-best
        fake_run(runs, "odds_evens-bin5", "fourier", 2, seed, 60, 0.0, 0.55 + seed / 50, with_val=False)
    results.mkdir()
    row = lambda name, changed, f1: {"variant": name, "changed": changed, "metrics_on": "validation",  # noqa: E731
                                     "f1": f1}
    (results / "pilot.json").write_text(json.dumps({"rows": [
        row("base-f1", {"val_fraction": 0.15, "num_frequencies": 1}, 0.60),
        row("base-f2", {"val_fraction": 0.15}, 0.65),  # the default N (2) is best on validation
        row("base-linear", {"val_fraction": 0.15, "head": "linear"}, 0.99),  # not a Fourier variant
        row("wide-f1", {"val_fraction": 0.15, "num_frequencies": 1, "d_model": 192}, 0.99)]}))  # another recipe
    choice = audio.aggregate.pilot_choice(results)
    assert choice["num_frequencies"] == 2 and choice["candidates"] == [1, 2]
    audio.aggregate.main(["--runs", str(runs), "--results", str(results)])
    table = (results / "table.md").read_text()
    head = table.split("**odds_evens-bin5**")[1]
    assert "Fourier N = 2 (chosen on the seed-0 validation pilot, N in {1, 2})" in head
    assert "N = 1: " in table and "(optimistic)" in table
