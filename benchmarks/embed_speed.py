"""Embedding throughput (patches/s) of histology encoders through genar.pp.embed_patches, on one device.

Patches are the 184 spots of her2st section C4 (lazily read from the image pyramids, as in use) when the data is
found, else ``--n-patches`` spots of a synthetic slide. Encoders: the default, colour/texture statistics, and the
architectures of UNI (ViT-L/16) and H-optimus-0 (ViT-g/14) with random weights — their speed does not depend on the
weights, which cannot be fetched here; each timing includes reading and resizing the patches.

Run:  GENAR_DATA_DIR=../shared/data python benchmarks/embed_speed.py [--encoders default color_texture uni_arch]
      [--n-patches 256] [--batch-size 64] [--device cpu]
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
        sdata = genar.datasets.her2st(sections=["C4"])  # 184 spots
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoders", nargs="+", default=["default", "color_texture", "uni_arch"])
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
    sdata = patches_sdata(args.n_patches)
    n = sdata.tables["genar"].n_obs
    print(
        f"{n} patches, batch {args.batch_size}, device {args.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print("| encoder | dim | seconds | patches/s |\n|---|---|---|---|")
    for encoder in args.encoders:
        start = time.perf_counter()
        genar.pp.embed_patches(
            sdata, encoder=encoder, batch_size=args.batch_size, device=args.device, key_added=f"X_{encoder}"
        )
        seconds = time.perf_counter() - start
        dim = sdata.tables["genar"].obsm[f"X_{encoder}"].shape[1]
        print(f"| {encoder} | {dim} | {seconds:.1f} | {n / seconds:.1f} |")


if __name__ == "__main__":
    main()
