"""Which image belongs to which spots, where the spots are in its pixels, and how large a pixel is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .. import _keys
from .._logging import logger
from .._validate import check_key

if TYPE_CHECKING:
    from anndata import AnnData
    from spatialdata import SpatialData
    from xarray import DataArray, DataTree


def region_of_section(table: AnnData, section: str) -> str:
    """The shapes element annotated by the rows of one section."""
    attrs = table.uns.get("spatialdata_attrs", {})
    region_key = attrs.get("region_key", _keys.REGION)
    check_key(table.obs, region_key, where="table.obs", hint="The table must annotate a shapes element.")
    regions = table.obs.loc[table.obs[_keys.SECTION].astype(str) == section, region_key].astype(str).unique()
    if len(regions) != 1:
        msg = f"Section {section!r} spans {len(regions)} shapes elements ({list(regions)}); expected exactly one."
        raise ValueError(msg)
    return str(regions[0])


def image_for_region(sdata: SpatialData, region: str, image_key: str | None = None) -> tuple[str, str]:
    """The image sharing a coordinate system with the shapes element ``region``: ``(image_key, coordinate_system)``."""
    from spatialdata.transformations import get_transformation

    check_key(sdata.shapes, region, where="sdata.shapes", hint="The table's region must name a shapes element.")
    spot_systems = set(get_transformation(sdata.shapes[region], get_all=True))
    if image_key is not None:
        check_key(sdata.images, image_key, where="sdata.images")
        shared = spot_systems & set(get_transformation(sdata.images[image_key], get_all=True))
        if not shared:
            msg = (
                f"Image {image_key!r} and spots {region!r} share no coordinate system (spots: {sorted(spot_systems)}); "
                "they cannot be aligned. Add a transformation that maps both into one coordinate system."
            )
            raise ValueError(msg)
        return image_key, sorted(shared)[0]
    matches = [
        (key, cs)
        for key, image in sdata.images.items()
        for cs in sorted(spot_systems & set(get_transformation(image, get_all=True)))
    ]
    keys = sorted({k for k, _ in matches})
    if not keys:
        msg = (
            f"No image shares a coordinate system with spots {region!r} (its coordinate systems: "
            f"{sorted(spot_systems)}). Available images: {sorted(sdata.images)}. Pass `image_key=` with a "
            "transformation linking the image to the spots."
        )
        raise KeyError(msg)
    if len(keys) > 1:  # e.g. Visium's full-resolution, hires and lowres images: take the sharpest
        cs = {k: next(c for kk, c in matches if kk == k) for k in keys}
        size = {k: _unit_per_pixel(sdata.images[k], cs[k]) for k in keys}
        finest = sorted(keys, key=size.get)
        if np.isclose(size[finest[0]], size[finest[1]], rtol=1e-6):
            msg = (
                f"Several images share a coordinate system with spots {region!r} at the same resolution: {keys}. "
                "Choose one with `image_key=`."
            )
            raise ValueError(msg)
        logger.info("spots %r: using image %r, the finest of %s", region, finest[0], keys)
        return finest[0], cs[finest[0]]
    return keys[0], next(cs for k, cs in matches if k == keys[0])


def _unit_per_pixel(image, coordinate_system: str) -> float:
    """Length in ``coordinate_system`` units of one full-resolution pixel of ``image``."""
    from spatialdata.transformations import get_transformation

    affine = get_transformation(image, coordinate_system).to_affine_matrix(
        input_axes=("x", "y"), output_axes=("x", "y")
    )
    return float(np.sqrt(abs(np.linalg.det(affine[:2, :2]))))


def spot_centres_in_image(sdata: SpatialData, region: str, image_key: str, coordinate_system: str) -> np.ndarray:
    """Centres ``(x, y)`` of the spots of ``region`` in the full-resolution pixels of ``image_key``, in shapes order."""
    from spatialdata.transformations import get_transformation

    shapes = sdata.shapes[region]
    xy = np.column_stack([shapes.geometry.centroid.x.to_numpy(), shapes.geometry.centroid.y.to_numpy()])
    to_cs = get_transformation(shapes, coordinate_system).to_affine_matrix(
        input_axes=("x", "y"), output_axes=("x", "y")
    )
    img_to_cs = get_transformation(sdata.images[image_key], coordinate_system).to_affine_matrix(
        input_axes=("x", "y"), output_axes=("x", "y")
    )
    affine = np.linalg.inv(img_to_cs) @ to_cs
    return xy @ affine[:2, :2].T + affine[:2, 2]


def spot_diameter_in_image(sdata: SpatialData, region: str, image_key: str, coordinate_system: str) -> float:
    """Diameter of the circles of ``region`` in full-resolution pixels of ``image_key`` (their median)."""
    from spatialdata.transformations import get_transformation

    shapes = sdata.shapes[region]
    if "radius" not in shapes:
        msg = f"Spots {region!r} are not circles (no 'radius' column): their diameter cannot give the pixel size."
        raise ValueError(msg)
    to_cs = get_transformation(shapes, coordinate_system).to_affine_matrix(
        input_axes=("x", "y"), output_axes=("x", "y")
    )
    img_to_cs = get_transformation(sdata.images[image_key], coordinate_system).to_affine_matrix(
        input_axes=("x", "y"), output_axes=("x", "y")
    )
    scale = float(np.sqrt(abs(np.linalg.det((np.linalg.inv(img_to_cs) @ to_cs)[:2, :2]))))
    return 2 * float(np.median(shapes["radius"])) * scale


def pixel_size(
    table: AnnData,
    section: str,
    pixel_size_um: float | Mapping[str, float] | None,
    *,
    spot_diameter: tuple[float, float] | None = None,
) -> float:
    """Micrometres per full-resolution pixel of a section's image.

    The argument, else ``uns['spatial']``, else (when ``spot_diameter`` = ``(micrometres, pixels)`` is given) the
    spots' physical diameter over their diameter in pixels.
    """
    value = pixel_size_um.get(section) if isinstance(pixel_size_um, Mapping) else pixel_size_um
    if value is None and spot_diameter is not None:
        value = spot_diameter[0] / spot_diameter[1]
    if value is None:
        value = table.uns.get("spatial", {}).get(section, {}).get("scalefactors", {}).get(_keys.MICRONS_PER_PIXEL)
    if value is None:
        msg = (
            f"The pixel size of section {section!r}'s image is unknown. Pass `pixel_size_um=` (micrometres per "
            f"full-resolution pixel, e.g. 0.5 for a 20x scan, or a dict per section), `spot_diameter_um=` (the "
            f"spots' true diameter, e.g. 55 for Visium: the pixel size follows from their circles), or set "
            f"table.uns['spatial'][{section!r}]['scalefactors'][{_keys.MICRONS_PER_PIXEL!r}]."
        )
        raise ValueError(msg)
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        msg = f"The pixel size of section {section!r} must be a positive number of micrometres; got {value}."
        raise ValueError(msg)
    return value


def image_levels(image: DataArray | DataTree) -> list[DataArray]:
    """The levels of an image element, full resolution first (a single-scale image gives one level)."""
    from xarray import DataArray

    if isinstance(image, DataArray):
        return [image]
    return [next(iter(image[name].ds.data_vars.values())) for name in sorted(image.children, key=_level_index)]


def _level_index(name: str) -> int:
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else 0
