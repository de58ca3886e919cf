"""Where a training step's time goes, linear head vs Fourier head, for the models of end_to_end.py.

    python misc/benchmarks/profile_step.py [--models "decision transformer" "audio encoder"]

For each model and head: the wall time of a step (synchronised), the CPU time the profiler attributes to
each op (self), the GPU time per kernel and the number of kernel launches, and the ops whose CPU time
differs most between the heads. A tool for the performance work; its output is not committed.
"""

import argparse
import gc
import statistics
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

import end_to_end
import fourier_head


def wall_ms(step, steps: int = 30, cpu: bool = False):
    """Wall time per step (synchronised); with cpu=True also the process's CPU time per step."""
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    wall, busy = (time.perf_counter() - t0) * 1e3 / steps, (time.process_time() - c0) * 1e3 / steps
    return (wall, busy) if cpu else wall


def profile_ops(step, steps: int = 10):
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    cpu, launches = defaultdict(float), 0
    for event in prof.key_averages():
        cpu[event.key] += event.self_cpu_time_total / steps / 1e3
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            launches += 1
    return prof, cpu, launches / steps


def interleaved(name: str, device, rounds: int = 7):
    """Wall time per step of both heads' models, alive together, timed alternately (median of rounds),
    with Python's garbage collector on and off: separates the heads from the order they run in."""
    steps = {head: end_to_end.make_step(end_to_end.MODELS[name], head, device, compiled=False)[0]
             for head in ("linear", "fourier")}
    for collector in ("gc on", "gc off"):
        (gc.enable if collector == "gc on" else gc.disable)()
        times = {head: [] for head in steps}
        for _ in range(rounds):
            for head, step in steps.items():
                times[head].append(wall_ms(step, cpu=True))
        med = {head: [statistics.median(x) for x in zip(*t)] for head, t in times.items()}
        print(f"=== {name}, interleaved, {collector}: wall linear {med['linear'][0]:.2f} ms, fourier "
              f"{med['fourier'][0]:.2f} ms (ratio {med['fourier'][0] / med['linear'][0]:.3f}); process CPU time "
              f"linear {med['linear'][1]:.2f} ms, fourier {med['fourier'][1]:.2f} ms")
    gc.enable()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["decision transformer", "audio encoder"],
                        choices=list(end_to_end.MODELS))
    parser.add_argument("--interleaved", action="store_true", help="only the interleaved wall times")
    args = parser.parse_args()
    device = torch.device("cuda")
    for name in args.models:
        interleaved(name, device)
        if args.interleaved:
            continue
        results = {}
        variants = (("linear", "linear", True), ("fourier", "fourier", True), ("fourier-eager", "fourier", False))
        for label, head, fused in variants:
            fourier_head._FUSED.pop("module", None)  # imported again on the next CUDA forward
            if not fused:
                fourier_head._FUSED["module"] = None  # the plain path
            step, _ = end_to_end.make_step(end_to_end.MODELS[name], head, device, compiled=False)
            ms = wall_ms(step)
            prof, cpu, launches = profile_ops(step)
            results[label] = cpu
            print(f"=== {name} / {label}: {ms:.2f} ms per step (wall, synchronised), {launches:.0f} GPU ops per step, "
                  f"profiler CPU total {sum(cpu.values()):.2f} ms")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=50))
        fourier_head._FUSED.pop("module", None)
        diff = {k: results["fourier"].get(k, 0) - results["linear"].get(k, 0)
                for k in set(results["fourier"]) | set(results["linear"])}
        print(f"=== {name}: ops whose self CPU time per step differs most (fourier - linear, ms)")
        for key, value in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:25]:
            print(f"{value:+8.3f}  {key}")


if __name__ == "__main__":
    main()
