"""Observed and predicted expression side by side on the H&E image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import _keys
from .._validate import check_key, get_table
from ..pp._geometry import image_for_region, image_levels, region_of_section

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from spatialdata import SpatialData

#: Longest edge, in pixels, of the image level drawn under the spots.
MAX_BACKGROUND_PX = 1500
_HINTS = {"counts": "The measured counts come from `genar.pp.select_genes`.", None: "Run `genar.tl.predict` first."}


def spatial(
    sdata: SpatialData,
    genes: str | Sequence[str],
    *,
    section: str,
    layers: Sequence[str] = ("counts", "genar_counts"),
    image: bool = True,
    table_key: str = _keys.PANEL_TABLE,
    cmap: str = "viridis",
    ax: Axes | Sequence[Axes] | None = None,
) -> list[Axes]:
    """Draw each gene's expression in every layer side by side on the section's H&E image.

    The panels of one gene share a colour scale (log1p of the counts); every spot is drawn at its true footprint
    (``uns['spatial'][section]['scalefactors']['spot_diameter_fullres']``, else the spot shapes' radius).

    Parameters
    ----------
    sdata
        SpatialData with the panel table.
    genes
        Gene(s) to show, one row of panels each.
    section
        The section to show.
    layers
        Layers to compare, one column each (default: measured vs predicted).
    image
        Draw the H&E image under the spots (a low-resolution pyramid level).
    table_key
        The panel table.
    cmap
        Colour map of the expression.
    ax
        ``len(genes) * len(layers)`` Axes to draw into, row by row (default: a new figure).

    Returns
    -------
    The Axes, row by row (gene by gene).
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    genes = [genes] if isinstance(genes, str) else list(genes)
    if not genes or not list(layers):
        msg = f"`genes` and `layers` must each name at least one; got genes={genes!r}, layers={list(layers)!r}."
        raise ValueError(msg)
    missing = [g for g in genes if g not in table.var_names]
    if missing:
        msg = f"Genes {missing} are not in the panel of table {table_key!r} ({table.n_vars} genes)."
        raise KeyError(msg)
    for layer in layers:
        check_key(table.layers, layer, where="table.layers", hint=_HINTS.get(layer, _HINTS[None]))
    rows = (table.obs[_keys.SECTION].astype(str) == section).to_numpy()
    if not rows.any():
        msg = f"Section {section!r} has no spots in table {table_key!r}; sections: {sorted(set(table.obs['section']))}."
        raise ValueError(msg)
    n = len(genes) * len(layers)
    if ax is None:
        _, axes = plt.subplots(len(genes), len(layers), figsize=(4 * len(layers), 4 * len(genes)), squeeze=False)
        axes = list(axes.ravel())
    else:
        axes = [ax] if not isinstance(ax, Sequence) else list(ax)
        if len(axes) != n:
            msg = f"`ax` must hold {n} Axes (genes × layers); got {len(axes)}."
            raise ValueError(msg)

    xy = np.asarray(table.obsm["spatial"])[rows, :2]
    radius = _spot_radius(sdata, table, section)
    background = _background(sdata, table, section) if image else None
    values = {
        (g, layer): np.log1p(_column(table.layers[layer], rows, table.var_names.get_loc(g)))
        for g in genes
        for layer in layers
    }
    for i, g in enumerate(genes):
        vmax = max(float(values[g, layer].max()) for layer in layers)
        norm = Normalize(vmin=0.0, vmax=vmax if vmax > 0 else 1.0)
        for j, layer in enumerate(layers):
            draw_spots(
                axes[i * len(layers) + j],
                xy,
                radius,
                values[g, layer],
                norm=norm,
                cmap=cmap,
                background=background,
                title=f"{g} — {layer}",
                label="log1p(count)",
            )
    return axes


def draw_spots(ax, xy, radius, values, *, norm, cmap, background, title: str, label: str) -> None:
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


def _column(X, rows: np.ndarray, j: int) -> np.ndarray:
    col = X[rows][:, j]
    return np.asarray(col.toarray() if hasattr(col, "toarray") else col, dtype=float).ravel()


def _spot_radius(sdata: SpatialData, table, section: str) -> float:
    scale = table.uns.get("spatial", {}).get(section, {}).get("scalefactors", {})
    if _keys.SPOT_DIAMETER_FULLRES in scale:
        return float(scale[_keys.SPOT_DIAMETER_FULLRES]) / 2
    shapes = sdata.shapes[region_of_section(table, section)]
    return float(np.median(shapes["radius"]))


def _background(sdata: SpatialData, table, section: str):
    """A low-resolution RGB level of the section's image and its extent in full-resolution pixels."""
    image_key, _ = image_for_region(sdata, region_of_section(table, section))
    levels = image_levels(sdata.images[image_key])
    height, width = levels[0].shape[-2:]
    level = next((lv for lv in levels if max(lv.shape[-2:]) <= MAX_BACKGROUND_PX), levels[-1])
    rgb = np.moveaxis(np.asarray(level.data[:3]), 0, -1)
    return rgb, (0, width, height, 0)
