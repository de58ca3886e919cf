"""Kernel-level profile of one forward+backward of the Fourier head (and nn.Linear) at given shapes.

    python misc/benchmarks/profile_head.py [--shapes toy chronos-550]

Prints the CUDA kernels by total time and the count of launches; a tool for the performance work, its
output is not committed.
"""

import argparse

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from fourier_head import Fourier_Head

SHAPES = {"toy": (1024, 32, 50, 12), "decision-transformer": (1920, 128, 18, 8),
          "chronos-64": (2048, 384, 4096, 64), "chronos-550": (2048, 384, 4096, 550)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", nargs="+", default=["toy", "chronos-550"])
    parser.add_argument("--gamma", type=float, default=0.0)
    args = parser.parse_args()
    device = torch.device("cuda")
    for name in args.shapes:
        batch, d, m, n = SHAPES[name]
        x = torch.randn(batch, d, device=device, requires_grad=True)
        y = torch.randint(0, m, (batch,), device=device)
        for label, model in (("linear", nn.Linear(d, m)), ("fourier", Fourier_Head(d, m, n, args.gamma))):
            model = model.to(device)

            def step():
                out = model(x)
                loss = nn.functional.cross_entropy(out, y) + getattr(model, "loss_regularization", 0)
                loss.backward()

            for _ in range(5):
                step()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                for _ in range(10):
                    step()
                torch.cuda.synchronize()
            print(f"=== {name} {label}")
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60))


if __name__ == "__main__":
    main()
