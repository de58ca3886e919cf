"""Where does the linear-head Chronos lose its gradient under torch.compile (issue 21)? One forward + loss of
T5-mini per variant (compile backend x bf16 autocast x head), printing whether the loss requires grad and
whether backward works. On a CPU every variant is fine; the failure was seen on an H100 with inductor.

    python misc/benchmarks/compile_grad_probe.py [--device cuda] [--variants eager:1:linear inductor:1:linear ...]
"""

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def chronos_model_module():
    path = ROOT / "time-series-forecasting" / "model.py"
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("chronos_model", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["chronos_model"] = module  # torch.compile looks modules up by name
    spec.loader.exec_module(module)
    return module


def probe(chronos, backend: str, autocast: bool, head: str, device) -> dict:
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = chronos.build_model(chronos.ModelConfig(size="mini", head=head, num_frequencies=550)).to(device)
    ids = torch.randint(2, 4096, (8, 512), device=device)
    mask, labels = torch.ones_like(ids), torch.randint(2, 4096, (8, 64), device=device)

    def loss():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            return model.loss(ids, mask, labels)[0]

    t0 = time.time()
    out = {"backend": backend, "autocast": autocast, "head": head}
    try:
        value = torch.compile(loss, backend=backend)()
        out.update(requires_grad=value.requires_grad, grad_fn=type(value.grad_fn).__name__, loss=float(value))
        value.backward()
        out["backward"] = "ok"
    except Exception as error:  # the probe reports every failure and goes on
        out["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    out["seconds"] = round(time.time() - t0, 1)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--variants", nargs="+", default=["eager:1:linear", "aot_eager:1:linear", "inductor:0:linear",
                                                      "inductor:1:linear", "inductor:1:fourier"])
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    args = p.parse_args()
    device = torch.device(args.device)
    chronos = chronos_model_module()
    rows = []
    for v in args.variants:
        backend, autocast, head = v.split(":")
        rows.append(probe(chronos, backend, autocast == "1", head, device))
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        import transformers
        from scaffold import provenance, write_json
        write_json(args.out, {**provenance(device, transformers=transformers.__version__), "rows": rows})


if __name__ == "__main__":
    main()
