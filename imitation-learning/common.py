"""Small helpers shared by the scripts: device choice, provenance, config parsing."""

import dataclasses
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def git_commit() -> str:
    """FOURIER_HEAD_COMMIT wins (the GPU machine has no .git), else `git rev-parse`."""
    commit = os.environ.get("FOURIER_HEAD_COMMIT")
    if commit:
        return commit
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(device) -> dict:
    device = torch.device(device)
    try:
        import ale_py
        ale = ale_py.__version__
    except ImportError:
        ale = None
    return {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
            "ale_py": ale, "platform": platform.platform(), "commit": git_commit(), "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "cpu_count": os.cpu_count()}


def parse_dataclass(cls, argv, doc: str, quick: dict | None = None, help: dict | None = None):
    """CLI flags from a dataclass's fields (tuples take several values); --quick applies a preset
    below the explicit flags."""
    import argparse
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    help = help or {}
    for f in dataclasses.fields(cls):
        name = "--" + f.name.replace("_", "-")
        h = help.get(f.name, f"default {f.default}")
        if isinstance(f.default, bool):
            p.add_argument(name, action=argparse.BooleanOptionalAction, default=None, help=h)
        elif isinstance(f.default, tuple):
            p.add_argument(name, nargs="+", type=type(f.default[0]) if f.default else str, default=None, help=h)
        else:
            p.add_argument(name, type=type(f.default), default=None, help=h)
    args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(p.parse_args(argv)).items() if v is not None}
    values = {**((quick or {}) if args.get("quick") else {}), **args}
    return cls(**values), p
