"""The gene hierarchy: which genes fall in which group at each scale."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _keys
from .._docs import doc_params
from .._validate import check_key, get_table
from ._utils import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from spatialdata import SpatialData


@doc_params
def scales(
    sdata: SpatialData,
    *,
    table_key: str = _keys.PANEL_TABLE,
    gene_group_key: str = _keys.GENE_GROUPS,
    show_genes: bool | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the gene groups of every scale: one row per scale, genes in model order, groups in alternating shades.

    Parameters
    ----------
    sdata
        SpatialData after :func:`genar.pp.cluster_genes`.
    {table_key}
    {gene_group_key}
    show_genes
        Label the columns with gene names (default: when there are at most 60 genes).
    {ax}

    Returns
    -------
    The Axes; its image holds the parity of the group of every gene (columns) at every scale (rows, coarse on
    top), so neighbouring groups alternate between light and dark.
    """
    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    check_key(table.varm, gene_group_key, where="table.varm", hint="Run `genar.pp.cluster_genes` first.")
    groups = np.asarray(table.varm[gene_group_key]).T  # (scales, genes)
    n_per_scale = table.uns[gene_group_key]["scales"]
    ax = new_axes(ax, figsize=(8.0, 0.5 * len(n_per_scale) + 1))
    ax.imshow(groups % 2, aspect="auto", cmap="Greys", interpolation="nearest", vmin=-0.5, vmax=1.5)
    ax.set_yticks(np.arange(len(n_per_scale)), [f"{n} groups" for n in n_per_scale])
    show = table.n_vars <= 60 if show_genes is None else show_genes
    if show:
        ax.set_xticks(np.arange(table.n_vars), table.var_names, rotation=90, fontsize="x-small")
    else:
        ax.set_xlabel(f"{table.n_vars} genes, in model order")
    ax.set_title("gene hierarchy (coarse to fine)")
    return ax
