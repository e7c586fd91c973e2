"""Drawing spots on a section's image: shared by :func:`genar.pl.spatial` and :func:`genar.pl.uncertainty`.

Everything is drawn in the coordinates of the section's spots (its shapes element). The image is placed there through
its transformation, so an image at another resolution than the spots' frame (Visium's hires and lowres PNGs when the
full-resolution TIFF was not read, a pyramid level) lands under the right spots. The spots are one
:class:`~matplotlib.collections.EllipseCollection`, which draws 10^5–10^6 spots (Visium HD bins) as fast as a few
hundred.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _keys
from .._geometry import (
    element_to_image,
    image_for_region,
    image_levels,
    overview,
    region_of_section,
    shapes_centres,
    shapes_positions,
)
from .._tables import to_dense

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from spatialdata import SpatialData

#: Longest edge, in pixels, of the image level drawn under the spots.
MAX_BACKGROUND_PX = 1500


@dataclass(frozen=True)
class SectionView:
    """What a section's panels draw: spot centres and radius in the spots' frame, and the image placed in it."""

    xy: np.ndarray
    radius: float
    image: np.ndarray | None
    #: ``3 × 3`` affine from the image's full-resolution pixels to the spots' frame.
    image_to_spots: np.ndarray | None
    #: Full-resolution size ``(height, width)`` of the image.
    image_shape: tuple[int, int] | None


def section_view(sdata: SpatialData, table: AnnData, section: str, *, image: bool) -> SectionView:
    """The spots of one section in their shapes' coordinates (table order) and, if asked, its image placed there."""
    region = region_of_section(table, section)
    shapes = sdata.shapes[region]
    xy = shapes_centres(shapes)[shapes_positions(sdata, table, section, region)]
    radius = spot_radius(sdata, table, section)
    if not image:
        return SectionView(xy, radius, None, None, None)
    image_key, system = image_for_region(sdata, region)
    rgb, _ = overview(sdata.images[image_key], MAX_BACKGROUND_PX)
    to_spots = np.linalg.inv(element_to_image(sdata, shapes, image_key, system))
    height, width = image_levels(sdata.images[image_key])[0].shape[-2:]
    return SectionView(xy, radius, rgb, to_spots, (int(height), int(width)))


def draw_spots(ax: Axes, view: SectionView, values: np.ndarray, *, norm, cmap, title: str, label: str) -> None:
    """Spots as discs of their true radius coloured by ``values``, over the section's image if the view has one."""
    from matplotlib.collections import EllipseCollection

    if view.image is not None:
        _draw_image(ax, view)
    diameter = np.full(len(view.xy), 2 * view.radius)
    spots = EllipseCollection(
        diameter, diameter, np.zeros(len(view.xy)), units="xy", offsets=view.xy, offset_transform=ax.transData
    )
    spots.set_cmap(cmap)
    spots.set_norm(norm)
    spots.set_array(np.asarray(values, dtype=float))
    ax.add_collection(spots)
    pad = 2 * view.radius
    ax.set_xlim(view.xy[:, 0].min() - pad, view.xy[:, 0].max() + pad)
    ax.set_ylim(view.xy[:, 1].max() + pad, view.xy[:, 1].min() - pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize="small")
    ax.figure.colorbar(spots, ax=ax, fraction=0.046, label=label)


def _draw_image(ax: Axes, view: SectionView) -> None:
    """The image in the spots' frame: an extent when the transformation only scales and shifts, else an affine."""
    from matplotlib.transforms import Affine2D

    height, width = view.image_shape
    affine = view.image_to_spots
    if np.allclose(affine[0, 1], 0) and np.allclose(affine[1, 0], 0):
        (x0, y0), (x1, y1) = (affine[:2, :2] @ np.array([[0, width], [0, height]]) + affine[:2, 2:]).T
        ax.imshow(view.image, extent=(x0, x1, y1, y0))
        return
    # rotated or sheared: draw in full-resolution pixels, then map them into the spots' frame
    shown = ax.imshow(view.image, extent=(0, width, height, 0))
    shown.set_transform(Affine2D(affine) + ax.transData)


def gene_column(X: Any, rows: np.ndarray, j: int) -> np.ndarray:
    """Column ``j`` of a (sparse or dense) layer at ``rows``, as floats."""
    return to_dense(X[rows][:, j], float).ravel()


def spot_radius(sdata: SpatialData, table: AnnData, section: str) -> float:
    """Radius of the section's spots in their shapes' coordinates: the circles' radius, else the scale factors."""
    shapes = sdata.shapes[region_of_section(table, section)]
    if "radius" in shapes:
        return float(np.median(shapes["radius"]))
    scale = table.uns.get("spatial", {}).get(section, {}).get("scalefactors", {})
    if _keys.SPOT_DIAMETER_FULLRES in scale:  # squares or polygons: the diameter genar recorded for them
        return float(scale[_keys.SPOT_DIAMETER_FULLRES]) / 2
    bounds = shapes.geometry.bounds
    return float(np.median(bounds["maxx"] - bounds["minx"])) / 2
