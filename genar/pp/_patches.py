"""Square H&E patches around every spot: geometry in ``extract_patches``, pixels read lazily on demand."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import _keys
from .._copy import supports_copy
from .._docs import doc_params
from .._geometry import (
    check_rgb_uint8,
    choose_level,
    image_for_region,
    image_levels,
    recorded_pixel_size,
    region_of_section,
    resolve_pixel_size,
    shapes_positions,
    spot_centres_in_image,
    spot_diameter_in_image,
)
from .._logging import logger
from .._tables import section_mask
from .._validate import check_overwrite, get_table, sections_of
from ._patch_reader import PatchReader, row_batches

if TYPE_CHECKING:
    from spatialdata import SpatialData


@supports_copy
@doc_params
def extract_patches(
    sdata: SpatialData,
    *,
    size_um: float = 112.0,
    patch_px: int = 224,
    table_key: str = _keys.PANEL_TABLE,
    image_key: str | Mapping[str, str] | None = None,
    pixel_size_um: float | Mapping[str, float] | None = None,
    spot_diameter_um: float | None = None,
    key_added: str = _keys.PATCHES,
    overwrite: bool = False,
) -> None:
    """Define a square H&E patch centred on every spot, ``size_um`` micrometres wide, read at ``patch_px`` pixels.

    Only the geometry is stored: the pixels are read on demand by :func:`read_patches` (and
    :func:`embed_patches`) from the pyramid level of the image closest to the requested resolution, so no
    full-resolution image is ever held in memory.

    Parameters
    ----------
    sdata
        SpatialData with images, spot shapes and a table annotating the shapes.
    size_um
        Edge of the patch in micrometres (112 µm: the 100 µm ST spot plus a margin).
    patch_px
        Edge, in pixels, to which each patch is resampled.
    {table_key}
    image_key
        Image to cut from (one key, or a dict per section). Default: the one image that shares a coordinate
        system with the section's spots.
    pixel_size_um
        Micrometres per full-resolution pixel (a number, or a dict per section). Default:
        ``table.uns['spatial'][section]['scalefactors']['microns_per_pixel']``, else ``spot_diameter_um``.
    spot_diameter_um
        The spots' true diameter in micrometres (55 for Visium, 100 for ST): when the pixel size is not known
        otherwise, it is this over the diameter of the spot circles in image pixels (as ``spatialdata_io.visium``
        writes them, from ``spot_diameter_fullres``).
    key_added
        Key of the outputs.
    {overwrite}

    Returns
    -------
    Nothing; sets in ``sdata.tables[table_key]``

    ``obsm[key_added]``
        Patch box ``(x0, y0, x1, y1)`` in full-resolution pixels of the section's image.
    ``shapes[f'{section}_{key_added}']``
        The patch boxes of each section as polygons indexed like its spots, in the image's pixels and with the
        image's transformations, so napari-spatialdata and spatialdata-plot draw them over the image.
    ``obs[f'{key_added}_border']``
        ``True`` where the patch reaches beyond the image; the missing pixels are padded white.
    ``uns[key_added]['params']``
        ``size_um``, ``patch_px`` and, per section, the image, pyramid level, pixel size and patch size in pixels.
    """
    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    if not (np.isfinite(size_um) and size_um > 0):
        msg = f"`size_um` must be a positive number of micrometres; got {size_um}."
        raise ValueError(msg)
    if int(patch_px) != patch_px or patch_px < 8:
        msg = f"`patch_px` must be an integer of at least 8 pixels; got {patch_px}."
        raise ValueError(msg)
    if spot_diameter_um is not None and not (np.isfinite(spot_diameter_um) and spot_diameter_um > 0):
        msg = f"`spot_diameter_um` must be a positive number of micrometres; got {spot_diameter_um}."
        raise ValueError(msg)
    check_overwrite(key_added in table.obsm, f"Patches (obsm[{key_added!r}])", overwrite=overwrite, rename="key_added")
    sections = sections_of(table)
    boxes = np.full((table.n_obs, 4), np.nan)
    border = np.zeros(table.n_obs, dtype=bool)
    per_section, patch_shapes = {}, {}
    for section in sections:
        rows = np.flatnonzero(section_mask(table, section))
        region = region_of_section(table, section)
        key = image_key.get(section) if isinstance(image_key, Mapping) else image_key
        img_key, cs = image_for_region(sdata, region, key)
        centres = spot_centres_in_image(sdata, region, img_key, cs)
        positions = shapes_positions(sdata, table, section, region)
        diameter = None
        if spot_diameter_um is not None:
            diameter = (float(spot_diameter_um), spot_diameter_in_image(sdata, region, img_key, cs))
        mpp = resolve_pixel_size(
            f"section {section!r}'s image",
            given=pixel_size_um,
            section=section,
            spot_diameter=diameter,
            recorded=recorded_pixel_size(table, section),
            ways=(
                "`pixel_size_um=` (a number, or a dict per section)",
                "`spot_diameter_um=` (the spots' true diameter, e.g. 55 for Visium: the pixel size follows from "
                "their circles)",
                f"table.uns['spatial'][{section!r}]['scalefactors'][{_keys.MICRONS_PER_PIXEL!r}]",
            ),
        )
        size_px = size_um / mpp
        xy = centres[positions]
        boxes[rows] = np.column_stack([xy - size_px / 2, xy + size_px / 2])
        levels = image_levels(sdata.images[img_key])
        check_rgb_uint8(levels[0], img_key)
        height, width = levels[0].shape[-2:]
        border[rows] = (
            (boxes[rows, 0] < 0) | (boxes[rows, 1] < 0) | (boxes[rows, 2] > width) | (boxes[rows, 3] > height)
        )
        outside = (boxes[rows, 2] <= 0) | (boxes[rows, 3] <= 0) | (boxes[rows, 0] >= width) | (boxes[rows, 1] >= height)
        if outside.any():
            warnings.warn(
                f"{int(outside.sum())} of the {len(rows)} spots of section {section!r} lie entirely outside image "
                f"{img_key!r} ({width} × {height} px), so their patches hold no tissue, only white padding. Check "
                "the transformation between the spots and the image, and `pixel_size_um`.",
                UserWarning,
                stacklevel=3,
            )
        level = choose_level(levels, max_downsample=size_px / patch_px)
        instances = sdata.shapes[region].index[positions]
        patch_shapes[_keys.patch_shapes(section, key_added)] = _boxes_as_shapes(
            boxes[rows], instances, sdata.images[img_key]
        )
        per_section[section] = {
            "image_key": img_key,
            "coordinate_system": cs,
            "level": level,
            "microns_per_pixel": mpp,
            "size_px": size_px,
        }
    table.obsm[key_added] = boxes
    for name, shapes in patch_shapes.items():
        if name in sdata.shapes:  # genar's name for the boxes: left by an earlier extract_patches on another table
            logger.warning("replacing shapes element %r with the new patch boxes", name)
            del sdata.shapes[name]
        sdata.shapes[name] = shapes
    table.obs[f"{key_added}_border"] = border
    table.uns[key_added] = {"params": {"size_um": float(size_um), "patch_px": int(patch_px), "sections": per_section}}
    if border.any():
        logger.warning("%d patches reach beyond their image; the missing pixels are padded white", int(border.sum()))
    logger.info("added `obsm[%r]`: %d patches of %g µm at %d px", key_added, table.n_obs, size_um, patch_px)


def _boxes_as_shapes(boxes: np.ndarray, instances, image):
    """Patch boxes (full-resolution pixels of ``image``) as a shapes element with the image's transformations."""
    import geopandas as gpd
    import shapely
    from spatialdata.models import ShapesModel
    from spatialdata.transformations import get_transformation

    frame = gpd.GeoDataFrame(geometry=shapely.box(*boxes.T), index=pd.Index(instances, name=None))
    return ShapesModel.parse(frame, transformations=get_transformation(image, get_all=True))


def read_patches(
    sdata: SpatialData,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    table_key: str = _keys.PANEL_TABLE,
    patches_key: str = _keys.PATCHES,
) -> np.ndarray:
    """Read patches as a uint8 array ``(n, patch_px, patch_px, 3)``.

    Parameters
    ----------
    sdata
        SpatialData after :func:`extract_patches`.
    indices
        Row positions in the table (default: all rows; mind the memory for large slides, or use
        :func:`iter_patches`).
    table_key, patches_key
        Where :func:`extract_patches` wrote the geometry.
    """
    table = get_table(sdata, table_key)
    reader = PatchReader(sdata, table, patches_key)
    try:
        return reader.read(np.arange(table.n_obs) if indices is None else np.asarray(indices, dtype=int))
    finally:
        reader.close()


def iter_patches(
    sdata: SpatialData,
    *,
    batch_size: int = 64,
    table_key: str = _keys.PANEL_TABLE,
    patches_key: str = _keys.PATCHES,
    prefetch: bool = True,
    buffers: Sequence[np.ndarray] | None = None,
    n_threads: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(rows, patches)`` batches over all spots, reading each batch lazily from the image pyramids.

    Each image chunk is decoded once however many patches overlap it (see :class:`PatchReader`); with ``prefetch``,
    the next batch is read on a background thread while the caller works on the current one.

    ``buffers``: uint8 arrays of at least ``(batch_size, patch_px, patch_px, 3)`` to read into in turn (batch ``k``
    into ``buffers[k % len(buffers)]``), such as page-locked memory that a GPU copies from without a staging copy.
    Each yielded batch is then a view of a buffer that a later batch overwrites: finish with it (a copy to a device
    included) before asking for the next. With ``prefetch`` the next batch is already being read into another
    buffer, so two at least are needed.

    ``n_threads``: threads that decode chunks and resample patches (default: the CPU's cores, at most 8). Fewer leave
    cores to a caller that encodes on the CPU meanwhile.
    """
    if n_threads is not None and n_threads < 1:
        msg = f"`n_threads` must be at least 1 (or None for the CPU's cores, at most 8); got {n_threads}."
        raise ValueError(msg)
    needed = 2 if prefetch else 1
    if buffers is not None and len(buffers) < needed:
        msg = (
            f"`buffers` must hold at least {needed} arrays (one is read into while the caller uses another); got "
            f"{len(buffers)}. Pass {needed} arrays, or `buffers=None`."
        )
        raise ValueError(msg)
    table = get_table(sdata, table_key)
    reader = PatchReader(sdata, table, patches_key, n_threads=n_threads)
    batches = row_batches(table.n_obs, batch_size)

    def read(k: int) -> np.ndarray:
        return reader.read(batches[k], out=None if buffers is None else buffers[k % len(buffers)])

    try:
        if not prefetch:
            for k, rows in enumerate(batches):
                yield rows, read(k)
            return
        with ThreadPoolExecutor(max_workers=1) as ahead:
            pending = ahead.submit(read, 0) if batches else None
            for k, rows in enumerate(batches):
                patches = pending.result()
                if k + 1 < len(batches):
                    pending = ahead.submit(read, k + 1)
                yield rows, patches
    finally:
        reader.close()
