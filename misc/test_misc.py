"""What holds for every misc study: README blocks equal what the committed results give, bad flags stop with one
line before any work, --quick never writes committed outputs and labels its figures, run.sh's own flags."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

MISC = Path(__file__).resolve().parent


def run(*command, **kwargs):
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)


def test_readme_blocks_match_committed_results():
    done = run(sys.executable, MISC / "check_readmes.py")
    assert done.returncode == 0, done.stderr


def test_a_stale_block_is_named_and_nothing_is_written(tmp_path):
    copy = tmp_path / "misc"
    shutil.copytree(MISC, copy, ignore=shutil.ignore_patterns("runs", "figures", "assets", "__pycache__", "*.png"))
    shutil.copy(MISC.parent / "README.md", tmp_path / "README.md")
    readme = copy / "scaling-law" / "README.md"
    edited = readme.read_text().replace("| 128 | 2 | yes |", "| 128 | 2 | NO |", 1)
    readme.write_text(edited)
    done = run(sys.executable, copy / "check_readmes.py")
    assert done.returncode == 1
    assert done.stderr.strip() == ("stale: misc/scaling-law/README.md block 'results' differs from the committed "
                                   "results; python misc/check_readmes.py --write regenerates it")
    assert readme.read_text() == edited


REFUSED = [  # (script, flags, the start of the one line)
    ("head-demo/train.py", ["--lr", "-1"], "error: --lr must be > 0.0 (got -1.0)"),
    ("head-demo/train.py", ["--targets", "triangle"],
     "error: --targets must be one of square-wave, mog-10, mog-33 (got 'triangle')"),
    ("head-demo/train.py", ["--quick", "--gif", str(MISC / "assets" / "head_demo.gif")], "error: --gif "),
    ("fourier-features/ntk.py", ["--width", "0"], "error: --width must be >= 1 (got 0)"),
    ("fourier-features/ntk.py", ["--head-frequencies", "40"], "error: need --full-grid-points > 2 x --band-limit"),
    ("scaling-law/scaling_law.py", ["--amplitude", "1.5"], "error: --amplitude must be <= 1.0 (got 1.5)"),
    ("scaling-law/scaling_law.py", ["--fit-from", "100"], "error: --fit-from must be <= 60 for m = 128 (got 100)"),
    ("smoothness-appendix/square_waves.py", ["--max-sines", "5"], "error: need max(--panel-sines) <= --max-sines"),
    ("smoothness-appendix/square_waves.py", ["--quick", "--fig-dir", str(MISC / "smoothness-appendix" / "figures")],
     "error: --fig-dir "),
    ("smoothness-appendix/noise_table.py", ["--num-trials", "1"], "error: --num-trials must be >= 2 (got 1)"),
    ("smoothness-appendix/noise_table.py", ["--colour", "red"], "error: unrecognized arguments: --colour red"),
]


@pytest.mark.parametrize("script, flags, line", REFUSED, ids=[f"{s.split('/')[1]} {' '.join(f)}"[:50]
                                                              for s, f, _ in REFUSED])
def test_bad_flags_stop_before_any_work(load_study, capsys, tmp_path, monkeypatch, script, flags, line):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        load_study(MISC / script).main(flags)
    message = capsys.readouterr().err + (stop.value.code if isinstance(stop.value.code, str) else "")
    assert stop.value.code != 0 and message.startswith(line) and len(message.strip().splitlines()) == 1, message
    assert not any(tmp_path.iterdir())


CUDA = "cuda" if not torch.cuda.is_available() else "cuda:99"


@pytest.mark.parametrize("flags, line", [(["--steps", "0"], "error: --steps must be >= 1 (got 0)\n"),
                                         (["--device", CUDA], f"error: --device {CUDA}: ")])
def test_the_command_line_gets_one_line_and_no_traceback(tmp_path, flags, line):
    done = run(sys.executable, MISC / "head-demo" / "train.py", *flags, cwd=tmp_path)
    assert done.returncode != 0 and done.stdout == "" and done.stderr.startswith(line), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not any(tmp_path.iterdir())


def test_quick_figures_say_so(tmp_path):
    import matplotlib.pyplot as plt

    sys.path.insert(0, str(MISC))
    from misc_common import save_figure

    for quick in (False, True):
        fig, ax = plt.subplots()
        fig.suptitle("a figure")
        save_figure(fig, tmp_path / f"{quick}.png", quick)
        assert fig.get_suptitle().startswith("QUICK RUN") == quick and "a figure" in fig.get_suptitle()


def test_run_sh_help_and_python():
    done = run("bash", MISC / "run.sh", "--help")
    assert done.returncode == 0 and "bash misc/run.sh --quick" in done.stdout and "==" not in done.stdout
    done = run("bash", MISC / "run.sh", "--quick", env={"PATH": "/usr/bin:/bin", "PYTHON": "false"})
    assert done.returncode != 0 and done.stdout.startswith("== head-demo/train.py --quick")
