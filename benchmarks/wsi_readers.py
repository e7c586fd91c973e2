"""Whole-slide readers for genar.io.read_wsi: patches/s of tiffslide and openslide on one slide, in one run.

A her2st H&E image (section C4, 9916 × 9278 px) is written as a tiled pyramidal TIFF (512 px JPEG tiles, the way
scanners store slides; pyramid levels as top-level pages so that both readers see them). Then 200 random 224 px
windows at full resolution are read (a) through genar's lazy image element with each backend, 64 windows per
``dask.compute`` as genar's patch reader does, and (b) with each reader's own ``read_region``, one by one. Readers
alternate, twice, so that neither benefits from the page cache alone.

Run:  GENAR_DATA_DIR=../shared/data python benchmarks/wsi_readers.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

import genar
from genar._geometry import image_levels
from genar.io._images import read_rgb


def write_slide(path: Path, rgb: np.ndarray, mpp: float) -> None:
    import tifffile
    from PIL import Image

    levels = [rgb]
    for _ in range(4):
        prev = levels[-1]
        levels.append(np.asarray(Image.fromarray(prev).resize((prev.shape[1] // 2, prev.shape[0] // 2))))
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for i, level in enumerate(levels):
            tw.write(
                level,
                tile=(512, 512),
                photometric="rgb",
                compression="jpeg",
                subfiletype=1 if i else 0,
                resolution=(1e4 / (mpp * 2**i), 1e4 / (mpp * 2**i)),
                resolutionunit="CENTIMETER",
            )


def main() -> None:
    root = genar.datasets.data_dir() / "her2st"
    rgb = np.ascontiguousarray(read_rgb(root / "ST-imgs/C/C4/5714_HE_BT_D2.jpg").transpose(1, 2, 0))
    rng = np.random.default_rng(0)
    corners = np.column_stack([rng.integers(0, rgb.shape[1] - 224, 200), rng.integers(0, rgb.shape[0] - 224, 200)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "C4.tif"
        write_slide(path, rgb, 0.688)
        import openslide
        import tiffslide

        readers = {
            "genar lazy element, tiffslide": lambda: _element_reader(path, "tiffslide"),
            "genar lazy element, openslide": lambda: _element_reader(path, "openslide"),
            "tiffslide read_region": lambda: _region_reader(tiffslide.TiffSlide(path)),
            "openslide read_region": lambda: _region_reader(openslide.OpenSlide(str(path))),
        }
        rates: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(2):
            for name, make in readers.items():
                read = make()
                start = time.perf_counter()
                for batch in range(0, len(corners), 64):
                    read(corners[batch : batch + 64])
                rates[name].append(len(corners) / (time.perf_counter() - start))
    print("| reader | patches/s (two rounds) |")
    print("|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {' / '.join(f'{v:.0f}' for v in values)} |")


def _element_reader(path: Path, backend: str):
    import dask

    sdata = genar.io.read_wsi(path, name=f"c4_{backend}", backend=backend)
    level = image_levels(next(iter(sdata.images.values())))[0].data
    return lambda corners: dask.compute(*(level[:, y : y + 224, x : x + 224] for x, y in corners), scheduler="threads")


def _region_reader(slide):
    return lambda corners: [np.asarray(slide.read_region((int(x), int(y)), 0, (224, 224))) for x, y in corners]


if __name__ == "__main__":
    main()
