"""genar.pl.uncertainty: measured counts, the prediction and the width of its predictive interval, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import _keys
from .._docs import doc_params
from .._keys import PredictionKeys
from .._tables import section_mask
from .._validate import check_key, get_table
from ._draw import draw_spots, gene_column, section_view
from ._spatial import spatial

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from spatialdata import SpatialData


@doc_params
def uncertainty(
    sdata: SpatialData,
    genes: str | Sequence[str],
    *,
    section: str,
    predicted_layer: str = _keys.PREDICTED_LAYER,
    layer: str | None = _keys.COUNTS_LAYER,
    image: bool = True,
    table_key: str = _keys.PANEL_TABLE,
    cmap: str = "viridis",
    width_cmap: str = "magma",
    ax: Sequence[Axes] | None = None,
) -> list[Axes]:
    """For each gene: measured counts, the point prediction, and the width of the predictive interval.

    The first two panels share a colour scale (log1p of the counts), as in :func:`genar.pl.spatial`; the third
    shows the width of the interval between the lowest and highest quantile that :func:`genar.tl.predict` wrote
    (``q95 − q05`` by default, a 90% interval), in counts on its own scale: where it is wide, the model is unsure of
    that gene there.

    Parameters
    ----------
    sdata
        SpatialData after :func:`genar.tl.predict` with ``n_samples`` > 1.
    genes
        Gene(s) to show, one row each.
    section
        The section to show.
    {predicted_layer}
    layer
        Layer with the measured raw counts (``None`` for a slide without them: prediction and width only).
    image
        Draw the H&E image under the spots.
    {table_key}
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
    check_key(table.layers, predicted_layer, where="table.layers", hint="Run `genar.tl.predict` first.")
    keys = PredictionKeys.of(table, predicted_layer)
    if keys.interval is None:
        msg = (
            f"Layer {predicted_layer!r} has no predictive interval (its provenance records the quantiles "
            f"{list(keys.quantiles)}). Run `genar.tl.predict(..., n_samples=100)` first."
        )
        raise KeyError(msg)
    lo, hi = (keys.quantile(q) for q in keys.interval)
    for name in (lo, hi):
        check_key(table.layers, name, where="table.layers", hint="Run `genar.tl.predict(..., n_samples=100)` first.")
    columns = (1 if layer is None else 2) + 1
    if ax is None:
        _, grid = plt.subplots(len(genes), columns, figsize=(4 * columns, 4 * len(genes)), squeeze=False)
        axes = list(grid.ravel())
    else:
        axes = list(ax)
        if len(axes) != len(genes) * columns:
            msg = f"`ax` must hold {len(genes) * columns} Axes (genes × {columns}); got {len(axes)}."
            raise ValueError(msg)
    counts_axes = [a for i, a in enumerate(axes) if i % columns < columns - 1]
    spatial(
        sdata,
        genes,
        section=section,
        layer=layer,
        predicted_layers=[predicted_layer],
        image=image,
        table_key=table_key,
        cmap=cmap,
        ax=counts_axes,
    )
    rows = section_mask(table, section)
    view = section_view(sdata, table, section, image=image)
    q_lo, q_hi = (_keys.quantile_suffix(q) for q in keys.interval)
    for i, g in enumerate(genes):
        j = table.var_names.get_loc(g)
        width = gene_column(table.layers[hi], rows, j) - gene_column(table.layers[lo], rows, j)
        draw_spots(
            axes[i * columns + columns - 1],
            view,
            width,
            norm=Normalize(vmin=0.0, vmax=max(float(width.max()), 1.0)),
            cmap=width_cmap,
            title=f"{g} — {keys.interval_level}% interval width",
            label=f"{q_hi} − {q_lo} (counts)",
        )
    return axes
