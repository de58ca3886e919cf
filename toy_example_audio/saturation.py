"""The saturation cap of a Fourier head: how much mass one bin can get from N frequencies on m bins.

The Fourier head's PMF is p_i = |(E a)_i|^2 / sum_l |(E a)_l|^2 with E_ij = exp(i pi j z_i), a in C^(N+1)
and z_i the m bin centres (fourier_head.py). The largest mass bin k can receive is a generalised Rayleigh
quotient over a:

    cap(N, m) = max_a |e_k^T E a|^2 / ||E a||^2 = v^H (E^H E)^+ v,   v = (E^H)_{:, k}.

On the m uniform bin centres of [-1, 1], E^H E = m I whenever N < m (the columns are m-point DFT vectors
of distinct frequencies), so cap = (N + 1) / m for every bin, reached by a_j = exp(-i pi j z_k): the
Fejér kernel centred on bin k. For 33 bins: N = 1 -> 2/33 = 0.0606, N = 2 -> 3/33, N = 4 -> 5/33,
N = 8 -> 9/33, N = 16 -> 17/33. The head outputs log(p + eps), eps = 1e-5, so after a softmax the cap is
(cap + eps) / (1 + m eps). Consequences: a head with N frequencies can never put more than (N+1)/m on
the true class, so its NLL is at least -log((N+1)/m) on every clip (N = 1: 2.803), and a head trained
with cross-entropy is pushed to that most concentrated shape on every input: its PMFs then look alike
up to a shift, which is why their smoothness has no spread over seeds. gamma does not enter.

    python saturation.py                     # the table for 33 bins (and results/saturation.json)
    python saturation.py --num-bins 23 --out /tmp/saturation_23.json      # another number of bins
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaffold import Field, parse_config, write_json

HERE = Path(__file__).resolve().parent
EPS = 1e-5  # Fourier_Head's const_inverse_softmax


def bin_centers(m: int) -> np.ndarray:
    return -1.0 + (2.0 * np.arange(m) + 1.0) / m


def basis(num_frequencies: int, m: int) -> np.ndarray:
    """E (m, N+1), E_ij = exp(i pi j z_i)."""
    return np.exp(1j * np.pi * np.outer(bin_centers(m), np.arange(num_frequencies + 1)))


def max_bin_mass(num_frequencies: int, m: int, k: int | None = None) -> float:
    """Exact max over a of bin k's mass (default: the max over all bins); float64 linear algebra."""
    e = basis(num_frequencies, m)
    gram_pinv = np.linalg.pinv(e.conj().T @ e)
    ks = range(m) if k is None else [k]
    return float(max(np.real(e[i].conj() @ gram_pinv @ e[i]) for i in ks))


def most_concentrated_pmf(num_frequencies: int, m: int, k: int) -> np.ndarray:
    """The PMF that attains max_bin_mass on bin k (for N < m: the Fejér kernel centred on bin k)."""
    e = basis(num_frequencies, m)
    a = np.linalg.pinv(e.conj().T @ e) @ e[k].conj()
    power = np.abs(e @ a) ** 2
    return power / power.sum()


def table(m: int = 33, grid=(1, 2, 4, 8, 16)) -> list[dict]:
    import torch

    from fourier_head import smoothness

    rows = []
    for n in grid:
        cap = max_bin_mass(n, m)
        pmf = most_concentrated_pmf(n, m, m // 2)
        rows.append({"num_frequencies": n, "num_bins": m, "cap": cap, "cap_closed_form": (n + 1) / m,
                     "cap_after_head_eps": (cap + EPS) / (1 + m * EPS),
                     "nll_floor": float(-np.log((cap + EPS) / (1 + m * EPS))),
                     "smoothness_of_most_concentrated": float(smoothness(torch.tensor(pmf)))})
    return rows


@dataclass
class Config:
    num_bins: int = Field(33, "bins m (33: 5-BPM buckets of 50..210 BPM)", low=2)
    num_frequencies: tuple = Field((1, 2, 4, 8, 16), "Fourier frequencies N of the table", low=1)
    out: str = Field(str(HERE / "results" / "saturation.json"), "where the table is written (json)")


def main(argv=None) -> None:
    cfg = parse_config(Config, argv, description=__doc__)
    rows = table(cfg.num_bins, cfg.num_frequencies)
    write_json(cfg.out, {"what": "max bin mass of an N-frequency Fourier head on m bins (saturation.py docstring)",
                         "rows": rows}, indent=2)
    for r in rows:
        print(f"N={r['num_frequencies']:2d}  cap {r['cap']:.6f} (= {r['num_frequencies'] + 1}/{r['num_bins']})  "
              f"NLL floor {r['nll_floor']:.4f}  smoothness {r['smoothness_of_most_concentrated']:.5f}")


if __name__ == "__main__":
    main()
