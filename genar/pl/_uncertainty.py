"""genar.pl.uncertainty: measured counts, the prediction and the width of its 90% interval, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import _keys
from .._validate import check_key, get_table
from ._spatial import _background, _column, _spot_radius, draw_spots, spatial

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from spatialdata import SpatialData


def uncertainty(
    sdata: SpatialData,
    genes: str | Sequence[str],
    *,
    section: str,
    layer: str = "genar_counts",
    truth_layer: str | None = _keys.COUNTS_LAYER,
    image: bool = True,
    table_key: str = _keys.PANEL_TABLE,
    cmap: str = "viridis",
    width_cmap: str = "magma",
    ax: Sequence[Axes] | None = None,
) -> list[Axes]:
    """For each gene: measured counts, the point prediction, and the width of the predicted 90% interval.

    The first two panels share a colour scale (log1p of the counts), as in :func:`genar.pl.spatial`; the third
    shows ``q95 − q05`` in counts on its own scale: where it is wide, the model is unsure of that gene there.

    Parameters
    ----------
    sdata
        SpatialData after :func:`genar.tl.predict` with ``n_samples`` > 1.
    genes
        Gene(s) to show, one row each.
    section
        The section to show.
    layer
        The point prediction; its ``_q05`` and ``_q95`` layers hold the interval.
    truth_layer
        Measured counts (``None`` for a slide without them: prediction and width only).
    image
        Draw the H&E image under the spots.
    table_key
        The panel table.
    cmap, width_cmap
        Colour maps of the counts and of the interval width.
    ax
        ``len(genes) × (3 or 2)`` Axes, row by row (default: a new figure).

    Returns
    -------
    The Axes, row by row.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    genes = [genes] if isinstance(genes, str) else list(genes)
    lo, hi = f"{layer}_q05", f"{layer}_q95"
    for name in (lo, hi):
        check_key(table.layers, name, where="table.layers", hint="Run `genar.tl.predict(..., n_samples=100)` first.")
    layers = [layer] if truth_layer is None else [truth_layer, layer]
    columns = len(layers) + 1
    if ax is None:
        _, grid = plt.subplots(len(genes), columns, figsize=(4 * columns, 4 * len(genes)), squeeze=False)
        axes = list(grid.ravel())
    else:
        axes = list(ax)
        if len(axes) != len(genes) * columns:
            msg = f"`ax` must hold {len(genes) * columns} Axes (genes × {columns}); got {len(axes)}."
            raise ValueError(msg)
    counts_axes = [a for i, a in enumerate(axes) if i % columns < len(layers)]
    spatial(sdata, genes, section=section, layers=layers, image=image, table_key=table_key, cmap=cmap, ax=counts_axes)
    rows = (table.obs[_keys.SECTION].astype(str) == section).to_numpy()
    xy = np.asarray(table.obsm["spatial"])[rows, :2]
    radius = _spot_radius(sdata, table, section)
    background = _background(sdata, table, section) if image else None
    for i, g in enumerate(genes):
        j = table.var_names.get_loc(g)
        width = _column(table.layers[hi], rows, j) - _column(table.layers[lo], rows, j)
        draw_spots(
            axes[i * columns + columns - 1],
            xy,
            radius,
            width,
            norm=Normalize(vmin=0.0, vmax=max(float(width.max()), 1.0)),
            cmap=width_cmap,
            background=background,
            title=f"{g} — 90% interval width",
            label="q95 − q05 (counts)",
        )
    return axes
