"""Every generated README block of misc/, regenerated from the committed results: CPU, seconds, no training.

    python misc/check_readmes.py           # writes nothing; exit 0 if every block is up to date, else 1 with
                                           # one line per stale block
    python misc/check_readmes.py --write   # rewrite the stale blocks from the committed results

A block is the text between `<!-- name:start -->` and `<!-- name:end -->` (scaffold.update_block). Each study
makes its own blocks (`readme_blocks()`, from the JSON in its results/ alone) and writes them after a full
run; this script checks that the committed READMEs still say what the committed results give. The root
README's head-speed block comes from misc/benchmarks/head_speed.json; it is checked here too.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from scaffold import Field, parse_config, update_block

MISC = Path(__file__).resolve().parent


def load(path: Path):
    """A study script as a module (its folder on sys.path for its sibling imports)."""
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def head_speed_blocks() -> dict[str, str]:
    head_speed = load(MISC / "benchmarks" / "head_speed.py")
    return {"head-speed": head_speed.readme_table(json.loads((MISC / "benchmarks" / "head_speed.json").read_text()))}


# README -> the function giving its blocks {name: text} from committed results
READMES = {
    MISC / "head-demo" / "README.md": lambda: load(MISC / "head-demo" / "plot_demo.py").readme_blocks(),
    MISC / "scaling-law" / "README.md": lambda: load(MISC / "scaling-law" / "scaling_law.py").readme_blocks(),
    MISC / "smoothness-appendix" / "README.md": lambda: {
        **load(MISC / "smoothness-appendix" / "square_waves.py").readme_blocks(),
        **load(MISC / "smoothness-appendix" / "noise_table.py").readme_blocks()},
    MISC / "fourier-features" / "README.md": lambda: load(MISC / "fourier-features" / "ntk.py").readme_blocks(),
    MISC.parent / "README.md": head_speed_blocks,
}


@dataclass
class Config:
    write: bool = Field(False, "rewrite stale blocks (default: only check, write nothing)")


def main(argv=None) -> int:
    cfg = parse_config(Config, argv, description=__doc__)
    stale = 0
    for readme, blocks in READMES.items():
        for name, text in blocks().items():
            if update_block(readme, name, text, check=not cfg.write):
                stale += 1
                where = readme.relative_to(MISC.parent)
                print(f"{'rewrote' if cfg.write else 'stale'}: {where} block '{name}' differs from the committed "
                      f"results{'' if cfg.write else '; python misc/check_readmes.py --write regenerates it'}",
                      file=sys.stderr if not cfg.write else sys.stdout)
    return 1 if stale and not cfg.write else 0


if __name__ == "__main__":
    sys.exit(main())
