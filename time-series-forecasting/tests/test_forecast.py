"""forecast.py on tiny CSVs with a tiny checkpoint (in-process, CPU, about a second each): dates found and
sorted, bad values, flags, checkpoints and output folders refused with one line before any forecasting."""

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import forecast  # noqa: E402
from model import ModelConfig, build_model  # noqa: E402



@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint in train.py's format (the keys forecast.py reads) of an untrained smoke-size model."""
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    cfg = ModelConfig(size="smoke", head="fourier", num_frequencies=8)
    torch.save(dict(model=build_model(cfg).state_dict(), model_config=asdict(cfg), binning="mixed", step=0),
               run / "checkpoint.pt")
    (run / "config.json").write_text(json.dumps({"context_length": 64}))
    return run / "checkpoint.pt"


def run(checkpoint, csv, *extra, capsys=None):
    """forecast.main in-process -> (exit status, stderr)."""
    argv = ["--checkpoint", str(checkpoint), "--csv", str(csv), "--horizon", "4", "--num-samples", "4",
            "--device", "cpu", *extra]
    try:
        code = forecast.main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err if capsys else ""
    return code, err


def air(n=30, start="1949-01"):
    return pd.DataFrame({"Month": pd.period_range(start, periods=n, freq="M").astype(str),
                         "passengers": 100 + 10 * np.sin(np.arange(n) / 2) + np.arange(n)})


def test_month_column_is_a_date_and_forecast_continues_it(checkpoint, tmp_path, capsys):
    air().to_csv(tmp_path / "air.csv", index=False)
    code, err = run(checkpoint, tmp_path / "air.csv", capsys=capsys)
    assert code == 0, err
    out = pd.read_csv(tmp_path / "air_forecast.csv")
    assert list(out.columns) == ["id", "step", "date"] + [f"q{q / 10:g}" for q in range(1, 10)] + ["mean"]
    assert list(out["id"]) == ["passengers"] * 4
    assert list(out["date"]) == ["1951-07-01", "1951-08-01", "1951-09-01", "1951-10-01"]
    assert (tmp_path / "air_forecast.png").exists()


@pytest.mark.parametrize("name", ["date", "Date", "ds", "timestamp", "time", "Month", "month", "datetime"])
def test_common_date_column_names(checkpoint, tmp_path, name, capsys):
    air().rename(columns={"Month": name}).to_csv(tmp_path / "a.csv", index=False)
    code, err = run(checkpoint, tmp_path / "a.csv", capsys=capsys)
    assert code == 0, err
    assert set(pd.read_csv(tmp_path / "a_forecast.csv")["id"]) == {"passengers"}


def test_date_column_flag(checkpoint, tmp_path, capsys):
    air().rename(columns={"Month": "when"}).to_csv(tmp_path / "a.csv", index=False)
    code, err = run(checkpoint, tmp_path / "a.csv", capsys=capsys)  # not a known name: a text column
    assert code == 2 and err == "error: column 'when' holds dates, not values; name it with --date-column when\n"
    code, err = run(checkpoint, tmp_path / "a.csv", "--date-column", "when", capsys=capsys)
    assert code == 0, err
    code, err = run(checkpoint, tmp_path / "a.csv", "--date-column", "nope", capsys=capsys)
    assert code == 2 and "--date-column 'nope' is not a column" in err


@pytest.mark.parametrize("order", ["newest-first", "shuffled"])
def test_row_order_does_not_matter(checkpoint, tmp_path, order, capsys):
    df = air(40)
    df["other"] = np.r_[[np.nan] * 6, np.arange(34.0) ** 1.5]  # starts later
    df.to_csv(tmp_path / "sorted.csv", index=False)
    mixed = df.iloc[::-1] if order == "newest-first" else df.sample(frac=1, random_state=0)
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    for name in ("sorted", "mixed"):
        code, err = run(checkpoint, tmp_path / f"{name}.csv", capsys=capsys)
        assert code == 0, err
    a, b = (pd.read_csv(tmp_path / f"{n}_forecast.csv") for n in ("sorted", "mixed"))
    pd.testing.assert_frame_equal(a, b)


def test_long_format_sorted_per_series(checkpoint, tmp_path, capsys):
    rows = [{"id": k, "ds": f"2024-01-{d + 1:02d}", "value": float(d * (2 if k == "y" else 1))}
            for k in ("x", "y") for d in range(12)]
    df = pd.DataFrame(rows)
    df.to_csv(tmp_path / "sorted.csv", index=False)
    mixed = df.sample(frac=1, random_state=3)
    mixed = pd.concat([mixed[mixed["id"] == "x"].iloc[:1], mixed.drop(mixed[mixed["id"] == "x"].index[:1])])
    mixed.to_csv(tmp_path / "mixed.csv", index=False)  # (series order = first appearance: x first in both)
    for name in ("sorted", "mixed"):
        code, err = run(checkpoint, tmp_path / f"{name}.csv", capsys=capsys)
        assert code == 0, err
    a, b = (pd.read_csv(tmp_path / f"{n}_forecast.csv") for n in ("sorted", "mixed"))
    pd.testing.assert_frame_equal(a, b)
    assert list(a["date"][:4]) == ["2024-01-13", "2024-01-14", "2024-01-15", "2024-01-16"]


@pytest.mark.parametrize("content, extra, message", [
    ("a\n1\n\n3\n4\n", (), "series 'a' has a missing value at row 3"),
    ("a\n1\ninf\n3\n4\n", (), "series 'a' has a non-finite value (inf) at row 3"),
    ("a\n1\n-inf\n3\n4\n", (), "non-finite value (-inf)"),
    ("id,value\nx,1\nx,nan\nx,3\nx,4\n", (), "series 'x' has a missing value at row 3 (long format has no gaps)"),
    ("a\n1\n2\n", (), "has 2 values; at least 3"),
    ("a,b\n1,2\n3,x\n4,5\n", (), "column 'b' has a non-numeric value 'x' (row 3)"),
    ("id,value\nx,1\nx,oops\nx,3\n", (), "column 'value' has a non-numeric value 'oops' (row 3)"),
    ("store,sales\na,1\nb,2\na,3\n", (), "column 'store' holds text, not values"),
    ("date,a\n2020-01-01,1\n2020-01-02,2\n2020-01-01,3\n", (), "has the time 2020-01-01 twice (rows 2 and 4)"),
    ("date,a\n2020-01-01,1\nsoon,2\n2020-01-03,3\n", (), "not a date, 'soon' (row 3)"),
    ("date,a\n2020-01-01,1\n,2\n2020-01-03,3\n", (), "time column 'date' has an empty cell (row 3)"),
    ("a\n1\n2\n3\n", ("--format", "xml"), "invalid choice: 'xml'"),
    ("foo,bar\n1,2\n", ("--format", "long"), "long format needs"),
    ("date\n2020-01-01\n", (), "no value columns"),
    ("", (), "is empty"),
    ("a,b\n", (), "has a header but no data rows"),
])
def test_bad_input(checkpoint, tmp_path, content, extra, message, capsys):
    (tmp_path / "bad.csv").write_text(content)
    code, err = run(checkpoint, tmp_path / "bad.csv", *extra, capsys=capsys)
    assert code == 2 and err.startswith("error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "bad_forecast.csv").exists()


@pytest.mark.parametrize("flag, value, message", [
    ("--num-samples", "0", "--num-samples must be >= 1 (got 0)"),
    ("--num-samples", "-5", "--num-samples must be >= 1 (got -5)"),
    ("--plot-series", "0", "--plot-series must be >= 1 (got 0)"),
    ("--horizon", "0", "--horizon must be >= 1 (got 0)"),
    ("--seed", "-1", "--seed must be >= 0 (got -1)"),
    ("--context-length", "-1", "--context-length must be >= 0 (got -1)"),
])
def test_bad_flags(checkpoint, tmp_path, flag, value, message, capsys):
    air().to_csv(tmp_path / "air.csv", index=False)
    code, err = run(checkpoint, tmp_path / "air.csv", flag, value, capsys=capsys)
    assert code == 2 and err == f"error: {message}\n"


def test_checkpoint_used_as_named(checkpoint, tmp_path, capsys):
    air().to_csv(tmp_path / "air.csv", index=False)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "checkpoint.pt").write_text("not a checkpoint")
    (tmp_path / "ckpt" / "step500.pt").write_bytes(checkpoint.read_bytes())
    code, err = run(tmp_path / "ckpt" / "step500.pt", tmp_path / "air.csv", capsys=capsys)
    assert code == 0, err  # the file named, not the folder's checkpoint.pt
    code, err = run(tmp_path / "ckpt", tmp_path / "air.csv", capsys=capsys)  # a folder: its checkpoint.pt
    assert code == 2 and "cannot read" in err and "as a torch checkpoint" in err and err.count("\n") == 1
    torch.save({"weights": torch.zeros(2)}, tmp_path / "ckpt" / "other.pt")
    code, err = run(tmp_path / "ckpt" / "other.pt", tmp_path / "air.csv", capsys=capsys)
    assert code == 2 and "is not a train.py checkpoint or an export.py forecaster (no model, model_config, binning, step)" in err
    code, err = run(tmp_path / "missing.pt", tmp_path / "air.csv", capsys=capsys)
    assert code == 2 and err == f"error: --checkpoint {tmp_path / 'missing.pt'}: no such file\n"
    code, err = run(checkpoint, tmp_path / "missing.csv", capsys=capsys)
    assert code == 2 and err == f"error: --csv {tmp_path / 'missing.csv'}: no such file\n"


def test_output_folder_created_or_refused_before_forecasting(checkpoint, tmp_path, capsys, monkeypatch):
    air().to_csv(tmp_path / "air.csv", index=False)
    code, err = run(checkpoint, tmp_path / "air.csv", "--out", str(tmp_path / "new" / "deeper" / "f.csv"), capsys=capsys)
    assert code == 0, err
    assert (tmp_path / "new" / "deeper" / "f.csv").exists() and (tmp_path / "new" / "deeper" / "f.png").exists()
    code, err = run(checkpoint, tmp_path / "air.csv", "--out", str(tmp_path / "folder") + "/", capsys=capsys)
    assert code == 0 and (tmp_path / "folder" / "air_forecast.csv").exists()

    import evaluate
    monkeypatch.setattr(evaluate, "forecast", lambda *a, **k: pytest.fail("forecast ran before the refusal"))
    (tmp_path / "file.txt").write_text("")
    code, err = run(checkpoint, tmp_path / "air.csv", "--out", str(tmp_path / "file.txt" / "f.csv"), capsys=capsys)
    assert code == 2 and err == (f"error: cannot create the output folder {tmp_path / 'file.txt'}: "
                                 f"{tmp_path / 'file.txt'} is a file\n")
    code, err = run(checkpoint, tmp_path / "air.csv", "--out", str(tmp_path / "f.png"), capsys=capsys)
    assert code == 2 and "name a .csv file" in err


def test_plot_axes_are_value_against_date(checkpoint, tmp_path, capsys, monkeypatch):
    import matplotlib.dates

    import plot_style
    figures = []
    monkeypatch.setattr(plot_style, "save", lambda fig, path: figures.append(fig))
    air().to_csv(tmp_path / "air.csv", index=False)
    code, err = run(checkpoint, tmp_path / "air.csv", capsys=capsys)
    assert code == 0, err
    ax = figures[0].axes[0]
    assert ax.get_xlabel() == "Month" and ax.get_ylabel() == "value"
    assert isinstance(ax.xaxis.get_major_locator(), matplotlib.dates.DateLocator)  # dates, not step numbers
    history = ax.get_lines()[0].get_xdata()
    assert np.issubdtype(np.asarray(history).dtype, np.datetime64) and history[-1] == np.datetime64("1951-06-01")
