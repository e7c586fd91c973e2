"""Whole-slide images (SVS, pyramidal TIFF, OME-TIFF, ...) as lazy image elements.

The slide's own pyramid levels, read tile by tile on demand, and its pixel size from the slide's metadata.
"""

from __future__ import annotations

import atexit
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from .._geometry import section_transformations
from .._logging import logger
from .._region_readers import register_region_reader

if TYPE_CHECKING:
    from spatialdata import SpatialData
    from spatialdata.transformations import BaseTransformation
    from xarray import DataTree

Backend = Literal["tiffslide", "openslide"]
#: Pixel sizes outside this range (micrometres) are not those of a brightfield slide scan: metadata that says so is
#: refused rather than believed (a TIFF's resolution tags are often left at 72 dpi by software that ignores them).
PLAUSIBLE_PIXEL_SIZE_UM = (0.05, 20.0)
#: Chunk edge, in pixels, of the dask arrays that read a slide through openslide: the tile size of most scanners, so
#: that a patch reads little more than itself.
OPENSLIDE_CHUNK_PX = 512
#: Micrometres per unit of the OME PhysicalSizeX units genar understands.
_OME_UNITS = {"µm": 1.0, "um": 1.0, "micrometer": 1.0, "micron": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}


def _tiffslide():
    try:
        import tiffslide
    except ImportError as err:
        err.add_note('Whole-slide images are read with tiffslide: pip install "genar[wsi]".')
        raise
    return tiffslide


class SlideError(ValueError):
    """A whole-slide image that cannot be read: a corrupt or truncated file, or an unsupported format."""


#: Slides opened in this process, kept open for the lifetime of their lazy arrays (read on demand) and closed at
#: exit: ``(path, size, mtime, backend) -> slide``.
_OPEN: dict[tuple, object] = {}


def _close_all() -> None:
    for slide in _OPEN.values():
        slide.close()
    _OPEN.clear()


atexit.register(_close_all)


def open_slide(path: str | os.PathLike, backend: Backend = "tiffslide"):
    """Open a slide with the chosen reader; a file it cannot read is a :class:`SlideError` that names the file.

    A slide is opened once per process (and file version) and stays open, since its image elements read it lazily.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"No slide at {str(path)!r}."
        raise FileNotFoundError(msg)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, backend)
    if key not in _OPEN:
        slide = _open(path, backend)
        if backend == "tiffslide":
            _check_complete(path, slide, stat.st_size)
        _OPEN[key] = slide
    return _OPEN[key]


def _check_complete(path: Path, slide, size: int) -> None:
    """Refuse a truncated TIFF: every tile of every level must lie inside the file."""
    pages = [page for series in slide.ts_tifffile.series for level in series.levels for page in level.pages]
    for page in pages:
        if page is None:
            continue
        ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False) if c]
        if ends and max(ends) > size:
            slide.close()
            msg = (
                f"{str(path)!r} cannot be read as a slide with tiffslide: it is truncated (its image data ends at byte "
                f"{max(ends)}, the file at byte {size}). Copy or download the file again."
            )
            raise SlideError(msg)


def _open(path: Path, backend: Backend):
    try:
        if backend == "tiffslide":
            return _tiffslide().TiffSlide(path)
        if backend == "openslide":
            try:
                import openslide
            except ImportError as err:
                err.add_note('The openslide backend needs openslide: pip install "genar[openslide]".')
                raise
            return openslide.OpenSlide(str(path))
    except ImportError:
        raise
    except Exception as err:  # tifffile, tiffslide and openslide raise many types for a damaged file
        msg = (
            f"{str(path)!r} cannot be read as a slide with {backend} ({type(err).__name__}: {err}). The file may be "
            "truncated or corrupt, or in a format this reader does not know: try backend='openslide' for MRXS, "
            "VMS or BIF slides."
        )
        raise SlideError(msg) from err
    msg = f"`backend` must be 'tiffslide' or 'openslide'; got {backend!r}."
    raise ValueError(msg)


def slide_pixel_size(slide, path: str | os.PathLike) -> float | None:
    """Micrometres per pixel of a slide's full-resolution level from its metadata, or None when it records none.

    In order: the reader's ``mpp-x``/``mpp-y`` (Aperio's ``MPP``, vendor metadata, or the TIFF resolution tags in a
    unit of length), then the OME-XML ``PhysicalSizeX``/``PhysicalSizeY`` of an OME-TIFF. Pixels must be square, and
    the value plausible for a slide scan (:data:`PLAUSIBLE_PIXEL_SIZE_UM`); otherwise a :class:`SlideError` says so.
    """
    props = dict(slide.properties)
    pairs = [
        (props.get("tiffslide.mpp-x"), props.get("tiffslide.mpp-y"), "the slide's metadata"),
        (props.get("openslide.mpp-x"), props.get("openslide.mpp-y"), "the slide's metadata"),
        (*_ome_physical_size(path), "the OME-XML PhysicalSizeX/Y"),
    ]
    for x, y, source in pairs:
        if x is None:
            continue
        x, y = float(x), float(y if y is not None else x)
        if not np.isclose(x, y, rtol=0.01):
            msg = f"{str(path)!r}: pixels are not square ({x:g} × {y:g} µm from {source}); genar needs square pixels."
            raise SlideError(msg)
        lo, hi = PLAUSIBLE_PIXEL_SIZE_UM
        if not lo <= x <= hi:
            msg = (
                f"{str(path)!r}: {source} gives a pixel size of {x:g} µm, which is not that of a slide scan "
                f"({lo}–{hi} µm). Pass the true one as `pixel_size_um=` (0.25 for 40x, 0.5 for 20x)."
            )
            raise SlideError(msg)
        return x
    return None


def _ome_physical_size(path: str | os.PathLike) -> tuple[float | None, float | None]:
    """``PhysicalSizeX``/``Y`` of the first OME image, in micrometres; ``(None, None)`` for a file without OME-XML."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            xml = tf.ome_metadata
    except (tifffile.TiffFileError, OSError, ValueError):
        return None, None
    if not xml:
        return None, None
    root = ET.fromstring(xml)
    pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels") or e.tag == "Pixels"), None)
    if pixels is None or pixels.get("PhysicalSizeX") is None:
        return None, None
    sizes = []
    for axis in ("X", "Y"):
        value = pixels.get(f"PhysicalSize{axis}")
        unit = pixels.get(f"PhysicalSize{axis}Unit", "µm")
        if value is None:
            sizes.append(None)
            continue
        if unit not in _OME_UNITS:
            msg = f"{str(path)!r}: OME PhysicalSize{axis}Unit {unit!r} is not a unit of length genar knows."
            raise SlideError(msg)
        sizes.append(float(value) * _OME_UNITS[unit])
    return sizes[0], sizes[1]


def slide_levels(slide, backend: Backend) -> list:
    """Every pyramid level of the slide as a lazy ``(3, height, width)`` uint8 dask array, full resolution first.

    Each level's region reader is recorded (:mod:`genar._region_readers`), so that the patch reader decodes tiles
    straight from the slide on all of its threads.
    """
    import dask.array as da

    if backend == "tiffslide":
        group = slide.zarr_group
        levels = []
        for i in range(slide.level_count):
            stored = group[str(i)]
            array = da.from_zarr(stored)
            if array.ndim != 3 or array.shape[-1] not in (3, 4):
                msg = f"Level {i} of the slide has shape {array.shape}; genar reads RGB(A) slides (height, width, 3)."
                raise SlideError(msg)
            level = array[..., :3].transpose(2, 0, 1)
            register_region_reader(level, ZarrRegionReader(stored))
            levels.append(level)
        return levels
    return [_openslide_level(slide, i) for i in range(slide.level_count)]


def _openslide_level(slide, level: int):
    """A lazy dask array of one openslide level, read block by block with ``read_region``."""
    import dask.array as da

    width, height = slide.level_dimensions[level]
    chunk = OPENSLIDE_CHUNK_PX
    chunks = ((3,), _edges(height, chunk), _edges(width, chunk))
    read = OpenslideRegionReader(slide, level)

    def block(block_info=None):
        (_, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        return read(y0, y1, x0, x1)

    array = da.map_blocks(block, chunks=chunks, dtype=np.uint8, meta=np.empty((0, 0, 0), np.uint8))
    register_region_reader(array, read)
    return array


class OpenslideRegionReader:
    """Regions of one openslide level (in that level's pixels) as ``(3, h, w)`` uint8; openslide is thread-safe."""

    def __init__(self, slide, level: int) -> None:
        self.slide, self.level = slide, level
        self.scale = slide.level_downsamples[level]

    def __call__(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        origin = (int(x0 * self.scale), int(y0 * self.scale))  # read_region takes level 0's coordinates
        rgba = np.asarray(self.slide.read_region(origin, self.level, (x1 - x0, y1 - y0)))
        return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1))


class ZarrRegionReader:
    """Regions of a ``(height, width, channels)`` zarr array (a tiffslide level) as ``(3, h, w)`` uint8."""

    def __init__(self, array) -> None:
        self.array = array

    def __call__(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(self.array[y0:y1, x0:x1, :3], dtype=np.uint8).transpose(2, 0, 1))


def _edges(n: int, chunk: int) -> tuple[int, ...]:
    return tuple(min(chunk, n - s) for s in range(0, n, chunk))


def slide_image(levels: list, transformations: dict[str, BaseTransformation]) -> DataTree:
    """A multiscale image element from given levels (the file's own pyramid; nothing is resampled or read)."""
    import xarray as xr
    from spatialdata.models import Image2DModel
    from spatialdata.transformations import set_transformation

    tree = xr.DataTree.from_dict(
        {
            f"scale{i}": xr.Dataset(
                {
                    "image": xr.DataArray(
                        level, dims=("c", "y", "x"), coords={"c": ["r", "g", "b"]}, attrs={"transform": {}}
                    )
                }
            )
            for i, level in enumerate(levels)
        }
    )
    set_transformation(tree, dict(transformations), set_all=True)
    Image2DModel().validate(tree)
    return tree


def read_slide(
    path: str | os.PathLike,
    *,
    backend: Backend = "tiffslide",
    pixel_size_um: float | None = None,
) -> tuple[list, float]:
    """The lazy levels of a slide and its pixel size (the argument, else the slide's metadata, else an error)."""
    slide = open_slide(path, backend)
    recorded = slide_pixel_size(slide, path)
    if pixel_size_um is None and recorded is None:
        msg = (
            f"{str(path)!r} records no pixel size (no MPP, no resolution tags in a unit of length, no OME "
            "PhysicalSizeX). Pass it as `pixel_size_um=` (micrometres per full-resolution pixel: 0.25 for a 40x "
            "scan, 0.5 for 20x; see the scanner's report). genar never guesses the pixel size."
        )
        raise SlideError(msg)
    if pixel_size_um is not None and recorded is not None and not np.isclose(pixel_size_um, recorded, rtol=0.02):
        logger.warning("%s: using pixel_size_um=%g; the slide's metadata says %g", path, pixel_size_um, recorded)
    value = float(pixel_size_um if pixel_size_um is not None else recorded)
    if not (np.isfinite(value) and value > 0):
        msg = f"`pixel_size_um` must be a positive number of micrometres; got {pixel_size_um}."
        raise ValueError(msg)
    levels = slide_levels(slide, backend)
    logger.info("%s: %d levels, %d × %d px at %g µm/px", path, len(levels), *levels[0].shape[:0:-1], value)
    return levels, value


def read_wsi(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    pixel_size_um: float | None = None,
    backend: Backend = "tiffslide",
) -> SpatialData:
    """Read a whole-slide image (SVS, pyramidal TIFF, OME-TIFF, ...) as a SpatialData, lazily, with its pixel size.

    The slide's own pyramid levels become one multiscale image element, read tile by tile on demand (nothing is
    decoded until a patch is read). Its pixel size comes from the slide's metadata — Aperio's MPP, vendor
    properties, TIFF resolution tags in a unit of length, or an OME-TIFF's PhysicalSizeX — and is written into a
    coordinate system in micrometres, so that :func:`genar.pp.make_spots`, :func:`~genar.pp.extract_patches` and
    :func:`~genar.pp.embed_patches` need no ``pixel_size_um=``. A slide without it, or with an implausible one (a
    TIFF at 72 dpi), is an error that asks for ``pixel_size_um=``.

    Parameters
    ----------
    path
        The slide file.
    name
        Name of the section (default: the file name without its suffixes): the image is ``f"{name}_image"``, in the
        coordinate systems ``name`` (full-resolution pixels) and ``f"{name}_um"`` (micrometres).
    pixel_size_um
        Micrometres per full-resolution pixel, when the slide does not record it (or records it wrongly).
    backend
        ``'tiffslide'`` (default; pure Python over tifffile: SVS, generic and OME TIFF, NDPI, SCN, Philips TIFF)
        or ``'openslide'`` (also MRXS, VMS, BIF; ``pip install "genar[openslide]"``).

    Returns
    -------
    A :class:`~spatialdata.SpatialData` with the image element ``images[f"{name}_image"]``.

    Examples
    --------
    >>> sdata = genar.io.read_wsi("slide.svs")  # doctest: +SKIP
    >>> genar.pp.make_spots(sdata, "slide_image")  # doctest: +SKIP
    """
    from spatialdata import SpatialData

    levels, mpp = read_slide(path, backend=backend, pixel_size_um=pixel_size_um)
    name = name or Path(path).name.split(".")[0]
    image = slide_image(levels, section_transformations(name, mpp))
    return SpatialData(images={f"{name}_image": image})
