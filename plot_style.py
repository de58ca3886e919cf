"""One figure style for the whole repository: STIX serif fonts (shipped with matplotlib), fixed
colours per head, PNG output. Usage: `import plot_style; plot_style.use(); ...; plot_style.save(fig, path)`."""

from pathlib import Path

COLORS = {
    "linear": "#c0392b",          # red
    "gmm": "#8e44ad",             # purple
    "fourier": "#2471a3",         # blue (regularised, or the only Fourier line)
    "fourier_noreg": "#e67e22",   # orange (gamma = 0)
    "true": "#27ae60",            # green
    "regression": "#7f8c8d",      # grey
}


def use() -> None:
    """Apply the style (Agg backend, so it works headless)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({
        "font.family": "serif",
        "font.serif": ["STIXGeneral", "DejaVu Serif"],
        "mathtext.fontset": "stix",
        "font.size": 11,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "legend.fontsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
    })


def save(fig, path) -> Path:
    """Save `fig` as PNG (creating folders) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
