"""Forecast your own series with a trained model: CSV in -> quantile forecasts CSV + plot out.

    python forecast.py --csv sales.csv --horizon 12               # the shipped model, model/forecaster.pt
    python forecast.py --checkpoint runs/h100/<run>/checkpoint.pt --csv sales.csv --horizon 12
    python forecast.py ... --format long --id-column store --value-column sales
    python forecast.py ... --date-column week_start --out forecasts/

Input formats (--format auto picks "long" when the id and value columns exist, else "wide"):
* wide: one column per series, one row per time step; shorter series may start with empty cells.
* long: columns `id` and `value` (names set by --id-column / --value-column), one row per (series, time).
Time: the first column named date, ds, timestamp, time, datetime, month, week, year, quarter or period (any
case), or the one --date-column names, is the time axis: dates ("1949-01", "2024-03-01 10:00") or numbers
(years). Rows are sorted by it, so newest-first or shuffled files are forecast in the right order; a time
may appear once (once per series in long format). Without a time column the row order is the time order.
Values must be finite numbers; an empty cell is allowed only before a wide-format series starts.

Output (--out, default <csv stem>_forecast.csv next to the input; a folder gets that name inside it): a
CSV with columns id, step, date (when the input has a time column: the input's frequency continued),
q0.1 ... q0.9, mean; and a PNG of the same name with the history and the 10-90% band of the first
--plot-series series, value against date.

--checkpoint takes a train.py checkpoint (or its run directory) or a forecaster file made by export.py;
without it, the shipped forecaster model/forecaster.pt (export.py's default output) is used where it exists.

Every problem (a flag, the CSV, a column, a value, the checkpoint, the output folder) ends with one line
"error: ..." and a non-zero exit status before any forecasting, never a traceback.
"""

import json
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from scaffold import Field, parse_config, pick_device  # noqa: E402

TIME_NAMES = ("date", "ds", "timestamp", "time", "datetime", "month", "week", "year", "quarter", "period")
MIN_LENGTH = 3
SHIPPED = Path(__file__).resolve().parent / "model" / "forecaster.pt"  # the default model (export.py writes it)
DEFAULT_CONTEXT = 512  # where the checkpoint's run has no config.json


@dataclass
class Config:
    checkpoint: str = Field("", "checkpoint.pt of a train.py run (or its run directory), or an export.py "
                                "forecaster file (default: the shipped model/forecaster.pt)")
    csv: str = Field("", "input CSV; required")
    horizon: int = Field(12, "steps to forecast", low=1)
    format: str = Field("auto", "wide: a column per series | long: id/value rows | auto",
                        choices=("auto", "wide", "long"))
    id_column: str = Field("id", "long format: the series id column")
    value_column: str = Field("value", "long format: the value column")
    date_column: str = Field("", "the time column (default: the first column named like " + "/".join(TIME_NAMES) + ")")
    num_samples: int = Field(20, "sample paths per series (quantiles are taken over them)", low=1)
    context_length: int = Field(0, "history values the model sees (0: its run's config.json, else 512)", low=0)
    seed: int = Field(0, "sampling seed", low=0)
    out: str = Field("", "output CSV or folder (default: <csv stem>_forecast.csv next to the input)")
    plot_series: int = Field(6, "series drawn in the PNG, at most", low=1)
    device: str = Field("auto", "auto | cpu | cuda | cuda:N")


class InputError(Exception):
    pass


@dataclass
class Series:
    name: str
    values: np.ndarray              # float64, finite, in time order
    times: Optional[np.ndarray]     # datetime64 or numbers, increasing; None: the row order is the time order


@dataclass
class Table:
    series: list
    time_column: Optional[str]      # the column the times came from
    value_label: str                # y-axis label of the plot


# ------------------------------------------------------------------------------------------------
# reading and checking the CSV
# ------------------------------------------------------------------------------------------------

def row(i) -> int:
    """The CSV line number of data frame row index i (line 1 is the header)."""
    return int(i) + 2


def read_csv(path: Path):
    import pandas as pd
    if not path.exists():
        raise InputError(f"--csv {path}: no such file")
    if path.is_dir():
        raise InputError(f"--csv {path} is a folder, not a CSV file")
    try:
        df = pd.read_csv(path, skip_blank_lines=False)  # an empty line in a one-column file is a gap
    except pd.errors.EmptyDataError:
        raise InputError(f"{path} is empty")
    except UnicodeDecodeError:
        raise InputError(f"cannot read {path} as CSV: it is not UTF-8 text")
    except Exception as e:  # pandas' parser errors are long; keep the first line
        raise InputError(f"cannot read {path} as CSV: {str(e).splitlines()[0]}")
    if len(df.columns) == 0 or df.empty:
        raise InputError(f"{path} has a header but no data rows")
    df.columns = [str(c) for c in df.columns]
    return df


def find_time_column(df, wanted: str) -> Optional[str]:
    if wanted:
        if wanted not in df.columns:
            raise InputError(f"--date-column {wanted!r} is not a column of the CSV (found {list(df.columns)})")
        return wanted
    return next((c for c in df.columns if c.strip().lower() in TIME_NAMES), None)


def parse_times(column) -> np.ndarray:
    """A time column -> numbers (e.g. years) or datetime64 values; InputError naming the first bad cell."""
    import pandas as pd
    name = column.name
    if column.isna().any():
        raise InputError(f"time column {name!r} has an empty cell (row {row(column.index[column.isna()][0])})")
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all():
        values = numbers.to_numpy(np.float64)
        if not np.isfinite(values).all():
            raise InputError(f"time column {name!r} has a non-finite value (row {row(column.index[~np.isfinite(values)][0])})")
        return values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "could not infer format": then each value is parsed alone
        dates = pd.to_datetime(column, errors="coerce")
        if dates.isna().any():
            dates = pd.to_datetime(column, errors="coerce", format="mixed")
    if dates.isna().any():
        i = column.index[dates.isna()][0]
        raise InputError(f"time column {name!r} has a value that is not a date, {column[i]!r} (row {row(i)})")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert(None)
    return dates.to_numpy("datetime64[ns]")


def time_order(times: np.ndarray, index, what: str) -> np.ndarray:
    """Positions that sort `times` (stable); InputError when a time appears twice."""
    order = np.argsort(times, kind="stable")
    t = times[order]
    dup = np.flatnonzero(t[1:] == t[:-1])
    if len(dup):
        a, b = sorted((index[order[dup[0]]], index[order[dup[0] + 1]]))
        raise InputError(f"{what} has the time {show_time(t[dup[0]])} twice (rows {row(a)} and {row(b)})")
    return order


def show_time(t) -> str:
    if isinstance(t, np.datetime64):
        text = str(t.astype("datetime64[s]")).replace("T", " ")
        return text[:10] if text.endswith("00:00:00") else text
    return f"{t:g}"


def to_numbers(column):
    """Numeric values of a column; InputError naming the first non-numeric cell."""
    import pandas as pd
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        i = column.index[bad][0]
        raise InputError(f"column {column.name!r} has a non-numeric value {column[i]!r} (row {row(i)})")
    return values.to_numpy(np.float64)


def looks_like_dates(column) -> bool:
    import pandas as pd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = column.dropna()
        return len(text) > 0 and pd.to_datetime(text, errors="coerce", format="mixed").notna().all()


def check_values(name: str, values: np.ndarray, index, allow_leading_gap: bool) -> np.ndarray:
    """Finite values, no gaps (a wide series may start late); returns the values from the first observed one."""
    missing = np.isnan(values)
    first = int(np.argmax(~missing)) if (~missing).any() else len(values)
    if allow_leading_gap:
        values, index, missing = values[first:], index[first:], missing[first:]
    if missing.any():
        i = index[int(np.argmax(missing))]
        where = "only leading blanks are allowed in wide format" if allow_leading_gap else "long format has no gaps"
        raise InputError(f"series {name!r} has a missing value at row {row(i)} ({where}); fill or drop it first")
    infinite = ~np.isfinite(values)
    if infinite.any():
        k = int(np.argmax(infinite))
        raise InputError(f"series {name!r} has a non-finite value ({values[k]:g}) at row {row(index[k])}")
    if len(values) < MIN_LENGTH:
        raise InputError(f"series {name!r} has {len(values)} values; at least {MIN_LENGTH} are needed")
    return values


def read_series(path: Path, fmt: str = "auto", id_col: str = "id", value_col: str = "value",
                date_col: str = "") -> Table:
    """CSV -> the series in time order; InputError with the cause otherwise."""
    df = read_csv(path)
    time_col = find_time_column(df, date_col)
    if fmt == "auto":
        fmt = "long" if {id_col, value_col} <= set(df.columns) else "wide"
    if fmt == "long":
        return read_long(df, time_col, id_col, value_col)
    return read_wide(df, time_col)


def read_wide(df, time_col: Optional[str]) -> Table:
    import pandas as pd
    times = None
    if time_col is not None:
        times = parse_times(df[time_col])
        order = time_order(times, df.index, f"time column {time_col!r}")
        df, times = df.iloc[order], times[order]
    skip = {c for c in df.columns if c.strip().lower() in TIME_NAMES} | {time_col}
    columns = [c for c in df.columns if c not in skip]
    if not columns:
        raise InputError(f"no value columns: the CSV has only the time column(s) {sorted(skip - {None})}")
    series = []
    for c in columns:
        column = df[c]
        if column.notna().any() and pd.to_numeric(column, errors="coerce").isna().all():  # a text column
            if looks_like_dates(column):
                raise InputError(f"column {c!r} holds dates, not values; name it with --date-column {c}")
            raise InputError(f"column {c!r} holds text, not values (e.g. {column.dropna().iloc[0]!r}); for one row "
                             f"per series and time pass --format long --id-column {c} --value-column <its values>")
        values = to_numbers(column)
        observed = np.flatnonzero(~np.isnan(values))
        start = int(observed[0]) if len(observed) else len(values)  # a later start: leading blanks
        values = check_values(c, values, df.index.to_numpy(), allow_leading_gap=True)
        series.append(Series(c, values, None if times is None else times[start:]))
    return Table(series, time_col, "value")


def read_long(df, time_col: Optional[str], id_col: str, value_col: str) -> Table:
    missing = [c for c in (id_col, value_col) if c not in df.columns]
    if missing:
        raise InputError(f"long format needs columns {id_col!r} and {value_col!r}; missing {missing} "
                         f"(found {list(df.columns)}; set --id-column / --value-column)")
    if df[id_col].isna().any():
        raise InputError(f"column {id_col!r} has an empty cell (row {row(df.index[df[id_col].isna()][0])})")
    values = to_numbers(df[value_col])
    times = parse_times(df[time_col]) if time_col is not None else None
    series = []
    for key, group in df.groupby(id_col, sort=False):
        idx = group.index.to_numpy()
        pos = df.index.get_indexer(idx)
        v, t = values[pos], None
        if times is not None:
            order = time_order(times[pos], idx, f"series {str(key)!r}")
            v, t, idx = v[order], times[pos][order], idx[order]
        series.append(Series(str(key), check_values(str(key), v, idx, allow_leading_gap=False), t))
    return Table(series, time_col, value_col)


# ------------------------------------------------------------------------------------------------
# checkpoint, output folder
# ------------------------------------------------------------------------------------------------

def checkpoint_file(name: str) -> Path:
    if not name:
        if not SHIPPED.exists():
            raise InputError(f"no --checkpoint, and no shipped model at {SHIPPED} (train one with run.sh, export "
                             "it with export.py, or name a checkpoint)")
        return SHIPPED
    path = Path(name)
    if path.is_dir():
        if not (path / "checkpoint.pt").exists():
            raise InputError(f"--checkpoint {path} is a folder without checkpoint.pt")
        return path / "checkpoint.pt"
    if not path.exists():
        raise InputError(f"--checkpoint {path}: no such file")
    return path


def run_context_length(checkpoint: Path, ckpt: dict) -> int:
    """The context length the model was trained with (a forecaster file's own, else its run's config.json),
    else 512."""
    if "context_length" in ckpt:
        return int(ckpt["context_length"])
    config = checkpoint.parent / "config.json"
    try:
        return int(json.loads(config.read_text())["context_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_CONTEXT


def output_path(out: str, csv: Path) -> Path:
    """The output CSV; its folder is created here (or refused), before any forecasting."""
    name = csv.stem + "_forecast.csv"
    if not out:
        path = csv.with_name(name)
    elif out.endswith(("/", os.sep)) or Path(out).is_dir():
        path = Path(out) / name
    elif Path(out).suffix.lower() != ".csv":
        raise InputError(f"--out {out}: name a .csv file (the plot gets the same name with .png) or a folder")
    else:
        path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocking = next((p for p in [path.parent, *path.parent.parents] if p.exists() and not p.is_dir()), None)
        why = f"{blocking} is a file" if blocking else (e.strerror or str(e))
        raise InputError(f"cannot create the output folder {path.parent}: {why}")
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"cannot write into the output folder {path.parent} (permission denied)")
    for p in (path, path.with_suffix(".png")):
        if p.is_dir():
            raise InputError(f"cannot write {p}: a folder of that name exists")
    return path


# ------------------------------------------------------------------------------------------------
# forecast, CSV and plot
# ------------------------------------------------------------------------------------------------

def future_times(times: Optional[np.ndarray], horizon: int):
    """The next `horizon` times after `times`: the inferred calendar frequency, else the median spacing."""
    if times is None:
        return None
    if np.issubdtype(times.dtype, np.datetime64):
        import pandas as pd
        freq = pd.infer_freq(pd.DatetimeIndex(times)) if len(times) >= 3 else None
        if freq:
            return pd.date_range(times[-1], periods=horizon + 1, freq=freq)[1:].to_numpy("datetime64[ns]")
    return times[-1] + np.median(np.diff(times)) * np.arange(1, horizon + 1)


def write_csv(path: Path, table: Table, q: np.ndarray, paths: np.ndarray, quantiles, horizon: int):
    import pandas as pd
    rows = []
    for i, s in enumerate(table.series):
        future = future_times(s.times, horizon)
        for h in range(horizon):
            rec = {"id": s.name, "step": h + 1}
            if future is not None:
                rec["date"] = show_time(future[h])
            rec.update({f"q{lv:g}": q[j, i, h] for j, lv in enumerate(quantiles)})
            rec["mean"] = paths[i, :, h].mean()
            rows.append(rec)
    pd.DataFrame(rows).to_csv(path, index=False)


def plot(path: Path, table: Table, q: np.ndarray, horizon: int, max_series: int):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import plot_style
    plot_style.use()
    k = min(len(table.series), max_series)
    fig, axes = plt.subplots(k, 1, figsize=(8, 2.4 * k), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        s = table.series[i]
        n = min(len(s.values), 4 * horizon)
        if s.times is None:
            past_x, future_x = np.arange(len(s.values) - n, len(s.values)), len(s.values) + np.arange(horizon)
        else:
            past_x, future_x = s.times[-n:], future_times(s.times, horizon)
        ax.plot(past_x, s.values[-n:], color="black", lw=1, label="history")
        ax.fill_between(future_x, q[0, i], q[-1, i], color=plot_style.COLORS["fourier"], alpha=0.3, label="10-90%")
        ax.plot(future_x, q[4, i], color=plot_style.COLORS["fourier"], label="median")
        ax.set_title(s.name)
        ax.set_ylabel(table.value_label)
        ax.set_xlabel(table.time_column if table.time_column else "time step (row order)")
        if s.times is not None and np.issubdtype(s.times.dtype, np.datetime64):
            ax.tick_params(axis="x", labelrotation=20)  # every panel its own dates (long format: its own range)
    axes[0, 0].legend()
    fig.tight_layout()
    plot_style.save(fig, path)


def main(argv=None) -> int:
    cfg = parse_config(Config, argv, description=__doc__)
    device = pick_device(cfg.device)
    try:
        if not cfg.csv:
            raise InputError("--csv is required (see --help)")
        checkpoint = checkpoint_file(cfg.checkpoint)
        table = read_series(Path(cfg.csv), cfg.format, cfg.id_column, cfg.value_column, cfg.date_column)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from evaluate import forecast, load_checkpoint
    from metrics import QUANTILES
    try:
        model, tokenizer, ckpt = load_checkpoint(checkpoint, device)
        out = output_path(cfg.out, Path(cfg.csv))
    except (ValueError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    context_length = cfg.context_length or run_context_length(checkpoint, ckpt)
    pasts = [s.values for s in table.series]
    paths = forecast(model, tokenizer, pasts, cfg.horizon, context_length, cfg.num_samples, seed=cfg.seed,
                     device=device)
    q = np.quantile(paths, QUANTILES, axis=1)  # (9, n, H)
    write_csv(out, table, q, paths, QUANTILES, cfg.horizon)
    plot(out.with_suffix(".png"), table, q, cfg.horizon, cfg.plot_series)
    shown = min(len(pasts), cfg.plot_series)
    print(f"wrote {out} and {out.with_suffix('.png')} ({len(pasts)} series, horizon {cfg.horizon}"
          f"{f', {shown} plotted' if shown < len(pasts) else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
