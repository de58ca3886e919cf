"""What every experiment of this repository shares: config, run identity, provenance, atomic results,
device choice, paired statistics, README blocks, optional tracking. Installed with the package (`pip install -e .`).

    from scaffold import Field, parse_config, pick_device, prepare_run, provenance, write_json

    @dataclass
    class Config:
        lr: float = Field(1e-3, "learning rate", low=0.0, low_open=True)
        epochs: int = Field(500, "training epochs", low=1)
        head: str = Field("fourier", "output head", choices=("linear", "fourier"))

    cfg = parse_config(Config, description=__doc__, quick=dict(epochs=2))   # CLI -> validated dataclass

Every bad value stops the program before any work with one line, `error: --epochs must be >= 1 (got 0)`,
and exit status 2. A run directory stores its config; rerunning it with other settings stops with an
error naming the differing fields (or runs elsewhere, or `--force` overwrites it): results are never
silently reused. `write_json` replaces a file atomically, so a `metrics.json` that marks a run finished is
never half written.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent


# ------------------------------------------------------------------------------------------------
# config: a typed dataclass, one flag per field, validated
# ------------------------------------------------------------------------------------------------

def Field(default, help: str, *, low=None, high=None, low_open: bool = False, choices=None,  # noqa: N802
          allow_inf: bool = False):
    """A dataclass field with its help text and its valid range (low <= value <= high, or low < value
    with low_open) or choices. Tuples become multi-value flags; their items are checked one by one.
    Floats must be finite unless `allow_inf` (then +-inf pass the range check; nan never does)."""
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "choices": choices,
            "allow_inf": allow_inf}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for a multi-value field")
    return dataclasses.field(default=default, metadata=meta)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # `--lr -1e-3` is a (refused) value, not a flag: argparse's own pattern misses the exponent
        self._negative_number_matcher = re.compile(r"^-(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")

    def error(self, message):  # one line, exit status 2 (argparse prints the usage first)
        self.exit(2, f"error: {message}\n")


def _check(name: str, value, meta: dict) -> Optional[str]:
    """The error message for a value outside the field's range, or None."""
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if isinstance(item, float) and (math.isnan(item) or (math.isinf(item) and not meta.get("allow_inf"))):
            return f"--{name} must be a finite number (got {item})"
        if meta.get("choices") is not None and item not in meta["choices"]:
            return f"--{name} must be one of {', '.join(map(str, meta['choices']))} (got {item!r})"
        low, high = meta.get("low"), meta.get("high")
        if low is not None and (item < low or (meta.get("low_open") and item == low)):
            return f"--{name} must be {'>' if meta.get('low_open') else '>='} {low} (got {item})"
        if high is not None and item > high:
            return f"--{name} must be <= {high} (got {item})"
    return None


def parse_config(cls, argv=None, description: Optional[str] = None, quick: Optional[dict] = None,
                 extra=None, presets: Optional[dict] = None, check=None):
    """Command-line flags -> a validated instance of the dataclass `cls`.

    Each field becomes `--field-name` (bools: `--x/--no-x`; tuples: several values), with its help text and
    default. `--quick` (when `quick` is given) applies that preset below the explicit flags; `presets`
    ({"seed_sizes": {...}}) adds more such flags (`--seed-sizes`), below `--quick`. `extra(parser)` may add
    flags that are not config (e.g. `--force`); they come back as attributes of the namespace `cfg._args`.
    `check(cfg)` returns a message for settings that are wrong together (or None). A value outside a
    field's range, or a failed check, exits with one line and status 2, before any work.
    """
    parser = _Parser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for f in fields.values():
        flag, meta = "--" + f.name.replace("_", "-"), f.metadata
        text = f"{meta.get('help', '')} (default: {f.default})".replace("%", "%%")  # argparse formats help
        if isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif isinstance(f.default, tuple):
            kind = type(f.default[0]) if f.default else str
            parser.add_argument(flag, nargs="+", type=kind, default=None, help=text)
        else:
            parser.add_argument(flag, type=type(f.default) if f.default is not None else str, default=None,
                                help=text, choices=meta.get("choices"))
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help="a small CPU run written under runs/quick/")
    for name, preset in (presets or {}).items():
        parser.add_argument("--" + name.replace("_", "-"), action="store_true",
                            help="preset: " + ", ".join(f"{k}={v}" for k, v in preset.items()).replace("%", "%%"))
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    given = {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items()
             if k in fields and v is not None}
    values = {}
    for name, preset in (presets or {}).items():
        if getattr(args, name):
            values.update(preset)
    values.update(quick if quick is not None and args.quick else {})
    values.update(given)
    for name, value in values.items():
        message = _check(name.replace("_", "-"), value, fields[name].metadata)
        if message:
            parser.error(message)
    cfg = cls(**values)
    object.__setattr__(cfg, "_args", args)
    message = check(cfg) if check is not None else None
    if message:
        parser.error(message)
    return cfg


def config_dict(cfg) -> dict:
    """The dataclass as a JSON-ready dict (tuples as lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


# ------------------------------------------------------------------------------------------------
# run identity, atomic files
# ------------------------------------------------------------------------------------------------

def write_json(path, obj, indent: int = 1) -> None:
    """Write JSON atomically: a temporary file in the same folder, then one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=indent) + "\n")
    os.replace(tmp, path)


def config_differences(saved: dict, wanted: dict, ignore=()) -> list[str]:
    """Fields whose values differ, as 'name: saved -> wanted'."""
    names = sorted((set(saved) | set(wanted)) - set(ignore))
    return [f"{n}: {saved.get(n, '<absent>')!r} -> {wanted.get(n, '<absent>')!r}" for n in names
            if saved.get(n) != wanted.get(n)]


def _clash(run_dir, diff, more: int = 0) -> SystemExit:
    extra = f" (and {more} more of the selected runs)" if more else ""
    return SystemExit(f"error: {run_dir} holds a run with other settings ({'; '.join(diff)}){extra}; "
                      "use another output directory, or --force to overwrite it")


def run_state(run_dir, config: dict, force: bool = False, ignore=(), done_file: str = "metrics.json") -> str:
    """What `run_dir` holds for a run with `config`, writing nothing: 'new', 'resume' (same config, not
    finished) or 'done' (same config, finished). Another config stops the program with one line naming the
    differing fields, unless `force` ('new': prepare_run empties it). Fields in `ignore` may differ."""
    run_dir = Path(run_dir)
    saved_file = run_dir / "config.json"
    if force or not saved_file.exists():
        return "new"
    diff = config_differences(json.loads(saved_file.read_text()), config, ignore)
    if diff:
        raise _clash(run_dir, diff)
    return "done" if (run_dir / done_file).exists() else "resume"


def prepare_run(run_dir, config: dict, force: bool = False, ignore=(), done_file: str = "metrics.json") -> str:
    """Claim `run_dir` for a run with `config` (run_state, then: a new run's folder is emptied when `force`
    and gets config.json)."""
    state = run_state(run_dir, config, force, ignore, done_file)
    if state == "new":
        run_dir = Path(run_dir)
        if force and run_dir.exists():
            shutil.rmtree(run_dir)
        write_json(run_dir / "config.json", config)
    return state


def prepare_runs(runs: dict, force: bool = False, ignore=(), done_file: str = "metrics.json") -> dict:
    """prepare_run for a sweep {run_dir: config}: every clash is found, and reported in one line, before
    any folder is claimed."""
    if not force:
        clashes = []
        for run_dir, config in runs.items():
            try:
                run_state(run_dir, config, False, ignore, done_file)
            except SystemExit:
                saved = json.loads((Path(run_dir) / "config.json").read_text())
                clashes.append((run_dir, config_differences(saved, config, ignore)))
        if clashes:
            raise _clash(*clashes[0], more=len(clashes) - 1)
    return {d: prepare_run(d, c, force, ignore, done_file) for d, c in runs.items()}


# ------------------------------------------------------------------------------------------------
# device, provenance, seeds
# ------------------------------------------------------------------------------------------------

def pick_device(name: str = "auto"):
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> torch.device, or one line and exit 2 when it is not there."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SystemExit(f"error: unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit(f"error: --device {name}: this torch build or machine has no CUDA GPU "
                             "(use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SystemExit(f"error: --device {name}: only {torch.cuda.device_count()} GPU(s) here")
    elif device.type != "cpu":
        raise SystemExit(f"error: --device {name}: only cpu and cuda are supported")
    return device


def setup_distributed(device: str = "auto"):
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) the process group is initialised (nccl on
    GPUs, gloo otherwise) and each rank takes its LOCAL_RANK GPU; else one process on pick_device(device)."""
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, pick_device(device)
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    dev = torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(dev)
    return dist.get_rank(), dist.get_world_size(), dev


def git_commit() -> str:
    """The repository's commit (git first; FOURIER_HEAD_COMMIT where there is no .git, e.g. a GPU machine)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("FOURIER_HEAD_COMMIT", "unknown")


def provenance(device=None, **extra) -> dict:
    """Where and with what a result was made: commit, versions, machine, GPU, command, date."""
    import numpy
    import torch

    device = torch.device(device) if device is not None else None
    gpu = torch.cuda.get_device_name(device) if device is not None and device.type == "cuda" else None
    commit, named = git_commit(), os.environ.get("FOURIER_HEAD_COMMIT")
    if named and not (commit.startswith(named) or named.startswith(commit.split("+")[0])):
        extra.setdefault("commit_named", named)  # a checkout whose git disagrees with the commit it was told
    return {"commit": commit, "python": sys.version.split()[0], "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "device": str(device) if device is not None else None, "gpu": gpu,
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **extra}


def seed_everything(seed: int) -> None:
    import random

    import numpy
    import torch

    random.seed(seed)
    numpy.random.seed(seed)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# paired statistics over seeds
# ------------------------------------------------------------------------------------------------

def bootstrap_interval(x, level: float = 0.95, exact_up_to: int = 10, resamples: int = 100_000) -> list:
    """Percentile bootstrap interval of the mean of x. Up to `exact_up_to` values, exact: every resample
    (multiset of counts c, probability n!/(prod c_i! n^n)) enumerated, so no random numbers; the quantiles
    are those of the inverted CDF (np.quantile method="inverted_cdf" over all n^n resamples). Above, a
    seeded Monte Carlo estimate."""
    import itertools

    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    a = (1 - level) / 2
    if n == 0:
        return [math.nan, math.nan]
    if n <= exact_up_to:
        means, probs = [], []
        log_n_fact, log_nn = math.lgamma(n + 1), n * math.log(n)
        for combo in itertools.combinations_with_replacement(range(n), n):
            c = np.bincount(combo, minlength=n)
            means.append(float(c @ x) / n)
            probs.append(math.exp(log_n_fact - sum(math.lgamma(k + 1) for k in c) - log_nn))
        order = np.argsort(means, kind="stable")
        means, cdf = np.array(means)[order], np.cumsum(np.array(probs)[order])
        cdf /= cdf[-1]
        lo = means[np.searchsorted(cdf, a - 1e-12)]
        hi = means[np.searchsorted(cdf, 1 - a - 1e-12)]
        return [float(lo), float(hi)]
    rng = np.random.default_rng(0)
    m = x[rng.integers(0, n, (resamples, n))].mean(1)
    return [float(v) for v in np.quantile(m, [a, 1 - a], method="inverted_cdf")]


# ------------------------------------------------------------------------------------------------
# generated README blocks
# ------------------------------------------------------------------------------------------------

def update_block(path, name: str, text: str, check: bool = False) -> bool:
    """Replace the text between `<!-- name:start -->` and `<!-- name:end -->` in `path`. Returns whether it
    changed; with `check`, writes nothing (CI: a generated block that differs from its results is stale)."""
    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    content = path.read_text()
    if start not in content or end not in content:
        raise SystemExit(f"error: {path} has no '{start}' ... '{end}' block")
    head, rest = content.split(start, 1)
    new = f"{head}{start}\n{text.strip()}\n{end}{rest.split(end, 1)[1]}"
    if new != content and not check:
        path.write_text(new)
    return new != content


# ------------------------------------------------------------------------------------------------
# optional tracking
# ------------------------------------------------------------------------------------------------

class Tracker:
    """wandb if asked for (`--wandb`), offline unless WANDB_MODE says otherwise; a no-op otherwise.
    The run's own JSON files stay the source of truth."""

    def __init__(self, enabled: bool, project: str, config: dict, name: Optional[str] = None, directory=None):
        self.run = None
        if enabled:
            try:
                import wandb
            except ImportError:
                raise SystemExit("error: --wandb needs the wandb package (pip install wandb)") from None
            os.environ.setdefault("WANDB_MODE", "offline")
            if directory is not None:
                Path(directory).mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(project=project, config=config, name=name, dir=directory)

    def log(self, metrics: dict, step: Optional[int] = None) -> None:
        if self.run is not None:
            self.run.log(metrics, step=step)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
