"""Forecast your own series with a trained checkpoint: CSV in -> quantile forecasts CSV + plot out.

    python forecast.py --checkpoint runs/h100/<run>/checkpoint.pt --csv sales.csv --horizon 12
    python forecast.py ... --format long --id-column store --value-column sales

Input formats (--format auto picks "long" when the id and value columns exist, else "wide"):
* wide: one column per series, one row per time step (an optional first column named
  date/time/timestamp/ds is ignored); shorter series may start with empty cells.
* long: columns `id` and `value` (names set by --id-column / --value-column) and optionally a time
  column; rows of each id in time order.
Output: a CSV with columns id, step, q0.1 ... q0.9, mean, and a PNG with the history and the 10-90%
band of every series (at most --plot-series of them).

Bad input ends with a one-line "error: ..." and exit status 2, never a traceback.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TIME_COLUMNS = {"date", "time", "timestamp", "ds", "datetime"}
MIN_LENGTH = 3


class InputError(Exception):
    pass


def read_series(path: Path, fmt: str, id_col: str, value_col: str) -> dict:
    """CSV -> {series id: float64 array}; raises InputError with a readable message."""
    import pandas as pd
    if not path.exists():
        raise InputError(f"file not found: {path}")
    try:
        df = pd.read_csv(path, skip_blank_lines=False)  # an empty line in a one-column file is a gap
    except Exception as e:  # pandas' parser errors are long; keep the first line
        raise InputError(f"cannot read {path} as CSV: {str(e).splitlines()[0]}")
    if df.empty or len(df.columns) == 0:
        raise InputError(f"{path} has no data rows")
    if fmt == "auto":
        fmt = "long" if {id_col, value_col} <= set(df.columns) else "wide"
    if fmt == "long":
        missing = [c for c in (id_col, value_col) if c not in df.columns]
        if missing:
            raise InputError(f"long format needs columns {id_col!r} and {value_col!r}; missing {missing} "
                             f"(found {list(df.columns)})")
        values = pd.to_numeric(df[value_col], errors="coerce")
        bad = values.isna() & df[value_col].notna()
        if bad.any():
            raise InputError(f"column {value_col!r} has non-numeric values, e.g. {df[value_col][bad].iloc[0]!r} "
                             f"(row {int(np.flatnonzero(bad)[0]) + 2})")
        series = {str(k): values[g.index].to_numpy(np.float64) for k, g in df.groupby(id_col, sort=False)}
    elif fmt == "wide":
        cols = [c for c in df.columns if str(c).strip().lower() not in TIME_COLUMNS]
        series = {}
        for c in cols:
            v = pd.to_numeric(df[c], errors="coerce")
            bad = v.isna() & df[c].notna()
            if bad.any():
                raise InputError(f"column {c!r} has non-numeric values, e.g. {df[c][bad].iloc[0]!r} "
                                 f"(row {int(np.flatnonzero(bad)[0]) + 2}); pass --format long for id/value data")
            arr = v.to_numpy(np.float64)
            first = np.flatnonzero(~np.isnan(arr))
            series[str(c)] = arr[first[0]:] if len(first) else arr  # leading blanks = later start
        if not series:
            raise InputError("no value columns found (only time columns)")
    else:
        raise InputError(f"unknown format {fmt!r}; use auto, wide or long")
    for name, v in series.items():
        if np.isnan(v).any():
            i = int(np.flatnonzero(np.isnan(v))[0])
            raise InputError(f"series {name!r} has a missing value at position {i} (only leading blanks are "
                             f"allowed in wide format); fill or drop it first")
        if len(v) < MIN_LENGTH:
            raise InputError(f"series {name!r} has {len(v)} values; at least {MIN_LENGTH} are needed")
    return series


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt of a run (train.py)")
    p.add_argument("--csv", required=True)
    p.add_argument("--horizon", type=int, default=12)
    p.add_argument("--format", default="auto", help="auto | wide | long")
    p.add_argument("--id-column", default="id")
    p.add_argument("--value-column", default="value")
    p.add_argument("--num-samples", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output CSV (default: <csv stem>_forecast.csv)")
    p.add_argument("--plot-series", type=int, default=6)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    try:
        if args.horizon < 1:
            raise InputError(f"--horizon must be >= 1, got {args.horizon}")
        if not Path(args.checkpoint).exists():
            raise InputError(f"checkpoint not found: {args.checkpoint}")
        series = read_series(Path(args.csv), args.format, args.id_column, args.value_column)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import pandas as pd
    import torch
    from evaluate import forecast, load_run
    from metrics import QUANTILES
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    try:
        model, tokenizer, ckpt = load_run(Path(args.checkpoint).parent, device)
    except Exception as e:
        print(f"error: cannot load checkpoint {args.checkpoint}: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    context_length = 512
    names, pasts = list(series), list(series.values())
    paths = forecast(model, tokenizer, pasts, args.horizon, context_length, args.num_samples, seed=args.seed,
                     device=device)
    q = np.quantile(paths, QUANTILES, axis=1)  # (9, n, H)
    rows = []
    for i, name in enumerate(names):
        for h in range(args.horizon):
            rows.append({"id": name, "step": h + 1, **{f"q{lv:g}": q[j, i, h] for j, lv in enumerate(QUANTILES)},
                         "mean": paths[i, :, h].mean()})
    out = Path(args.out) if args.out else Path(args.csv).with_name(Path(args.csv).stem + "_forecast.csv")
    pd.DataFrame(rows).to_csv(out, index=False)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plot_style
    plot_style.use()
    k = min(len(names), args.plot_series)
    fig, axes = plt.subplots(k, 1, figsize=(8, 2.2 * k), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        past = pasts[i][-4 * args.horizon:]
        t0 = len(past)
        ax.plot(np.arange(t0), past, color="black", lw=1)
        steps = np.arange(t0, t0 + args.horizon)
        ax.fill_between(steps, q[0, i], q[-1, i], color=plot_style.COLORS["fourier"], alpha=0.3, label="10-90%")
        ax.plot(steps, q[4, i], color=plot_style.COLORS["fourier"], label="median")
        ax.set_title(names[i])
    axes[0, 0].legend()
    plot_style.save(fig, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')} ({len(names)} series, horizon {args.horizon})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
