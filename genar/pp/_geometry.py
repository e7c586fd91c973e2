"""Which image belongs to which spots, where the spots are in its pixels, and how large a pixel is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .. import _keys
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
    if len(keys) > 1:
        msg = f"Several images share a coordinate system with spots {region!r}: {keys}. Choose one with `image_key=`."
        raise ValueError(msg)
    return keys[0], next(cs for k, cs in matches if k == keys[0])


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


def pixel_size(table: AnnData, section: str, pixel_size_um: float | Mapping[str, float] | None) -> float:
    """Micrometres per full-resolution pixel of a section's image: the argument, else ``uns['spatial']``."""
    value = pixel_size_um.get(section) if isinstance(pixel_size_um, Mapping) else pixel_size_um
    if value is None:
        value = table.uns.get("spatial", {}).get(section, {}).get("scalefactors", {}).get(_keys.MICRONS_PER_PIXEL)
    if value is None:
        msg = (
            f"The pixel size of section {section!r}'s image is unknown. Pass `pixel_size_um=` (micrometres per "
            f"full-resolution pixel, e.g. 0.5 for a 20x scan, or a dict per section), or set "
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
