"""Training and inference speed of GenAR, achieved GFLOP/s, and peak memory.

Each (config, phase, precision) runs in a fresh process so its peak resident memory is its own. Training: batch 64,
AdamW step included, in float32 and in bfloat16 mixed precision (what ``genar.tl.fit(..., precision="bf16-mixed")``
runs: autocast around the forward pass, float32 weights, optimiser and loss). Inference (``infer``): what
genar.tl.predict does by default for one network (coarse-to-fine decoding along the greedy path with the KV cache,
and the exact expectation of log2(1 + X) at the finest scale), batch 256, float32. ``tokens``: the greedy tokens
alone (``GenARModule.generate``), which is what the reference's inference returns (its ``top_k=1``); both are timed
against the reference's inference.
Inputs are synthetic (random features of the paper's UNI dimension, 1024, and Poisson counts) over the paper's 200 genes
and scales 1/4/8/40/100/200, with the cap 2000, so every config has the same vocabulary.

With the authors' reference implementation present (``../shared/reference`` beside the checkout, or
``--reference DIR`` holding its ``ref_speed.py``), the configs it knows (``small``, ``paper``) are also timed with it,
interleaved with genar's runs round by round on the same machine and at the same batch, and the table gives genar's
speed over the reference's (median over the rounds of each's median step). The reference runs in float32 throughout:
the float32 rows are the like-for-like comparison, the bfloat16 rows what mixed precision adds on top.

Run:  python benchmarks/speed.py [--configs small default paper] [--precisions 32 bf16-mixed] [--rounds 2]
                                 [--reference DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCALES = (1, 4, 8, 40, 100, 200)
N_GENES = 200
CAP = 2000
FEATURE_DIM = 1024
#: The reference's timing script, where the shared folder sits beside the checkout.
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
#: Batches of each phase (genar's and the reference's runs use the same).
BATCH = {"train": 64, "infer": 256, "tokens": 256}
#: The reference's phase that each of genar's phases is timed against.
REFERENCE_PHASE = {"train": "train", "infer": "infer", "tokens": "infer"}


def make_config(name: str):
    import genar

    if name == "paper":
        return genar.GenARConfig.paper()
    if name == "small":
        return genar.GenARConfig.small()
    if name == "default":
        return genar.GenARConfig(scales=SCALES, cap=CAP)
    msg = f"unknown config {name!r}"
    raise ValueError(msg)


def forward_flops(cfg, batch: int) -> float:
    """Matrix-multiply FLOPs of one teacher-forced forward pass (the attention over the full L x L grid)."""
    L, w, V = sum(SCALES), cfg.width, CAP + 1
    tokens = batch * L
    per_block = 2 * tokens * (4 + 2 * cfg.mlp_ratio) * w * w + 2 * 2 * batch * L * L * w
    return cfg.depth * per_block + 2 * tokens * w * V


def decode_flops(cfg, batch: int) -> float:
    """Matrix-multiply FLOPs of cached decoding of every scale."""
    w, V = cfg.width, CAP + 1
    total, prefix = 0.0, 0
    for n in SCALES:
        prefix += n
        total += cfg.depth * (2 * batch * n * (4 + 2 * cfg.mlp_ratio) * w * w + 2 * 2 * batch * n * prefix * w)
        total += 2 * batch * n * w * V
    return total


def matmul_peak_gflops(n: int = 2048, repeats: int = 5, dtype: str = "float32", device: str = "cpu") -> float:
    """GFLOP/s of ``repeats`` ``n``² matrix products in ``dtype`` on ``device`` (a GPU's timed to their end)."""
    import torch

    a, b = (torch.randn(n, n, dtype=getattr(torch, dtype), device=device) for _ in "ab")
    cuda = device.startswith("cuda")
    for _ in range(3 if cuda else 1):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if cuda:
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def cpu_model() -> str:
    """The CPU's model name (ratios to the reference differ between machines: tables should name it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def run_one(config: str, phase: str, steps: int, precision: str = "32") -> dict:
    import contextlib

    import numpy as np
    import torch

    import genar
    from genar.train import GenARTrainingPlan

    cfg = make_config(config)
    model = genar.GenAR(cfg, genes=[f"g{i}" for i in range(N_GENES)], cap=CAP, feature_dim=FEATURE_DIM)
    module = model.module
    rng = np.random.default_rng(0)
    if phase == "train":
        batch = BATCH["train"]
        plan = GenARTrainingPlan(
            module, cap=CAP, alpha=cfg.alpha, beta=cfg.beta, lr=cfg.lr, micro_batch_size=cfg.micro_batch_size
        )
        opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr)  # the plan's optimiser, without a Lightning trainer
        feats = torch.from_numpy(rng.normal(size=(batch, FEATURE_DIM)).astype(np.float32))
        xy = torch.rand(batch, 2)
        counts = torch.from_numpy(rng.poisson(rng.gamma(1.0, 20.0, size=(batch, N_GENES)))).clamp(max=CAP)
        module.train()
        mixed = precision == "bf16-mixed"

        def step():  # what one Lightning training step does (its precision plugin enters autocast)
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16) if mixed else contextlib.nullcontext():
                plan.accumulate_gradients((feats, xy, counts))
            opt.step()

        flops = 3 * forward_flops(cfg, batch)
    else:
        batch = BATCH["infer"]
        feats = torch.from_numpy(rng.normal(size=(batch, FEATURE_DIM)).astype(np.float32))
        xy = torch.rand(batch, 2)
        module.eval()
        cache = module.new_cache(64)  # reused across batches, as genar.tl.predict does
        values = torch.log2(1 + torch.arange(CAP + 1, dtype=torch.float32))

        def step():
            if phase == "tokens":
                module.generate(feats, xy, cache=cache)
            else:
                module.decode_expectation(feats, xy, values, cache=cache)

        flops = decode_flops(cfg, batch)
    step()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))  # the median step: robust to a stray slow one
    from genar.train import auto_micro_batch

    return {
        "config": config,
        "phase": phase,
        "precision": precision,
        "batch": batch,
        "micro_batch": (cfg.micro_batch_size or auto_micro_batch(module, batch)) if phase == "train" else 64,
        "seconds_per_step": seconds,
        "spots_per_s": batch / seconds,
        "gflops": flops / seconds / 1e9,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_genar(config: str, phase: str, steps: int, precision: str) -> dict:
    """One (config, phase, precision) of genar in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--_child", config, phase, str(steps), precision],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_reference(reference: Path, config: str, phase: str, steps: int) -> dict:
    """The same (config, phase, batch) with the reference's own timing script, in a fresh process."""
    command = [sys.executable, str(reference / "ref_speed.py"), config, REFERENCE_PHASE[phase], "--steps", str(steps)]
    out = subprocess.run([*command, "--batch", str(BATCH[phase])], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["small", "default", "paper"])
    parser.add_argument("--phases", nargs="+", default=["train", "infer", "tokens"], choices=list(BATCH))
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["32", "bf16-mixed"],
        choices=["32", "bf16-mixed"],
        help="training precisions (inference always runs in float32, as genar.tl.predict does)",
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 2 for paper, else 5)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of genar and the reference")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="folder with the reference's ref_speed.py")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--_child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        config, phase, steps, precision = args._child
        print(json.dumps(run_one(config, phase, int(steps), precision)))
        return
    has_reference = (args.reference / "ref_speed.py").is_file()
    peaks = {"32": matmul_peak_gflops(), "bf16-mixed": matmul_peak_gflops(dtype="bfloat16")}
    machine = f"{cpu_model()}, {os.cpu_count()} CPUs"
    rows = []
    for config in args.configs:
        for phase in args.phases:
            steps = args.steps or (2 if config == "paper" else 5)
            compare = has_reference and config in ("small", "paper")
            precisions = args.precisions if phase == "train" else ["32"]
            runs, reference = {p: [] for p in precisions}, []
            for _ in range(args.rounds if compare else 1):
                for precision in precisions:
                    runs[precision].append(run_genar(config, phase, steps, precision))
                if compare:
                    reference.append(run_reference(args.reference, config, phase, steps))
            for precision in precisions:
                row = min(runs[precision], key=lambda r: r["seconds_per_step"])
                row["spots_per_s_rounds"] = [r["spots_per_s"] for r in runs[precision]]
                row["spots_per_s"] = statistics.median(row["spots_per_s_rounds"])
                row["gflops"] = statistics.median(r["gflops"] for r in runs[precision])
                row["peak_gflops"] = peaks[precision]
                row["machine"] = machine
                if reference:
                    row["reference_spots_per_s"] = statistics.median(r["spots_per_s"] for r in reference)
                    row["reference_peak_rss_mb"] = max(r["peak_rss_mb"] for r in reference)
                    row["speedup"] = row["spots_per_s"] / row["reference_spots_per_s"]
                rows.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
    if args.json:
        return
    print(f"machine: {machine}")
    print(
        f"matmul peak measured in this run: float32 {peaks['32']:.1f} GFLOP/s, bfloat16 {peaks['bf16-mixed']:.1f} "
        "GFLOP/s (% peak: of the row's precision)"
    )
    if has_reference:
        print(f"reference: {args.reference} (ref_speed.py), interleaved with genar, {args.rounds} rounds")
    print(
        f"{'config':8s} {'phase':6s} {'precision':10s} {'batch':>5s} {'spots/s':>8s} {'GFLOP/s':>8s} {'% peak':>7s} "
        f"{'RSS MB':>7s} {'ref spots/s':>11s} {'ref RSS MB':>10s} {'genar/ref':>9s}"
    )
    for r in rows:
        ref = (
            f"{r['reference_spots_per_s']:11.1f} {r['reference_peak_rss_mb']:10.0f} {r['speedup']:8.1f}x"
            if "speedup" in r
            else f"{'–':>11s} {'–':>10s} {'–':>9s}"
        )
        print(
            f"{r['config']:8s} {r['phase']:6s} {r['precision']:10s} {r['batch']:5d} {r['spots_per_s']:8.1f} "
            f"{r['gflops']:8.1f} {100 * r['gflops'] / r['peak_gflops']:6.0f}% {r['peak_rss_mb']:7.0f} {ref}"
        )


if __name__ == "__main__":
    main()
