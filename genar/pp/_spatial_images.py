"""Scanpy/squidpy's ``uns['spatial']`` convention on genar's tables: a low-resolution H&E and its scale factor.

``sc.pl.spatial`` and ``sq.pl.spatial_scatter`` draw a table on its own, without the SpatialData around it: they read
``uns['spatial'][library_id]['images']['hires']`` and ``['scalefactors']['tissue_hires_scalef']`` (the factor from
``obsm['spatial']`` to that image's pixels) and ``['spot_diameter_fullres']``. The tables genar writes carry them,
taken from the section's image element (a pyramid level at most :data:`HIRES_MAX_EDGE_PX` pixels on its longest edge).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _keys
from .._geometry import (
    element_to_image,
    image_for_region,
    overview,
    region_of_section,
    shapes_centres,
    shapes_positions,
)
from .._logging import logger
from .._tables import section_mask

if TYPE_CHECKING:
    from anndata import AnnData
    from spatialdata import SpatialData

#: Longest edge of the ``'hires'`` image, as Space Ranger writes it.
HIRES_MAX_EDGE_PX = 2000
#: ``uns['spatial'][section]['scalefactors']`` key of the factor from ``obsm['spatial']`` to the hires image's pixels.
HIRES_SCALEF = "tissue_hires_scalef"


def add_spatial_images(sdata: SpatialData, table: AnnData, sections: list[str]) -> None:
    """Give each section of ``table`` a ``'hires'`` H&E and the scale factors scanpy and squidpy read.

    A section keeps a ``'hires'`` image it already has. Nothing is added (logged) where the section has no image, or
    where ``obsm['spatial']`` is not a plain scaling of the image's pixels (a rotation, a shift or a different frame),
    which a single scale factor cannot express.
    """
    if _keys.SPATIAL not in table.obsm:
        logger.info("no `obsm[%r]`: no images for scanpy/squidpy in `uns['spatial']`", _keys.SPATIAL)
        return
    spatial = table.uns.setdefault("spatial", {})
    for section in sections:
        entry = spatial.setdefault(section, {})
        scalefactors = entry.setdefault("scalefactors", {})
        if "hires" in entry.get("images", {}) and HIRES_SCALEF in scalefactors:
            continue
        found = _hires(sdata, table, section)
        if found is None:
            continue
        image, scalef, diameter = found
        entry.setdefault("images", {})["hires"] = image
        scalefactors[HIRES_SCALEF] = scalef
        if diameter is not None:
            scalefactors.setdefault(_keys.SPOT_DIAMETER_FULLRES, diameter)


def _hires(sdata: SpatialData, table: AnnData, section: str) -> tuple[np.ndarray, float, float | None] | None:
    """The section's low-resolution RGB image, the factor from ``obsm['spatial']`` to it, and the spot diameter."""
    try:
        region = region_of_section(table, section)
        image_key, system = image_for_region(sdata, region)
        positions = shapes_positions(sdata, table, section, region)
    except (KeyError, ValueError) as err:
        logger.info("section %r: no image for scanpy/squidpy in `uns['spatial']` (%s)", section, err)
        return None
    shapes = sdata.shapes[region]
    xy_shapes = shapes_centres(shapes)[positions]
    xy_table = np.asarray(table.obsm[_keys.SPATIAL], dtype=float)[section_mask(table, section), :2]
    affine = element_to_image(sdata, shapes, image_key, system)
    scale = float(affine[0, 0])
    frame_matches = np.allclose(xy_shapes, xy_table, rtol=1e-6, atol=1e-3)
    if not frame_matches or not np.allclose(affine[:2, :], [[scale, 0, 0], [0, scale, 0]], rtol=1e-6, atol=1e-6):
        logger.info(
            "section %r: `obsm[%r]` is not a plain scaling of image %r's pixels; no image for scanpy/squidpy",
            section,
            _keys.SPATIAL,
            image_key,
        )
        return None
    rgb, per_full_res_px = overview(sdata.images[image_key], HIRES_MAX_EDGE_PX)
    diameter = 2 * float(np.median(shapes["radius"])) if "radius" in shapes else None
    return rgb, scale * per_full_res_px, diameter
