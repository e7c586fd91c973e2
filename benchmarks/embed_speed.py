"""Histology embedding throughput, stage by stage: patch reading, each encoder's network, and embed_patches end to end.

For each encoder: GFLOP per patch (counted by ``torch.utils.flop_counter`` on one patch: convolutions and matrix
products), patches/s and achieved GFLOP/s of the network alone (a batch already in memory, warm, best of 3), beside
the machine's measured float32 matmul peak; then patch reading alone (``iter_patches``, each image chunk decoded
once) and ``genar.pp.embed_patches`` end to end (reading overlapped with encoding). Patches are the spots of her2st
sections C4 and C3 (lazily read from the image pyramids, as in use) when the data is found, else ``--n-patches``
spots of a synthetic slide. UNI (ViT-L/16) and H-optimus-0 (ViT-g/14) run with random weights (their speed does not
depend on the weights, which cannot be fetched here).

Run:  GENAR_DATA_DIR=../shared/data python benchmarks/embed_speed.py [--encoders default color_texture
      efficientnet_lite0_mid uni_arch] [--n-patches 256] [--batch-size 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import genar
from genar.encoders import EncoderSpec, register
from genar.encoders._foundation import VIT_ARGS
from genar.encoders._vit import VisionTransformer

ARCHITECTURES = {"uni_arch": "uni", "h_optimus_0_arch": "h_optimus_0"}


def patches_sdata(n: int):
    """A SpatialData with ``n`` spots that have patches: her2st when available, else a synthetic slide."""
    try:
        sdata = genar.datasets.her2st(sections=["C4", "C3"])  # 364 spots
    except (FileNotFoundError, RuntimeError, OSError):
        from spatialdata import SpatialData
        from spatialdata.models import Image2DModel

        rng = np.random.default_rng(0)
        image = Image2DModel.parse(rng.integers(0, 255, (3, 4096, 4096), dtype=np.uint8), dims=("c", "y", "x"))
        sdata = SpatialData(images={"slide": image})
        genar.pp.make_spots(sdata, "slide", pixel_size_um=1.0, tissue_mask=np.ones((8, 8), bool))
        table = sdata.tables["genar"]
        sdata.tables["genar"] = table[: min(n, table.n_obs)].copy()
        genar.pp.extract_patches(sdata)
        return sdata
    genar.pp.select_genes(sdata, 10)
    genar.pp.extract_patches(sdata)
    return sdata


def network_speed(encoder, batch: torch.Tensor, device: str) -> tuple[float, float]:
    """(GFLOP per patch, patches/s) of an encoder's network alone on a preprocessed batch (best of 3, warm)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode():
        x = batch.to(device)
        parts = getattr(encoder, "encoders", [encoder])
        inputs = [p.preprocess(x) for p in parts]
        with FlopCounterMode(display=False) as counter:
            for p, xi in zip(parts, inputs, strict=True):
                p.net(xi[:1])
        gflop = counter.get_total_flops() / 1e9
        for p, xi in zip(parts, inputs, strict=True):
            p.net(xi)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for p, xi in zip(parts, inputs, strict=True):
                p.net(xi)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
    return gflop, len(batch) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", nargs="+", default=["default", "efficientnet_lite0_mid", "color_texture"])
    parser.add_argument("--n-patches", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    genar.settings.show_progress_bar = False
    for name, arch in ARCHITECTURES.items():
        a = VIT_ARGS[arch]
        register(
            EncoderSpec(name=name, build=lambda a=a: VisionTransformer(a).eval(), dim=a.dim, input_size=a.img_size),
            overwrite=True,
        )
    from speed import matmul_peak_gflops

    sdata = patches_sdata(args.n_patches)
    n = sdata.tables["genar"].n_obs
    peak = matmul_peak_gflops()
    print(
        f"{n} patches of {sdata.tables['genar'].uns['genar_patches']['params']['patch_px']} px, batch "
        f"{args.batch_size}, device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"float32 matmul peak {peak:.0f} GFLOP/s"
    )
    rates = []
    for _ in range(2):  # the first pass also opens the image stores and fills the OS page cache
        start = time.perf_counter()
        for _ in genar.pp.iter_patches(sdata, batch_size=args.batch_size):
            pass
        rates.append(n / (time.perf_counter() - start))
    print(
        f"patch reading alone (each image chunk decoded once, resampled on threads): {rates[0]:.0f} patches/s on the "
        f"first pass, {rates[1]:.0f} on the next (a new reader: the same decoding, files in the OS cache)\n"
    )
    batch = torch.from_numpy(genar.pp.read_patches(sdata, np.arange(min(args.batch_size, n))))
    print("| encoder | dim | GFLOP/patch | network patches/s | GFLOP/s | % of matmul peak | embed_patches patches/s |")
    print("|---|---|---|---|---|---|---|")
    for encoder in args.encoders:
        gflop, net_rate = network_speed(genar.encoders.get_encoder(encoder), batch, args.device)
        start = time.perf_counter()
        genar.pp.embed_patches(
            sdata, encoder=encoder, batch_size=args.batch_size, device=args.device, key_added=f"X_{encoder}"
        )
        seconds = time.perf_counter() - start
        dim = sdata.tables["genar"].obsm[f"X_{encoder}"].shape[1]
        achieved = gflop * net_rate
        print(
            f"| {encoder} | {dim} | {gflop:.3f} | {net_rate:.0f} | {achieved:.1f} | {100 * achieved / peak:.0f}% | "
            f"{n / seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
