"""A coordinate system in micrometres for sections read by other tools (e.g. ``spatialdata_io.visium``).

genar's own readers give every section two coordinate systems, its image's pixels (``section``) and micrometres
(``f"{section}_um"``). :func:`add_micron_system` adds the second to a section that lacks it: every element drawn in the
section's pixel coordinate system (image, spots, patch boxes, tissue mask) is mapped into micrometres too, so napari and
spatialdata-plot show them on a physical scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _keys
from .._docs import doc_params
from .._geometry import (
    affine_xy,
    coordinate_systems,
    image_for_region,
    recorded_pixel_size,
    region_of_section,
    resolve_pixel_size,
)
from .._logging import logger
from .._validate import check_sections, get_table, sections_of

if TYPE_CHECKING:
    from spatialdata import SpatialData


@doc_params
def add_micron_system(
    sdata: SpatialData,
    sections: str | Sequence[str] | None = None,
    *,
    pixel_size_um: float | Mapping[str, float] | None = None,
    table_key: str = _keys.PANEL_TABLE,
) -> list[str]:
    """Map every element of each section into a coordinate system in micrometres, ``f"{section}_um"``.

    The elements are those drawn in the coordinate system the section's spots share with its image (the image, the
    spots, the patch boxes of :func:`genar.pp.extract_patches`, a tissue mask, ...); each gets the transformation
    ``micrometres = pixel_size_um × (image pixel)`` composed with its own. A section that has the coordinate system
    already is left as it is. This writes to the elements' transformations (not to their data), in place.

    Parameters
    ----------
    sdata
        SpatialData with a table annotating each section's spots.
    sections
        Sections to give a micrometre coordinate system (default: all of the table's).
    pixel_size_um
        Micrometres per full-resolution image pixel (a number, or a dict per section). Default: the one recorded in
        ``table.uns['spatial'][section]['scalefactors']['microns_per_pixel']`` (written by genar's readers and by
        :func:`genar.pp.extract_patches`).
    {table_key}

    Returns
    -------
    The coordinate systems added.

    Examples
    --------
    >>> sdata = spatialdata_io.visium(path, dataset_id="A1")  # doctest: +SKIP
    >>> genar.pp.select_genes(sdata, 200)  # doctest: +SKIP
    >>> genar.io.add_micron_system(sdata, pixel_size_um=0.46)  # doctest: +SKIP
    ['A1_um']
    """
    from spatialdata.transformations import Affine, Scale, set_transformation

    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` (or `genar.pp.make_spots`) first.")
    chosen = check_sections(
        [sections] if isinstance(sections, str) else sections, sections_of(table), argument="sections"
    )
    added = []
    for section in chosen:
        name = _keys.micron_system(section)
        region = region_of_section(table, section)
        image_key, system = image_for_region(sdata, region)
        image = sdata.images[image_key]
        if name in coordinate_systems(image):
            logger.info("section %r has a coordinate system %r already; left as it is", section, name)
            continue
        mpp = resolve_pixel_size(
            f"section {section!r}'s image",
            given=pixel_size_um,
            section=section,
            recorded=recorded_pixel_size(table, section) or _patches_pixel_size(table, section),
            ways=("`pixel_size_um=` (a number, or a dict per section)", "`genar.pp.extract_patches` first"),
        )
        to_pixels = np.linalg.inv(affine_xy(image, system))  # the section's coordinates -> image pixels
        micrometres = np.diag([mpp, mpp, 1.0])
        for element in _elements_in(sdata, system):
            if name in coordinate_systems(element):
                continue
            if element is image:
                set_transformation(element, Scale([mpp, mpp], axes=("y", "x")), to_coordinate_system=name)
                continue
            matrix = micrometres @ to_pixels @ affine_xy(element, system)
            set_transformation(element, Affine(matrix, ("x", "y"), ("x", "y")), to_coordinate_system=name)
        added.append(name)
        logger.info("section %r: added coordinate system %r at %g µm per pixel of %r", section, name, mpp, image_key)
    return added


def _patches_pixel_size(table, section: str) -> float | None:
    """The pixel size :func:`genar.pp.extract_patches` used for a section, or None."""
    sections = table.uns.get(_keys.PATCHES, {}).get("params", {}).get("sections", {})
    return sections.get(section, {}).get("microns_per_pixel")


def _elements_in(sdata: SpatialData, system: str) -> list[Any]:
    """Every image, labels, shapes and points element mapped into ``system``."""
    stores = (sdata.images, sdata.labels, sdata.shapes, sdata.points)
    return [element for store in stores for element in store.values() if system in coordinate_systems(element)]
