"""Where things are in space: images, spots, pixel sizes and pyramid levels.

Which image belongs to which spots, where the spots are in its pixels, how large a pixel is, and which level of an
image pyramid to read; shared by pp (patches, pseudo-spots) and pl (backgrounds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _keys
from ._logging import logger
from ._tables import section_mask
from ._validate import check_key

if TYPE_CHECKING:
    from anndata import AnnData
    from spatialdata import SpatialData
    from xarray import DataArray, DataTree


# -- transformations -------------------------------------------------------------------------------------------------
def section_transformations(section: str, pixel_size_um: float | None) -> dict:
    """A section's coordinate systems: its image's pixels (``section``) and micrometres (``f"{section}_um"``)."""
    from spatialdata.transformations import Identity, Scale

    systems = {section: Identity()}
    if pixel_size_um is not None:
        systems[_keys.micron_system(section)] = Scale([pixel_size_um, pixel_size_um], axes=("y", "x"))
    return systems


def affine_xy(element: Any, coordinate_system: str) -> np.ndarray:
    """The ``3 × 3`` affine matrix (x, y) that maps ``element`` into ``coordinate_system``."""
    from spatialdata.transformations import get_transformation

    return get_transformation(element, coordinate_system).to_affine_matrix(
        input_axes=("x", "y"), output_axes=("x", "y")
    )


def axis_scales(affine: np.ndarray) -> tuple[float, float]:
    """Length of a unit step along x and along y after the linear part of ``affine``."""
    sx, sy = np.linalg.norm(np.asarray(affine)[:2, :2], axis=0)
    return float(sx), float(sy)


def element_to_image(sdata: SpatialData, element: Any, image_key: str, coordinate_system: str) -> np.ndarray:
    """The affine matrix from ``element``'s own coordinates to the full-resolution pixels of ``image_key``."""
    return np.linalg.inv(affine_xy(sdata.images[image_key], coordinate_system)) @ affine_xy(element, coordinate_system)


def coordinate_systems(element: Any) -> set[str]:
    """The coordinate systems an element is mapped into."""
    from spatialdata.transformations import get_transformation

    return set(get_transformation(element, get_all=True))


# -- images ------------------------------------------------------------------------------------------------------------
def image_levels(image: DataArray | DataTree) -> list[DataArray]:
    """The levels of an image element, full resolution first (a single-scale image gives one level)."""
    from xarray import DataArray

    if isinstance(image, DataArray):
        return [image]
    return [next(iter(image[name].ds.data_vars.values())) for name in sorted(image.children, key=_level_index)]


def _level_index(name: str) -> int:
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else 0


def choose_level(
    levels: Sequence[DataArray], *, max_downsample: float | None = None, max_edge_px: int | None = None
) -> int:
    """Index of the pyramid level to read.

    With ``max_downsample``: the coarsest level downsampled at most that much from full resolution (a patch of
    ``size_px`` full-resolution pixels read at ``patch_px`` needs ``max_downsample = size_px / patch_px``). With
    ``max_edge_px``: the finest level whose longest edge is at most that many pixels, else the coarsest level.
    """
    if (max_downsample is None) == (max_edge_px is None):
        msg = "Pass exactly one of `max_downsample` and `max_edge_px`."
        raise ValueError(msg)
    full_width = levels[0].shape[-1]
    if max_downsample is not None:
        fine_enough = [i for i, level in enumerate(levels) if level.shape[-1] * max_downsample >= full_width]
        return max(fine_enough, default=0)
    return next((i for i, level in enumerate(levels) if max(level.shape[-2:]) <= max_edge_px), len(levels) - 1)


def overview(image: DataArray | DataTree, max_edge_px: int) -> tuple[np.ndarray, float]:
    """A small RGB copy of an image, at most ``max_edge_px`` on its longest edge, and its pixels per full-res pixel.

    The finest pyramid level that fits; from a level still too large (a single-scale image), every n-th pixel.
    """
    levels = image_levels(image)
    level = levels[choose_level(levels, max_edge_px=max_edge_px)]
    step = max(1, int(np.ceil(max(level.shape[-2:]) / max_edge_px)))
    rgb = np.ascontiguousarray(np.moveaxis(np.asarray(level.data[:3, ::step, ::step]), 0, -1))
    return rgb, level.shape[-1] / levels[0].shape[-1] / step


def check_rgb_uint8(image: DataArray, image_key: str) -> None:
    """Raise unless a level of an image is RGB (3 or more channels) of dtype uint8, as an H&E scan is."""
    if image.dtype != np.uint8 or image.shape[0] < 3:
        msg = (
            f"Image {image_key!r} has {image.shape[0]} channels of dtype {image.dtype}; genar reads RGB uint8 H&E "
            "images (0-255). Convert it first, e.g. with `(image * 255).astype('uint8')` for a 0-1 float image."
        )
        raise TypeError(msg)


# -- spots and their images -------------------------------------------------------------------------------------------
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
    check_key(sdata.shapes, region, where="sdata.shapes", hint="The table's region must name a shapes element.")
    spot_systems = coordinate_systems(sdata.shapes[region])
    if image_key is not None:
        check_key(sdata.images, image_key, where="sdata.images")
        shared = spot_systems & coordinate_systems(sdata.images[image_key])
        if not shared:
            msg = (
                f"Image {image_key!r} and spots {region!r} share no coordinate system (spots: {sorted(spot_systems)}); "
                "they cannot be aligned. Add a transformation that maps both into one coordinate system."
            )
            raise ValueError(msg)
        return image_key, sorted(shared)[0]
    matches = [
        (key, cs) for key, image in sdata.images.items() for cs in sorted(spot_systems & coordinate_systems(image))
    ]
    keys = sorted({k for k, _ in matches})
    if not keys:
        msg = (
            f"No image shares a coordinate system with spots {region!r} (its coordinate systems: "
            f"{sorted(spot_systems)}). Available images: {sorted(sdata.images)}. Pass `image_key=` with a "
            "transformation linking the image to the spots."
        )
        raise KeyError(msg)
    system = {k: next(c for kk, c in matches if kk == k) for k in keys}
    if len(keys) > 1:  # e.g. Visium's full-resolution, hires and lowres images: take the sharpest
        size = {k: float(np.sqrt(abs(np.linalg.det(affine_xy(sdata.images[k], system[k])[:2, :2])))) for k in keys}
        finest = sorted(keys, key=size.get)
        if np.isclose(size[finest[0]], size[finest[1]], rtol=1e-6):
            msg = (
                f"Several images share a coordinate system with spots {region!r} at the same resolution: {keys}. "
                "Choose one with `image_key=`."
            )
            raise ValueError(msg)
        logger.info("spots %r: using image %r, the finest of %s", region, finest[0], keys)
        return finest[0], system[finest[0]]
    return keys[0], system[keys[0]]


def shapes_positions(sdata: SpatialData, table: AnnData, section: str, region: str) -> np.ndarray:
    """Position, in the shapes element ``region``, of each row of ``section`` in ``table`` (by the instance key)."""
    instance_key = table.uns.get("spatialdata_attrs", {}).get("instance_key", _keys.INSTANCE)
    check_key(table.obs, instance_key, where="table.obs")
    instances = table.obs[instance_key].to_numpy()[section_mask(table, section)]
    positions = sdata.shapes[region].index.get_indexer(instances)
    if (positions < 0).any():
        bad = instances[positions < 0][:10].tolist()
        msg = f"Rows of section {section!r} point at instances {bad} that shapes {region!r} does not have."
        raise ValueError(msg)
    return positions


def shapes_centres(shapes: Any) -> np.ndarray:
    """Centres ``(x, y)`` of a shapes element in its own coordinates, in its order."""
    centroids = shapes.geometry.centroid
    return np.column_stack([centroids.x.to_numpy(), centroids.y.to_numpy()])


def spot_centres_in_image(sdata: SpatialData, region: str, image_key: str, coordinate_system: str) -> np.ndarray:
    """Centres ``(x, y)`` of the spots of ``region`` in the full-resolution pixels of ``image_key``, in shapes order."""
    shapes = sdata.shapes[region]
    xy = shapes_centres(shapes)
    affine = element_to_image(sdata, shapes, image_key, coordinate_system)
    return xy @ affine[:2, :2].T + affine[:2, 2]


def spot_diameter_in_image(sdata: SpatialData, region: str, image_key: str, coordinate_system: str) -> float:
    """Diameter of the circles of ``region`` in full-resolution pixels of ``image_key`` (their median)."""
    shapes = sdata.shapes[region]
    if "radius" not in shapes:
        msg = f"Spots {region!r} are not circles (no 'radius' column): their diameter cannot give the pixel size."
        raise ValueError(msg)
    affine = element_to_image(sdata, shapes, image_key, coordinate_system)
    return 2 * float(np.median(shapes["radius"])) * float(np.sqrt(abs(np.linalg.det(affine[:2, :2]))))


# -- pixel size -------------------------------------------------------------------------------------------------------
def micron_scale(element: Any, coordinate_system: str, *, what: str) -> float:
    """Micrometres per pixel of ``element`` from its transformation into a coordinate system in micrometres.

    The scale must be the same along x and y (square pixels).
    """
    systems = coordinate_systems(element)
    if coordinate_system not in systems:
        msg = (
            f"`micron_coordinate_system`={coordinate_system!r} is not a coordinate system of {what}: {sorted(systems)}."
        )
        raise ValueError(msg)
    sx, sy = axis_scales(affine_xy(element, coordinate_system))
    if not np.isclose(sx, sy, rtol=1e-3):
        msg = f"{what} is scaled differently along x ({sx:g}) and y ({sy:g}) into {coordinate_system!r}."
        raise ValueError(msg)
    return sx


def resolve_pixel_size(
    what: str,
    *,
    given: float | Mapping[str, float] | None = None,
    section: str | None = None,
    micron_system: tuple[Any, str] | None = None,
    spot_diameter: tuple[float, float] | None = None,
    recorded: float | None = None,
    ways: Sequence[str] = ("`pixel_size_um=`",),
) -> float:
    """Micrometres per full-resolution pixel, from the first source that gives it, checked to be a positive number.

    Sources in order: ``given`` (a number, or a dict per ``section``), a coordinate system in micrometres
    (``micron_system`` = ``(element, name)``), the spots' physical diameter over their diameter in pixels
    (``spot_diameter`` = ``(micrometres, pixels)``), and a value ``recorded`` with the data. The pixel size is never
    guessed: when no source gives it, the error names ``what`` and the ``ways`` to give it.
    """
    value = given.get(section) if isinstance(given, Mapping) else given
    if value is None and micron_system is not None:
        value = micron_scale(*micron_system, what=what)
    if value is None and spot_diameter is not None:
        value = spot_diameter[0] / spot_diameter[1]
    if value is None:
        value = recorded
    if value is None:
        msg = (
            f"The pixel size of {what} is unknown. Pass "
            + ", or ".join(ways)
            + " (micrometres per full-resolution pixel: about 0.5 for a 20x scan, 0.25 for 40x; see the scanner's "
            "metadata). genar never guesses the pixel size."
        )
        raise ValueError(msg)
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        msg = f"The pixel size of {what} must be a positive number of micrometres; got {value}."
        raise ValueError(msg)
    return value


def recorded_pixel_size(table: AnnData, section: str) -> float | None:
    """``uns['spatial'][section]['scalefactors']['microns_per_pixel']``, or None."""
    return table.uns.get("spatial", {}).get(section, {}).get("scalefactors", {}).get(_keys.MICRONS_PER_PIXEL)
