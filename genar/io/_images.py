"""Turn a large JPEG into a lazily read, multiscale SpatialData image element (cached as zarr)."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._logging import logger

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from spatialdata.transformations import BaseTransformation
    from xarray import DataTree

#: Downscaling factors between consecutive pyramid levels (9k px -> 4.6k -> 2.3k -> 1.2k -> 580 px).
PYRAMID_FACTORS = (2, 2, 2, 2)
#: Chunk edge, in pixels, of every pyramid level on disk.
CHUNK_PX = 512


@contextmanager
def _allow_large_images() -> Iterator[None]:
    """Lift Pillow's decompression-bomb limit while decoding a slide we chose to read."""
    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to a ``(3, height, width)`` uint8 array."""
    from PIL import Image

    with _allow_large_images(), Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


def multiscale_image_from_file(
    path: str | Path,
    *,
    element_name: str,
    transformations: Mapping[str, BaseTransformation],
    cache_key: str,
    cache: Path | None,
) -> DataTree:
    """Return a multiscale image element backed by a zarr store in ``cache``.

    The file is decoded once; its pyramid is written to ``cache/<cache_key>.zarr`` and read back lazily, so
    later reads of a patch touch only the chunks under it. With ``cache=None`` the pyramid is kept in memory.
    """
    from spatialdata import SpatialData, read_zarr
    from spatialdata.models import Image2DModel

    store = None if cache is None else Path(cache) / f"{cache_key}.zarr"
    if store is None or not store.exists():
        logger.info("Decoding %s into a multiscale image", path)
        image = Image2DModel.parse(
            read_rgb(path),
            dims=("c", "y", "x"),
            c_coords=["r", "g", "b"],
            scale_factors=list(PYRAMID_FACTORS),
            chunks=(3, CHUNK_PX, CHUNK_PX),
            transformations=dict(transformations),
        )
        if store is None:
            return image
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=store.parent, prefix=f".{store.name}."))
        try:
            SpatialData(images={element_name: image}).write(tmp / "sdata.zarr")
            (tmp / "sdata.zarr").replace(store)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info("Cached the image pyramid in %s", store)
    return read_zarr(store).images[element_name]
