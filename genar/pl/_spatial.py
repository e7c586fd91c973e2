"""Observed and predicted expression side by side on the H&E image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import _keys
from .._docs import doc_params
from .._tables import section_mask
from .._validate import check_key, get_table
from ._draw import draw_spots, gene_column, section_view

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from spatialdata import SpatialData


@doc_params
def spatial(
    sdata: SpatialData,
    genes: str | Sequence[str],
    *,
    section: str,
    layer: str | None = _keys.COUNTS_LAYER,
    predicted_layers: str | Sequence[str] = (_keys.PREDICTED_LAYER,),
    image: bool = True,
    table_key: str = _keys.PANEL_TABLE,
    cmap: str = "viridis",
    ax: Axes | Sequence[Axes] | None = None,
) -> list[Axes]:
    """Draw each gene's measured and predicted expression side by side on the section's H&E image.

    The panels of one gene share a colour scale (log1p of the counts); every spot is drawn at its true footprint (the
    circles' radius, else ``uns['spatial'][section]['scalefactors']['spot_diameter_fullres']``). Panels are drawn in
    the coordinates of the section's spots, and the image is placed there through its transformation, so a Visium
    dataset read without its full-resolution image (hires PNG only) is drawn right; one collection holds all spots,
    so a Visium HD section's 10^5–10^6 bins draw in seconds.

    Parameters
    ----------
    sdata
        SpatialData with the panel table.
    genes
        Gene(s) to show, one row of panels each.
    section
        The section to show.
    layer
        Layer with the measured raw counts, drawn first (``None`` for a slide without them: predictions only).
    predicted_layers
        Layers with predictions (``layer_added`` of :func:`genar.tl.predict` or :func:`genar.tl.baseline`), one
        column each after the measured counts.
    image
        Draw the H&E image under the spots (a low-resolution pyramid level).
    {table_key}
    cmap
        Colour map of the expression.
    ax
        ``len(genes) * n_columns`` Axes to draw into, row by row (default: a new figure).

    Returns
    -------
    The Axes, row by row (gene by gene).
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    genes = [genes] if isinstance(genes, str) else list(genes)
    predicted_layers = [predicted_layers] if isinstance(predicted_layers, str) else list(predicted_layers)
    layers = ([] if layer is None else [layer]) + predicted_layers
    if not genes or not layers:
        msg = (
            f"`genes` and the layers (`layer`, `predicted_layers`) must each name at least one; got genes={genes!r}, "
            f"layer={layer!r}, predicted_layers={predicted_layers!r}."
        )
        raise ValueError(msg)
    missing = [g for g in genes if g not in table.var_names]
    if missing:
        msg = f"Genes {missing} are not in the panel of table {table_key!r} ({table.n_vars} genes)."
        raise KeyError(msg)
    if layer is not None:
        check_key(
            table.layers, layer, where="table.layers", hint="The measured counts come from `genar.pp.select_genes`."
        )
    for name in predicted_layers:
        check_key(table.layers, name, where="table.layers", hint="Run `genar.tl.predict` first.")
    rows = section_mask(table, section)
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

    view = section_view(sdata, table, section, image=image)
    values = {
        (g, name): np.log1p(gene_column(table.layers[name], rows, table.var_names.get_loc(g)))
        for g in genes
        for name in layers
    }
    for i, g in enumerate(genes):
        vmax = max(float(values[g, name].max()) for name in layers)
        norm = Normalize(vmin=0.0, vmax=vmax if vmax > 0 else 1.0)
        for j, name in enumerate(layers):
            draw_spots(
                axes[i * len(layers) + j],
                view,
                values[g, name],
                norm=norm,
                cmap=cmap,
                title=f"{g} — {name}",
                label="log1p(count)",
            )
    return axes
