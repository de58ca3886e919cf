"""What the misc studies share on top of `scaffold`: the --quick guard, timed provenance, the commit as the
READMEs print it, and figures marked "quick run". Each study script puts misc/ on sys.path and imports it:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # misc/: misc_common
    from misc_common import Clock, machine_text, measured, refuse_quick_into_committed, save_figure

(Not `common`: other folders have had a common.py, and one pytest process imports them all.)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import plot_style
from scaffold import provenance, update_block, write_json

MISC = Path(__file__).resolve().parent


def refuse_quick_into_committed(study: Path, quick: bool, **paths) -> None:
    """A --quick run writes only where it is told, and never into the study's committed results/ or figures/,
    nor misc/assets/ (one line and exit 2, before any work)."""
    if not quick:
        return
    committed = [Path(study).resolve() / "results", Path(study).resolve() / "figures", MISC / "assets"]
    for flag, path in paths.items():
        resolved = Path(path).resolve()
        if any(resolved == c or c in resolved.parents for c in committed):
            print(f"error: --{flag.replace('_', '-')} {path}: quick-run outputs never go into the committed "
                  "results/, figures/ or misc/assets/ (a quick run's default is runs/quick/)", file=sys.stderr)
            raise SystemExit(2)


def saved_results(path) -> dict:
    """A run's saved JSON (for --plot-only), or one line and exit before any work."""
    if not Path(path).exists():
        raise SystemExit(f"error: {path} not found; run without --plot-only first")
    return json.loads(Path(path).read_text())


class Clock:
    """Wall and CPU seconds since it was made (the READMEs quote both)."""

    def __init__(self):
        self.wall, self.cpu = time.time(), time.process_time()

    def seconds(self) -> dict:
        return {"wall_seconds": time.time() - self.wall, "cpu_seconds": time.process_time() - self.cpu}


def measured(device="cpu", **extra) -> dict:
    """scaffold.provenance plus the 1-minute load average: the CPU timings were often taken on a shared machine."""
    return provenance(device, load_average_1min=os.getloadavg()[0], **extra)


def commit_text(prov: dict) -> str:
    """The commit as the READMEs print it: a full hash (older results) cut to 10 characters, or scaffold's
    short hash, with ' + uncommitted changes' where the tree was dirty ('+dirty', or older results' `dirty`)."""
    commit = str(prov["commit"])
    dirty = commit.endswith("+dirty") or bool(prov.get("dirty"))
    return commit.removesuffix("+dirty")[:10] + (" + uncommitted changes" if dirty else "")


def machine_text(prov: dict) -> str:
    """'2-core CPU (1-min load average 2.4: the machine was shared) (Linux-…), torch 2.13.0+cpu, commit aff7a3d36e',
    the end of the studies' "Measured: ... on a ..." lines."""
    return (f"{prov['cpu_count']}-core CPU (1-min load average {prov.get('load_average_1min', float('nan')):.1f}: the "
            f"machine was shared) ({prov['platform']}), torch {prov['torch']}, commit {commit_text(prov)}")


def quick_title(title: str, quick: bool) -> str:
    return f"QUICK RUN (smoke test, not a result): {title}" if quick else title


def save_figure(fig, path, quick: bool) -> Path:
    """plot_style.save, with "QUICK RUN" as (or in front of) the figure's title for a --quick run."""
    if quick:
        fig.suptitle(quick_title(fig.get_suptitle(), quick).rstrip(": "), color="#c0392b", y=1.02)
    return plot_style.save(fig, path)


def save_study(out_dir: Path, config: dict, env: dict, results_path: Path, results: dict, summary: dict,
               readme: Path, readme_blocks, committed: bool) -> None:
    """A study's outputs: config.json, env.json, its results JSON and summary.json (each atomic); then, for a
    full run into the committed results/, the README blocks regenerated from them (`readme_blocks()`)."""
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "env.json", env)
    write_json(results_path, results, indent=None)
    write_json(out_dir / "summary.json", summary)
    if committed:
        for name, text in readme_blocks().items():
            update_block(readme, name, text)
