"""Forward+backward time and peak memory: nn.Linear vs Fourier_Head vs the published algorithm.

    python misc/benchmarks/head_speed.py --out misc/benchmarks/head_speed.json

Runs on CUDA (timings with CUDA events, median of repeats after warm-up; peak memory is
max_memory_allocated during one fwd+bwd minus what was allocated before it). On a CPU it runs the
tiny `--quick` shapes only, as a smoke test; its numbers mean nothing.

`NaiveFourierHead` is written here from the paper's algorithm as the reference implements it:
autocorrelation by a grouped complex conv1d (groups = batch), then the density as a dense
(batch, m, N) complex sum. It is the "naive" column of the table.
"""

import argparse
import datetime
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import contextlib

import fourier_head
from fourier_head import Fourier_Head
from scaffold import git_commit, update_block

try:
    import fourier_head_fused
except ImportError:  # no Triton: every head runs the plain path
    fourier_head_fused = None

SHAPES = [  # name, batch rows, d, m, N
    ("toy", 1024, 32, 50, 12),
    ("decision-transformer", 1920, 128, 18, 8),
    ("chronos-64", 2048, 384, 4096, 64),
    ("chronos-256", 2048, 384, 4096, 256),
    ("chronos-550", 2048, 384, 4096, 550),
    ("chronos-550", 8192, 384, 4096, 550),
]
QUICK_SHAPES = [("toy", 64, 32, 50, 12), ("chronos-64-small", 16, 32, 512, 64)]


class NaiveFourierHead(nn.Module):
    """The published algorithm, step by step (grouped conv1d autocorrelation, dense PDF sum)."""

    def __init__(self, dim_input, dim_output, num_frequencies, gamma=0.0, eps=1e-5):
        super().__init__()
        self.n, self.m, self.gamma, self.eps = num_frequencies, dim_output, gamma, eps
        self.fc_extract_autocorrelation_params = nn.Linear(dim_input, 2 * (num_frequencies + 1))
        edges = torch.linspace(-1, 1, dim_output + 1)
        self.register_buffer("centers", (edges[:-1] + edges[1:]) / 2, persistent=False)
        self.register_buffer("k", torch.arange(num_frequencies + 1, dtype=torch.float32), persistent=False)

    def forward(self, x):
        params = self.fc_extract_autocorrelation_params(x.reshape(-1, x.shape[-1]))
        n1 = self.n + 1
        a = torch.complex(params[:, :n1], params[:, n1:])  # (B, N+1)
        batch = a.shape[0]
        # c_k = sum_j a_{j+k} conj(a_j): conv1d is a cross-correlation; one group per row
        c = nn.functional.conv1d(a[None], a[:, None, :].conj().resolve_conj(), padding=n1 - 1, groups=batch)
        c = c[0, :, n1 - 1:]  # (B, N+1)
        c_hat = c[:, 1:] / c[:, :1].real
        phase = torch.exp(1j * math.pi * self.centers[:, None] * self.k[None, 1:])  # (m, N)
        pdf = 0.5 + (c_hat[:, None, :] * phase[None]).sum(-1).real  # the (B, m, N) tensor
        pmf = pdf / pdf.sum(-1, keepdim=True)
        self.loss_regularization = self.gamma * 2 * (2 * math.pi ** 2 * self.k ** 2 * c.abs() ** 2).sum(-1).mean()
        return torch.log(pmf + self.eps).reshape(*x.shape[:-1], self.m)


def fwd_bwd(model, x, y):
    out = model(x)
    loss = nn.functional.cross_entropy(out, y)
    if isinstance(model, Fourier_Head):  # as a training loop adds regularization_loss(model)
        reg = model.loss_regularization if model.regularizion_gamma != 0 else None
    else:
        reg = getattr(model, "loss_regularization", None)
    if reg is not None:
        loss = loss + reg
    loss.backward()


def measure(model, x, y, device, repeats):
    """(median ms, peak MiB above the resting allocation) of one forward+backward; None on OOM."""
    try:
        for _ in range(3):
            fwd_bwd(model, x, y)
        if device.type != "cuda":
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fwd_bwd(model, x, y)
                times.append((time.perf_counter() - t0) * 1e3)
            return statistics.median(times), None
        torch.cuda.synchronize()
        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fwd_bwd(model, x, y)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        model.zero_grad(set_to_none=False)
        x.grad = None
        torch.cuda.synchronize()
        resting = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fwd_bwd(model, x, y)
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - resting) / 2 ** 20
        return statistics.median(times), peak
    except torch.OutOfMemoryError:
        return None, None
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def measure_graphed(model, x, y, repeats):
    """ms of one forward+backward replayed from a CUDA graph: the GPU's own time, without the CPU's
    kernel launches (what a graphed or large, GPU-bound training step pays for the head)."""
    # A fresh input leaf: the eager timings' autograd nodes for x were made on the default stream, and
    # one kept alive (the naive head stores its regulariser's graph) would break the capture.
    x = x.detach().clone().requires_grad_(True)
    if getattr(model, "loss_regularization", None) is not None:
        model.loss_regularization = None  # a stored regulariser keeps its graph (and nodes) alive
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                fwd_bwd(model, x, y)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=side):
            fwd_bwd(model, x, y)
        for _ in range(3):
            graph.replay()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            graph.replay()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / repeats
    except (RuntimeError, torch.OutOfMemoryError) as error:  # e.g. an op that cannot be captured
        print(f"  (no CUDA-graph timing: {str(error).splitlines()[0]})")
        return None
    finally:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def readme_table(data: dict) -> str:
    """Markdown table of a head_speed.json (for the root README)."""
    p = data["provenance"]
    ratio = lambda a, b: f"{a / b:.2f}×" if a and b else "–"
    num = lambda v, fmt: "OOM" if v is None else format(v, ".2f" if fmt == ".0f" and v < 10 else fmt)
    lines = [f"Forward+backward (cross-entropy) of the head alone on {p['gpu']}, torch {p['torch']}, commit "
             f"`{str(p['commit'])[:7]}`, {p['date'][:10]}; {p['timing']}. \"Fourier\" is the default path "
             f"(fused Triton kernels: {'on' if p.get('fused') else 'off'}), \"unfused\" the same head with the "
             "kernels off (eager PyTorch); \"graphed\" replays one forward+backward from a CUDA graph, i.e. the "
             "GPU's own time without the CPU's kernel launches. \"naive\" = the published algorithm "
             "(grouped conv1d autocorrelation + dense (batch, m, N) PDF), written from the math.", "",
             "| shape | batch | d | m | N | linear ms | Fourier ms | Fourier / linear | graphed linear ms "
             "| graphed Fourier ms | graphed Fourier / linear | unfused Fourier ms | naive ms | naive / Fourier "
             "| linear MiB | Fourier MiB | Fourier / linear MiB | naive MiB |", "|" + "---|" * 18]
    for r in data["rows"]:
        num_opt = lambda key, fmt: num(r[key], fmt) if key in r else "–"  # columns older runs lack
        lines.append(f"| {r['shape']} | {r['batch']} | {r['d']} | {r['m']} | {r['N']} | {num(r['linear_ms'], '.3f')} | "
                     f"{num(r['fourier_ms'], '.3f')} | {ratio(r['fourier_ms'], r['linear_ms'])} | "
                     f"{num_opt('linear_graphed_ms', '.3f')} | {num_opt('fourier_graphed_ms', '.3f')} | "
                     f"{ratio(r.get('fourier_graphed_ms'), r.get('linear_graphed_ms'))} | "
                     f"{num_opt('fourier_eager_ms', '.3f')} | {num(r['naive_ms'], '.2f')} | "
                     f"{ratio(r['naive_ms'], r['fourier_ms'])} | {num(r['linear_peak_mib'], '.0f')} | "
                     f"{num(r['fourier_peak_mib'], '.0f')} | {ratio(r['fourier_peak_mib'], r['linear_peak_mib'])} | "
                     f"{num(r['naive_peak_mib'], '.0f')} |")
    if data.get("end_to_end"):
        e = data.get("end_to_end_provenance", p)
        lines += ["", f"Whole training steps of this repository's models (`end_to_end.py`, {e['gpu']}, commit "
                  f"{e['commit']}; {e['timing']}):", "",
                  "| model | setting | mode | linear step ms | Fourier step ms | Fourier / linear |", "|---|---|---|---|---|---|"]
        for r in data["end_to_end"]:
            lines.append(f"| {r['model']} | {r['setting']} | {r.get('mode', 'eager')} | {r['linear_step_ms']:.3f} | "
                         f"{r['fourier_step_ms']:.3f} | {r['fourier_step_ms'] / r['linear_step_ms']:.2f}× |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--commit", default=git_commit(),
                        help="commit of the code measured (default: git, else $FOURIER_HEAD_COMMIT)")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per head per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds over the heads")
    parser.add_argument("--quick", action="store_true", help="tiny shapes (CPU smoke test)")
    parser.add_argument("--gamma", type=float, default=0.0, help="regulariser weight for both Fourier heads")
    parser.add_argument("--readme", type=Path, default=None,
                        help="only rewrite the table in this README from --out (an existing JSON); no timing")
    args = parser.parse_args()
    if args.readme:
        update_block(args.readme, "head-speed", readme_table(json.loads(args.out.read_text())))
        return

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shapes = QUICK_SHAPES if args.quick or device.type != "cuda" else SHAPES
    rows = []
    for name, batch, d, m, n in shapes:
        torch.manual_seed(0)
        x = torch.randn(batch, d, device=device, requires_grad=True)
        y = torch.randint(0, m, (batch,), device=device)
        row = {"shape": name, "batch": batch, "d": d, "m": m, "N": n}
        models = {
            "linear": nn.Linear(d, m),
            "fourier": Fourier_Head(d, m, n, regularizion_gamma=args.gamma),
            "fourier_eager": Fourier_Head(d, m, n, regularizion_gamma=args.gamma),  # plain path (fused off)
            "fourier_fft": Fourier_Head(d, m, n, regularizion_gamma=args.gamma, pmf_method="fft"),
            "fourier_matmul": Fourier_Head(d, m, n, regularizion_gamma=args.gamma, pmf_method="matmul"),
            "naive": NaiveFourierHead(d, m, n, gamma=args.gamma),
        }
        method = models["fourier"].pmf_method
        models = {key: model.to(device) for key, model in models.items()}
        # Interleaved rounds: each head is timed once per round, and the reported time is the median
        # of its round medians, so slow drifts of the machine (clocks, CPU load) hit all heads alike.
        times = {key: [] for key in models}
        for round_ in range(args.rounds):
            for key, model in models.items():
                if key == "naive" and round_ > 0:
                    continue  # tens of ms per call and no launch-bound noise: one round suffices
                repeats = max(3, args.repeats // 10) if key == "naive" else args.repeats
                plain = key == "fourier_eager" and fourier_head_fused is not None
                with fourier_head_fused.disabled() if plain else contextlib.nullcontext():
                    ms, peak = measure(model, x, y, device, repeats)
                times[key].append(ms)
                if round_ == 0 and key in ("linear", "fourier", "fourier_eager", "naive"):
                    row[f"{key}_peak_mib"] = None if peak is None else round(peak, 2)
        for key, values in times.items():
            row[f"{key}_ms"] = None if None in values else round(statistics.median(values), 4)
        if device.type == "cuda":
            for key in ("linear", "fourier"):
                ms = measure_graphed(models[key], x, y, args.repeats)
                row[f"{key}_graphed_ms"] = None if ms is None else round(ms, 4)
        del models
        row["fourier_method"] = method
        rows.append(row)
        print(json.dumps(row), flush=True)

    provenance = {
        "gpu": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "commit": args.commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gamma": args.gamma,
        "triton": getattr(getattr(fourier_head_fused, "triton", None), "__version__", None),
        "fused": fourier_head_fused is not None and device.type == "cuda",
        "timing": f"median over {args.rounds} interleaved rounds of the median of {args.repeats} fwd+bwd "
                  "(cross-entropy) after 3 warm-ups, CUDA events; naive: one round of max(3, repeats/10)",
    }
    header = f"{'shape':<22}{'batch':>6}{'linear':>9}{'fourier':>9}{'naive':>10}{'x lin':>7}{'x naive':>9}"
    print(header)
    for r in rows:
        ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
        print(f"{r['shape']:<22}{r['batch']:>6}{r['linear_ms'] or 0:>9.3f}{r['fourier_ms'] or 0:>9.3f}"
              f"{(r['naive_ms'] or float('nan')):>10.2f}{ratio(r['fourier_ms'], r['linear_ms']):>7}"
              f"{ratio(r['naive_ms'], r['fourier_ms']):>9}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"provenance": provenance, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
