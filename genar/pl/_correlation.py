"""Per-gene correlations from genar.tl.evaluate, ranked."""

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
def gene_correlation(
    sdata: SpatialData,
    *,
    section: str | None = None,
    top: int = 50,
    table_key: str = _keys.PANEL_TABLE,
    evaluation_key: str = _keys.EVALUATION,
    ax: Axes | None = None,
) -> Axes:
    """Bar chart of the ``top`` per-gene Pearson correlations of one section, with PCC-10/50/200 marked.

    Parameters
    ----------
    sdata
        SpatialData after :func:`genar.tl.evaluate`.
    section
        Section to show (default: the first evaluated one).
    top
        Number of genes drawn.
    {table_key}
    {evaluation_key}
    {ax}

    Returns
    -------
    The Axes. Genes with undefined correlation are left out; PCC-k lines are drawn where k genes have a defined
    correlation.
    """
    table = get_table(sdata, table_key)
    check_key(
        table.uns, evaluation_key, where=f"sdata.tables[{table_key!r}].uns", hint="Run `genar.tl.evaluate` first."
    )
    per_gene = table.uns[evaluation_key]["per_gene"]
    summary = table.uns[evaluation_key]["summary"]
    section = section or str(per_gene.columns[0])
    check_key(per_gene, section, where="the evaluated sections", hint="Run `genar.tl.evaluate` on it first.")
    r = per_gene[section].dropna().sort_values(ascending=False).iloc[:top]
    ax = new_axes(ax, figsize=(max(6.0, 0.15 * len(r)), 4.0))
    ax.bar(np.arange(len(r)), r.to_numpy(), color="0.6")
    ax.set_xticks(np.arange(len(r)), r.index, rotation=90, fontsize="x-small")
    for i, k in enumerate((10, 50, 200)):
        value = summary.loc[section, f"pcc_{k}"]
        complete = summary.loc[section, f"n_pcc_{k}"] == k if f"n_pcc_{k}" in summary else True
        if np.isfinite(value) and complete:  # a PCC-k over fewer than k genes is not drawn as one
            ax.axhline(value, color=f"C{i}", ls="--", lw=1, label=f"PCC-{k} = {value:.3f}")
    ax.set_ylabel("Pearson r, log2(x+1)")
    ax.set_title(f"{section}: best {len(r)} genes")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return ax
