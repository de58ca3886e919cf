"""Forecast metrics of the Chronos benchmark, in numpy, computed exactly as gluonts does
(tests/test_tsf.py checks them against gluonts.ev where gluonts is installed).

* MASE of the median forecast: mean over items and steps of |y - median| / seasonal_error(past), where
  seasonal_error is the mean |past_t - past_{t-s}| (s = 1 when the past is not longer than s).
* WQL: for each quantile level q in 0.1..0.9, sum over items and steps of 2 |(y - f_q)(1{y <= f_q} - q)|
  divided by sum |y|; then the mean over the nine levels (gluonts MeanWeightedSumQuantileLoss).
* Seasonal naive (gluonts SeasonalNaivePredictor): repeat the last season; the mean of the past when it
  is shorter than one season. Its quantile forecasts all equal the point forecast.
* Aggregate relative score: geometric mean over datasets of model metric / seasonal-naive metric.
"""

import numpy as np

QUANTILES = np.round(np.arange(1, 10) / 10, 1)


def seasonal_error(past: np.ndarray, season: int) -> float:
    s = season if season < len(past) else 1
    return float(np.abs(past[s:] - past[:-s]).mean())


def mase(pasts, future: np.ndarray, median: np.ndarray, season: int) -> float:
    """pasts: list of n arrays; future, median: (n, H)."""
    scale = np.array([seasonal_error(p, season) for p in pasts])
    return float((np.abs(future - median) / scale[:, None]).mean())


def wql(future: np.ndarray, quantile_forecasts: np.ndarray, quantiles=QUANTILES) -> float:
    """future (n, H); quantile_forecasts (n, len(quantiles), H)."""
    denom = np.abs(future).sum()
    losses = [2 * np.abs((future - quantile_forecasts[:, i]) * ((future <= quantile_forecasts[:, i]) - q)).sum() / denom
              for i, q in enumerate(quantiles)]
    return float(np.mean(losses))


def seasonal_naive(pasts, horizon: int, season: int) -> np.ndarray:
    out = np.empty((len(pasts), horizon))
    for i, p in enumerate(pasts):
        if len(p) >= season:
            last = p[-season:]
            out[i] = last[np.arange(horizon) % season]
        else:
            out[i] = np.nanmean(p)
    return out


def naive_scores(dataset: dict) -> dict:
    """MASE and WQL of the seasonal-naive forecast on one benchmark dataset (data.load_benchmark format)."""
    pasts = [p for _, p, _ in dataset["items"]]
    future = np.stack([f for _, _, f in dataset["items"]])
    fc = seasonal_naive(pasts, dataset["prediction_length"], dataset["season"])
    return dict(mase=mase(pasts, future, fc, dataset["season"]),
                wql=wql(future, np.repeat(fc[:, None], len(QUANTILES), 1)))


def geometric_mean(values) -> float:
    values = np.asarray(list(values), dtype=np.float64)
    return float(np.exp(np.log(values).mean()))
