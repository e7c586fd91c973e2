"""An H&E-only whole slide, image to predicted counts: time per stage, patches/s and spots/s, and peak memory.

Builds a synthetic 40,000 × 40,000 px H&E-like image (20 × 20 mm at 0.5 µm/px) that exists only as a lazy dask graph
(each 512² chunk is generated when a patch needs it, so the 4.8 GB of pixels are never held at once) with a 5-level
pyramid whose levels are generated as a scanner stores them, read as ``genar.io.read_wsi`` reads a slide's tiles (on the
patch reader's threads; ``--through-dask``: through dask, on one thread). ``genar.pp.make_spots`` lays Visium-like
pseudo-spots over it (55 µm, 100 µm pitch, hexagonal: ~46,000), ``extract_patches`` defines 112 µm patches (224 px),
``embed_patches`` embeds them with the default encoder, and ``tl.predict`` decodes the 200 genes of a GenAR model
(default config) trained for one epoch on random features of 2,000 spots — the accuracy is irrelevant here, the cost is
not. Then, in a second process, 100,000 spots are predicted from random features to show that prediction streams in
bounded memory.

Run:  python benchmarks/large_slide.py [--size 40000] [--technology visium] [--encoder default] [--json]
      [--through-dask] [--phases slide predict]
(each phase runs in a fresh process so that its peak resident memory is its own)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

N_GENES = 200
MICRONS_PER_PIXEL = 0.5


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_image(size: int, chunk: int = 512, downsample: int = 1, *, as_slide: bool = True):
    """A lazily generated RGB uint8 image with H&E-like colours and nuclei-like blobs, as a dask array.

    ``size`` pixels of a slide seen ``downsample`` times coarser than full resolution (one level of a scanner's
    pyramid, generated directly as a scanner stores it, not by reading and shrinking the full resolution). Chunks of
    512 px, as in genar's own image pyramids; generating one takes a few milliseconds, about what reading and
    decompressing a stored chunk costs. ``as_slide``: its chunks are read as a slide's tiles are after
    ``genar.io.read_wsi`` (on the patch reader's threads); else through dask, on one thread.
    """
    import dask.array as da
    import numpy as np

    from genar._region_readers import register_region_reader

    blob = max(16 // downsample, 1)

    def block(block_info=None):
        (c0, c1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        return region(y0, y1, x0, x1)[c0:c1]

    def region(y0, y1, x0, x1):  # one chunk's pixels, as a slide's tile reader gives them
        rng = np.random.default_rng(y0 * 7919 + x0 + downsample)
        h, w = y1 - y0, x1 - x0
        ys, xs = (np.arange(h) + y0) * downsample, (np.arange(w) + x0) * downsample
        tissue = 0.5 + 0.5 * np.outer(np.sin(ys / 900.0), np.cos(xs / 700.0))
        coarse = tissue[::blob, ::blob]
        nuclei = rng.random(coarse.shape) < 0.15 * coarse
        nuclei = np.kron(nuclei, np.ones((blob, blob), bool))[:h, :w]
        pink = np.stack([230 - 40 * tissue, 180 - 70 * tissue, 210 - 30 * tissue])
        purple = np.array([90.0, 60.0, 140.0])[:, None, None]
        rgb = np.where(nuclei[None], purple, pink) + rng.integers(-6, 7, (3, h, w), dtype=np.int8)
        return np.clip(rgb, 0, 255).astype(np.uint8)

    sides = (chunk,) * (size // chunk) + ((size % chunk,) if size % chunk else ())
    array = da.map_blocks(block, dtype=np.uint8, chunks=((3,), sides, sides))
    if as_slide:  # read like a slide from genar.io.read_wsi: tiles on the patch reader's threads, not through dask
        register_region_reader(array, region)
    return array


def synthetic_slide(size: int, n_levels: int = 5, *, as_slide: bool = True):
    """The synthetic slide as a multiscale image element with a stored-like pyramid (each level generated)."""
    from spatialdata.transformations import Identity

    from genar.io._wsi import slide_image

    levels = [synthetic_image(size // 2**k, downsample=2**k, as_slide=as_slide) for k in range(n_levels)]
    return slide_image(levels, {"slide": Identity()})


def quick_model(feature_dim: int, encoder: dict, seed: int = 0):
    """A default-config GenAR trained one epoch on random data: real weights, a realistic decoding cost."""
    import numpy as np

    import genar

    rng = np.random.default_rng(seed)
    n = 2000
    features = rng.normal(size=(n, feature_dim)).astype(np.float32)
    coords = rng.random((n, 2)).astype(np.float32)
    counts = rng.poisson(2.0, size=(n, N_GENES))
    config = genar.GenARConfig(scales=(1, 4, 8, 40, 100, 200), cap=int(counts.max()))
    model = genar.GenAR(
        config, genes=[f"gene{i:03d}" for i in range(N_GENES)], cap=config.cap, feature_dim=feature_dim, encoder=encoder
    )
    return model.train(features, coords, counts, max_epochs=1, show_progress_bar=False)


def run_slide(size: int, technology: str, encoder: str, *, as_slide: bool = True) -> dict:
    import numpy as np
    from spatialdata import SpatialData

    import genar

    genar.settings.show_progress_bar = False
    row = {"phase": "slide", "image_px": f"{size}x{size}", "technology": technology, "encoder": encoder}
    row["read"] = "tiles" if as_slide else "dask"
    t = time.perf_counter()
    sdata = SpatialData(images={"slide_image": synthetic_slide(size, as_slide=as_slide)})
    # the synthetic slide is tissue everywhere: a mask says so instead of detecting it on generated pixels
    genar.pp.make_spots(
        sdata,
        "slide_image",
        technology=technology,
        pixel_size_um=MICRONS_PER_PIXEL,
        tissue_mask=np.ones((64, 64), bool),
    )
    row.update(n_spots=sdata.tables["genar"].n_obs, spots_s=time.perf_counter() - t, spots_rss_mb=peak_rss_mb())
    t = time.perf_counter()
    genar.pp.extract_patches(sdata, size_um=112.0, patch_px=224)
    row.update(extract_s=time.perf_counter() - t)
    t = time.perf_counter()
    genar.pp.embed_patches(sdata, encoder=encoder, batch_size=64)
    row.update(embed_s=time.perf_counter() - t, embed_rss_mb=peak_rss_mb())
    row["embed_patches_per_s"] = row["n_spots"] / row["embed_s"]
    table = sdata.tables["genar"]
    model = quick_model(table.obsm["X_histology"].shape[1], dict(table.uns["X_histology"]["encoder"]))
    t = time.perf_counter()
    genar.tl.predict(sdata, model)
    row.update(predict_s=time.perf_counter() - t, peak_rss_mb=peak_rss_mb())
    row["predict_spots_per_s"] = row["n_spots"] / row["predict_s"]
    row["total_s"] = sum(row[k] for k in ("spots_s", "extract_s", "embed_s", "predict_s"))  # not the stand-in model
    row["total_min"] = row["total_s"] / 60
    return row


def run_predict(n_spots: int) -> dict:
    import numpy as np

    rng = np.random.default_rng(1)
    model = quick_model(86, {"name": "synthetic", "dim": 86})
    features = rng.normal(size=(n_spots, 86)).astype(np.float32)
    coords = rng.random((n_spots, 2)).astype(np.float32)
    before = peak_rss_mb()
    t = time.perf_counter()
    counts = model.predict_counts(features, coords, batch_size=256, show_progress_bar=False)
    seconds = time.perf_counter() - t
    return {
        "phase": "predict",
        "n_spots": n_spots,
        "predict_s": seconds,
        "predict_spots_per_s": n_spots / seconds,
        "output_mb": counts.nbytes / 2**20,
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40_000, help="image side in pixels")
    parser.add_argument("--technology", default="visium", help="pseudo-spot geometry (visium: ~46,000 spots)")
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--predict-spots", type=int, default=100_000)
    parser.add_argument("--phases", nargs="*", default=["slide", "predict"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--through-dask", action="store_true", help="read the slide's chunks through dask, not as read_wsi's tiles"
    )
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child == "slide":
        row = run_slide(args.size, args.technology, args.encoder, as_slide=not args.through_dask)
        sys.stdout.write(json.dumps(row) + "\n")
        return
    if args._child == "predict":
        sys.stdout.write(json.dumps(run_predict(args.predict_spots)) + "\n")
        return
    rows = []
    for phase in args.phases:
        cmd = [sys.executable, __file__, "--_child", phase, *sys.argv[1:]]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        if args.json:
            print(json.dumps(rows[-1]), flush=True)
    if not args.json:
        for r in rows:
            print(" | ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
