"""Image elements from what a user has: an array, a dask array, an element, a slide file or an ordinary image file.

Slides (TIFF and the formats of :mod:`genar.io._wsi`) keep their own pyramid and are read lazily; an ordinary image
(JPEG, PNG) is decoded once into a multiscale pyramid cached as zarr and read lazily from there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._logging import logger

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from spatialdata.transformations import BaseTransformation
    from xarray import DataArray, DataTree

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
    from spatialdata.transformations import set_transformation

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
            try:
                (tmp / "sdata.zarr").replace(store)
                logger.info("Cached the image pyramid in %s", store)
            except OSError:
                # Another process published the same pyramid first (a rename onto a non-empty directory fails):
                # both decoded the same file, so theirs is as good as ours.
                if not store.exists():
                    raise
                logger.info("Another process cached the image pyramid in %s first; using it", store)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    image = read_zarr(store).images[element_name]
    set_transformation(image, dict(transformations), set_all=True)  # the cache may hold other coordinate systems
    return image


#: File suffixes read as slides (lazily, with their own pyramid) rather than decoded whole.
SLIDE_SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".scn", ".bif", ".mrxs", ".vms", ".btf", ".qptiff")


def image_element(
    image: Any,
    *,
    name: str,
    transformations: Mapping[str, BaseTransformation],
    cache: Path | None = None,
    cache_key: str | None = None,
    backend: str = "tiffslide",
) -> DataTree | DataArray:
    """An image element, with ``transformations``, from ``image``.

    ``image`` is an image element (its pixels are shared), a NumPy or dask array of RGB uint8 — ``(height, width,
    3)`` or ``(3, height, width)`` —, a slide file (its own pyramid, read lazily through ``backend``) or an ordinary
    image file (decoded once into a pyramid cached in ``cache`` under ``cache_key``).
    """
    import dask.array as da
    from spatialdata.models import Image2DModel
    from spatialdata.transformations import set_transformation
    from xarray import DataArray, DataTree

    if isinstance(image, DataArray | DataTree):
        element = image.copy() if isinstance(image, DataArray) else image.copy(deep=False)
        set_transformation(element, dict(transformations), set_all=True)
        return element
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        if not path.is_file():
            msg = f"No image file at {str(path)!r}."
            raise FileNotFoundError(msg)
        if path.name.lower().endswith(SLIDE_SUFFIXES):
            from ._wsi import open_slide, slide_image, slide_levels

            return slide_image(slide_levels(open_slide(path, backend), backend), transformations)
        key = cache_key or f"{path.stem}-{path.stat().st_size}-{int(path.stat().st_mtime)}"
        return multiscale_image_from_file(
            path, element_name=name, transformations=transformations, cache_key=key, cache=cache
        )
    array = image if isinstance(image, da.Array) else np.asarray(image)
    if array.ndim != 3 or 3 not in (array.shape[0], array.shape[-1]) and 4 not in (array.shape[0], array.shape[-1]):
        msg = f"`image` must be RGB, (height, width, 3) or (3, height, width); got an array of shape {array.shape}."
        raise ValueError(msg)
    if array.dtype != np.uint8:
        msg = (
            f"`image` has dtype {array.dtype}; genar reads RGB uint8 H&E images (0-255). Convert it first, e.g. with "
            "`(image * 255).astype('uint8')` for a 0-1 float image."
        )
        raise TypeError(msg)
    channels_last = array.shape[-1] in (3, 4) and array.shape[0] not in (3, 4)
    chw = (array.transpose(2, 0, 1) if channels_last else array)[:3]
    return Image2DModel.parse(
        chw,
        dims=("c", "y", "x"),
        c_coords=["r", "g", "b"],
        scale_factors=list(PYRAMID_FACTORS),
        chunks=(3, CHUNK_PX, CHUNK_PX),
        transformations=dict(transformations),
    )
