"""Where the CPU time of one forward+backward goes: a tool for the performance work (output not committed).

    python misc/benchmarks/cpu_overhead.py [--shapes toy chronos-550] [--profile]

Small heads are launch-bound: the GPU waits for Python. This prints, per shape, the CPU time of one
fwd+bwd (cross-entropy) of nn.Linear and of Fourier_Head measured without synchronising, next to
the wall time per step when many steps run back to back (whichever of CPU and GPU is slower), the
cost of one Triton launch through the JIT and through the cached launcher, and with --profile the
Python functions that take the time (cProfile).
"""

import argparse
import cProfile
import pstats
import statistics
import time

import torch
from torch import nn

import fourier_head_fused
from fourier_head import Fourier_Head

SHAPES = {"toy": (1024, 32, 50, 12), "decision-transformer": (1920, 128, 18, 8),
          "chronos-64": (2048, 384, 4096, 64), "chronos-550": (2048, 384, 4096, 550)}


def step_fn(model, x, y):
    def step():
        out = model(x)
        loss = nn.functional.cross_entropy(out, y)
        reg = getattr(model, "loss_regularization", None)
        (loss if reg is None else loss + reg).backward()
    return step


def cpu_and_wall_us(step, repeats=200):
    """(median CPU us of one call, with the GPU queue kept short; wall us per step back to back)."""
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    cpu = []
    for i in range(repeats):
        t0 = time.perf_counter()
        step()
        cpu.append((time.perf_counter() - t0) * 1e6)
        if i % 10 == 9:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    torch.cuda.synchronize()
    return statistics.median(cpu), (time.perf_counter() - t0) * 1e6 / repeats


def launch_us(repeats=2000):
    """CPU us of one launch of the small forward kernel through the JIT, and through `_launch`."""
    rows, d, n2, m = 1024, 32, 26, 50
    x = torch.randn(rows, d, device="cuda")
    weight, bias = torch.randn(n2, d, device="cuda"), torch.randn(n2, device="cuda")
    basis = torch.randn(n2, 2 * m, device="cuda")
    out = torch.empty(rows, m, device="cuda")
    grid = (fourier_head_fused._cdiv(rows, 32),)
    kernel = fourier_head_fused._small_fwd_kernel
    args = (x, d, 1, weight, d, 1, bias, basis, out, out, rows, d, n2, m, 1e-5)
    meta = dict(R=32, BK=32, BM=64, BD=32, STORE_COEFFS=False)
    result = {}

    def jit():
        kernel[grid](*args, **meta, num_warps=4)

    def cached():
        fourier_head_fused._launch(kernel, grid, args, meta, 4)

    for name, fn in (("jit", jit), ("cached", cached), ("torch.empty", lambda: torch.empty(rows, m, device="cuda")),
                     ("addmm", lambda: torch.addmm(out, out, torch.empty(m, m, device="cuda")))):
        try:
            for _ in range(20):
                fn()
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for i in range(repeats):
                fn()
                if i % 200 == 199:
                    torch.cuda.synchronize()
            result[name] = round((time.perf_counter() - t0) * 1e6 / repeats, 1)
        except Exception as error:  # noqa: BLE001 - a diagnostic: report and go on
            result[name] = repr(error)[:200]
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--jit-launch", action="store_true", help="launch through kernel[grid](...) only")
    args = parser.parse_args()
    if args.jit_launch:
        fourier_head_fused._DIRECT = False
    print("launch us:", launch_us())
    for name in args.shapes:
        batch, d, m, n = SHAPES[name]
        x = torch.randn(batch, d, device="cuda", requires_grad=True)
        y = torch.randint(0, m, (batch,), device="cuda")
        row = {}
        for label, model in (("linear", nn.Linear(d, m)), ("fourier", Fourier_Head(d, m, n))):
            step = step_fn(model.cuda(), x, y)
            cpu, wall = cpu_and_wall_us(step)
            row[label] = f"cpu {cpu:.0f} us, wall {wall:.0f} us"
            if args.profile and label == "fourier":
                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(200):
                    step()
                profiler.disable()
                torch.cuda.synchronize()
                print(f"--- cProfile {name} fourier, 200 steps")
                pstats.Stats(profiler).sort_stats("tottime").print_stats(22)
        print(f"=== {name}: {row}")


if __name__ == "__main__":
    main()
