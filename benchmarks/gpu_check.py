"""GPU check of the pure-torch model (genar.module, genar.train): equivalences on CUDA, and step speed.

Imports only the torch-level subpackages, so it runs where the scverse stack is not installed (e.g. a bare
CUDA machine with torch and lightning): the package's top-level ``genar/__init__`` is bypassed on purpose.

Run:  python benchmarks/gpu_check.py
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_torch_parts():
    """Import genar.module and genar.train without genar/__init__ (which needs anndata, spatialdata...)."""
    pkg = types.ModuleType("genar")
    pkg.__path__ = [str(ROOT / "genar")]
    sys.modules["genar"] = pkg
    return importlib.import_module("genar.module"), importlib.import_module("genar.train._plan")


def main() -> None:
    import torch

    module_pkg, plan_pkg = _import_torch_parts()
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    scales = (1, 2, 4, 6, 12)
    torch.manual_seed(0)
    m = module_pkg.GenARModule(
        scales=scales, n_genes=12, vocab=30, feature_dim=5, width=32, depth=2, heads=4, mlp_ratio=2.0
    )
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    m = m.to(dev).eval()
    feats, xy = torch.randn(4, 5, device=dev), torch.rand(4, 2, device=dev)
    tokens = torch.randint(0, 30, (4, sum(scales)), device=dev)
    full = m(feats, xy, tokens)
    start, worst = 0, 0.0
    for k, n in enumerate(scales):
        prefix = m(feats, xy, tokens, n_scales=k + 1)
        worst = max(worst, (full[:, start : start + n] - prefix[:, start : start + n]).abs().max().item())
        start += n
    out["one_pass_vs_per_scale_max_abs_diff"] = worst
    cached = m.generate(feats, xy, return_all_scales=True)
    toks = torch.zeros_like(tokens)
    start = 0
    for k, n in enumerate(scales):
        logits = m(feats, xy, toks, n_scales=k + 1)[:, start : start + n]
        toks[:, start : start + n] = logits.argmax(-1)
        start += n
    out["cached_equals_uncached_greedy"] = bool(torch.equal(cached, toks))
    draws = [
        m.generate(feats, xy, greedy=False, temperature=1.5, generator=torch.Generator(device=dev).manual_seed(s))
        for s in (1, 1, 2)
    ]
    out["sampling_seeded"] = bool(torch.equal(draws[0], draws[1])) and not bool(torch.equal(draws[0], draws[2]))

    # paper-config training step (float32 and bf16-mixed) and decoding throughput on the GPU
    paper_scales, cap = (1, 4, 8, 40, 100, 200), 2000
    torch.manual_seed(0)
    big = module_pkg.GenARModule(
        scales=paper_scales,
        n_genes=200,
        vocab=cap + 1,
        feature_dim=1024,
        width=512,
        depth=8,
        heads=8,
        mlp_ratio=3.0,
        drop_path=0.1,
        cond_dropout=0.1,
    ).to(dev)
    plan = plan_pkg.GenARTrainingPlan(big, cap=cap, alpha=0.01, beta=1.0, lr=1e-4, micro_batch_size=64).to(dev)
    opt = torch.optim.AdamW(big.parameters(), lr=1e-4)  # the plan's optimiser, without a Lightning trainer
    f = torch.randn(64, 1024, device=dev)
    c = torch.rand(64, 2, device=dev)
    y = torch.poisson(torch.full((64, 200), 20.0, device=dev)).long().clamp(max=cap)
    # bf16-mixed as Lightning runs it (autocast around the forward pass) against float32, dropout off: the loss and
    # the gradient's direction
    big.eval()
    grads = []
    for mixed in (False, True):
        big.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mixed):
            per_scale = plan.accumulate_gradients((f, c, y)).detach().double()
        flat = torch.cat([p.grad.flatten() for p in big.parameters() if p.grad is not None]).double()
        grads.append((per_scale, flat))
    (l32, g32), (l16, g16) = grads
    out["paper_bf16_mixed_per_scale_loss_max_rel_diff"] = ((l16 - l32).abs() / l32.abs()).max().item()
    out["paper_bf16_mixed_grad_cosine"] = torch.nn.functional.cosine_similarity(g32, g16, dim=0).item()
    big.train()
    for precision in ("32", "bf16-mixed"):
        times = []
        torch.cuda.reset_peak_memory_stats()
        for i in range(6):
            torch.cuda.synchronize()
            t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision != "32"):
                plan.accumulate_gradients((f, c, y))
            opt.step()
            torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - t)
        out[f"paper_train_{precision}_spots_per_s"] = 64 / sorted(times)[len(times) // 2]
        out[f"paper_train_{precision}_peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    big.eval()
    fi, ci = torch.randn(256, 1024, device=dev), torch.rand(256, 2, device=dev)
    cache = big.new_cache(256, device=dev)
    big.generate(fi, ci, cache=cache, micro_batch=256)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(3):
        big.generate(fi, ci, cache=cache, micro_batch=256)
    torch.cuda.synchronize()
    out["paper_infer_spots_per_s"] = 3 * 256 / (time.perf_counter() - t)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
