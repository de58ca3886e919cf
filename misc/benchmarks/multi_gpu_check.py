"""Heads on two GPUs in one process, without `torch.cuda.set_device`: fused equals plain on each.

    python misc/benchmarks/multi_gpu_check.py --out misc/benchmarks/multi_gpu_check.json

The fused kernels were once compiled and launched for `torch.cuda.current_device()` instead of the
tensors' device: a head on cuda:1 called after the kernels ran on cuda:0 returned relative errors up to
1e18, or an illegal memory access. Here heads on cuda:0 and cuda:1 are used alternately, in both orders,
with cuda:0 current throughout, at the three kinds of shape (small one-node path with the fused
regulariser, the matmul path, the FFT path with the spectral regulariser), and each result (output,
regulariser, gradients of x, weight and bias) is compared with the plain path on the same GPU.
"""

import argparse
import datetime
import json

import torch

import fourier_head_fused
from fourier_head import Fourier_Head
from scaffold import git_commit

CASES = [  # name, rows, d, m, N, gamma
    ("decision-transformer (one-node path)", 1920, 128, 18, 8, 1e-6),
    ("matmul path (m=512, N=64)", 512, 64, 512, 64, 0.0),
    ("fft path (chronos-550)", 512, 384, 4096, 550, 1e-6),
]


def run(case, device: str, plain: bool):
    _, rows, d, m, n, gamma = case
    torch.manual_seed(n)
    head = Fourier_Head(d, m, n, regularization_gamma=gamma, init_denominator_weight=1).to(device)
    x = torch.randn(rows, d, device=device, requires_grad=True)
    grad_out = torch.randn(rows, m, device=device)
    with fourier_head_fused.disabled() if plain else torch.enable_grad():
        out = head(x)
        reg = head.loss_regularization
        ((out * grad_out).sum() + reg).backward()
    fc = head.fc_extract_autocorrelation_params
    return {"output": out.detach(), "regulariser": reg.detach(), "grad x": x.grad, "grad weight": fc.weight.grad,
            "grad bias": fc.bias.grad}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="JSON file for the results")
    parser.add_argument("--commit", default=git_commit(),
                        help="commit of the code measured (default: git, else $FOURIER_HEAD_COMMIT)")
    args = parser.parse_args()
    if torch.cuda.device_count() < 2:
        raise SystemExit("error: this check needs two GPUs")
    rows = []
    for order in ((0, 1, 0, 1), (1, 0, 1, 0)):
        for case in CASES:
            for index in order:
                got = run(case, f"cuda:{index}", plain=False)
                want = run(case, f"cuda:{index}", plain=True)
                errors = {k: ((got[k] - want[k]).norm() / want[k].norm().clamp_min(1e-30)).item() for k in want}
                rows.append({"order": list(order), "device": index, "case": case[0], "current_device":
                             torch.cuda.current_device(), **{k: float(f"{v:.3e}") for k, v in errors.items()}})
                print(f"order {order} cuda:{index} {case[0]:<38} max rel err {max(errors.values()):.2e}", flush=True)
    worst = max(max(v for k, v in r.items() if k.startswith(("output", "regulariser", "grad"))) for r in rows)
    result = {"rows": rows, "max_rel_err": worst, "passed": worst <= 1e-5 and not fourier_head_fused._FAILED,
              "kernel_failures": dict(fourier_head_fused._FAILED),
              "provenance": {"gpus": [torch.cuda.get_device_name(i) for i in range(2)], "torch": torch.__version__,
                             "triton": fourier_head_fused.triton.__version__, "commit": args.commit,
                             "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}}
    print(f"worst relative error {worst:.2e}: {'PASS' if result['passed'] else 'FAIL'} (threshold 1e-5)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    raise SystemExit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
