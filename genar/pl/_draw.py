"""Drawing spots on a section's image: shared by :func:`genar.pl.spatial` and :func:`genar.pl.uncertainty`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _keys
from .._geometry import choose_level, image_for_region, image_levels, region_of_section
from .._tables import to_dense

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from spatialdata import SpatialData

#: Longest edge, in pixels, of the image level drawn under the spots.
MAX_BACKGROUND_PX = 1500


def draw_spots(
    ax: Axes, xy: np.ndarray, radius: float, values: np.ndarray, *, norm, cmap, background, title: str, label: str
) -> None:
    """Spots as circles of their true radius coloured by ``values``, over the image ``background`` if given."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Circle

    if background is not None:
        img, extent = background
        ax.imshow(img, extent=extent)
    circles = PatchCollection([Circle((x, y), radius) for x, y in xy], cmap=cmap, norm=norm)
    circles.set_array(values)
    ax.add_collection(circles)
    ax.set_xlim(xy[:, 0].min() - 2 * radius, xy[:, 0].max() + 2 * radius)
    ax.set_ylim(xy[:, 1].max() + 2 * radius, xy[:, 1].min() - 2 * radius)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize="small")
    ax.figure.colorbar(circles, ax=ax, fraction=0.046, label=label)


def gene_column(X: Any, rows: np.ndarray, j: int) -> np.ndarray:
    """Column ``j`` of a (sparse or dense) layer at ``rows``, as floats."""
    return to_dense(X[rows][:, j], float).ravel()


def spot_radius(sdata: SpatialData, table: AnnData, section: str) -> float:
    """Radius of the section's spots in full-resolution pixels: from the scale factors, else the shapes."""
    scale = table.uns.get("spatial", {}).get(section, {}).get("scalefactors", {})
    if _keys.SPOT_DIAMETER_FULLRES in scale:
        return float(scale[_keys.SPOT_DIAMETER_FULLRES]) / 2
    shapes = sdata.shapes[region_of_section(table, section)]
    return float(np.median(shapes["radius"]))


def background(sdata: SpatialData, table: AnnData, section: str) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A low-resolution RGB level of the section's image and its extent in full-resolution pixels."""
    image_key, _ = image_for_region(sdata, region_of_section(table, section))
    levels = image_levels(sdata.images[image_key])
    height, width = levels[0].shape[-2:]
    level = levels[choose_level(levels, max_edge_px=MAX_BACKGROUND_PX)]
    rgb = np.moveaxis(np.asarray(level.data[:3]), 0, -1)
    return rgb, (0, width, height, 0)
