"""Choose the gene panel: the genes the model predicts."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _keys
from .._copy import supports_copy
from .._docs import doc_params
from .._logging import logger
from .._tables import section_mask, to_dense
from .._validate import check_overwrite, check_sections, get_counts, get_table, sections_of
from ._spatial_images import add_spatial_images

if TYPE_CHECKING:
    from anndata import AnnData
    from spatialdata import SpatialData


@supports_copy
@doc_params
def select_genes(
    sdata: SpatialData,
    n_genes: int = 200,
    *,
    train_sections: str | Sequence[str] | None = None,
    genes: Sequence[str] | None = None,
    table_key: str = _keys.TABLE,
    layer: str | None = None,
    flavor: Literal["seurat_v3", "total_counts"] = "seurat_v3",
    table_added: str = _keys.PANEL_TABLE,
    overwrite: bool = False,
) -> None:
    """Choose the gene panel from the training sections and create the panel table.

    The panel is the ``n_genes`` most variable genes of the raw counts of the training sections (scanpy's
    ``seurat_v3`` flavour with one batch per section, so a gene must vary within sections, not only between
    them), or the genes you list. Spots of every section stay in the panel table: only the *choice* of genes
    looks at the training sections, so held-out sections can be scored later.

    Parameters
    ----------
    sdata
        SpatialData with a table of raw counts, e.g. from :func:`genar.datasets.her2st`.
    n_genes
        Panel size. Ignored when ``genes`` is given.
    train_sections
        Training sections (``obs['section']``) the panel is chosen on. Default: all. A table without a
        ``section`` column (e.g. from ``spatialdata_io.visium``) has one section per annotated shapes element,
        named after it; the panel table gets that column, the source table is left as it is.
    genes
        Use these genes, in this order, instead of choosing them — e.g. ``model.genes`` to predict a new slide
        with a trained model. Genes the table lacks are kept as *unmeasured* with a warning that names them
        (counts 0, ``var['genar_measured']`` False): predictions still cover them, evaluation leaves them out,
        training refuses them.
    table_key
        Table with the raw counts of all genes.
    layer
        Layer of ``table_key`` holding raw counts; ``None`` uses ``X``.
    flavor
        ``'seurat_v3'`` (highly variable genes on raw counts; needs scikit-misc) or ``'total_counts'`` (the
        most expressed genes).
    table_added
        Name of the new panel table.
    {overwrite}

    Returns
    -------
    Nothing; adds ``sdata.tables[table_added]``, annotating the same spot elements as ``table_key``, with

    ``X`` and ``layers['counts']``
        Raw counts of the panel genes (sparse, int32).
    ``var['highly_variable_rank']``, ``var['mean_counts']``
        Rank of each gene in the selection and its mean count on the training sections.
    ``var['genar_measured']``
        Whether the gene was measured (False only for listed ``genes`` that the table lacks).
    ``var['genar_train_variance_rank']``
        Rank of the gene's variance of log2(x + 1) over the training spots (0 = most variable; unmeasured genes
        last). :func:`genar.tl.evaluate` scores the 50 first as a gene set fixed before any test slide is seen.
    ``uns['genar']['params']``
        The arguments used, including the ``train_sections`` and the ``unmeasured_genes``.
    ``obs``, ``obsm``, ``uns['spatial']``
        Copied from ``table_key`` (spots, coordinates, scale factors); ``uns['spatial'][section]`` gains the
        ``'hires'`` H&E and ``scalefactors['tissue_hires_scalef']`` that ``sc.pl.spatial`` and
        ``sq.pl.spatial_scatter(..., library_key='section')`` draw under the spots (a pyramid level of at most 2000
        px, from the section's image).

    The table ``table_key`` itself is left unchanged.

    Examples
    --------
    >>> genar.pp.select_genes(sdata, 200, train_sections=["C2", "C3", "C4"])  # doctest: +SKIP
    """
    import anndata as ad
    from spatialdata.models import TableModel

    table = get_table(sdata, table_key, hint="Load data with `genar.datasets.her2st()` or pass `table_key=`.")
    check_overwrite(
        table_added in sdata.tables, f"sdata.tables[{table_added!r}]", overwrite=overwrite, rename="table_added"
    )
    table = _with_sections(table, table_key)
    counts = sparse.csr_matrix(get_counts(table, layer))
    if table.var_names.has_duplicates:
        dups = table.var_names[table.var_names.duplicated()].unique().tolist()
        msg = f"The gene names of table {table_key!r} are not unique: {dups[:10]}. Run `adata.var_names_make_unique()`."
        raise ValueError(msg)
    train = check_sections(train_sections, sections_of(table), argument="train_sections")
    in_train = section_mask(table, train)
    train_counts = counts[in_train]

    if genes is not None:
        panel, rank = _given_genes(table.var_names, genes, table_key), None
    else:
        panel, rank = _variable_genes(table, train_counts, in_train, n_genes, flavor=flavor)

    idx = table.var_names.get_indexer(panel)
    measured = idx >= 0
    unmeasured = [g for g, m in zip(panel, measured, strict=True) if not m]
    if unmeasured:
        warnings.warn(
            f"{len(unmeasured)} of the {len(panel)} panel genes are not in table {table_key!r}: {unmeasured[:20]}"
            f"{' …' if len(unmeasured) > 20 else ''}. They are kept as unmeasured genes (var['genar_measured'] is "
            "False, their counts are 0): `genar.tl.predict` still predicts them, `genar.tl.evaluate` leaves them "
            "out, and `genar.tl.fit` refuses to train on them.",
            UserWarning,
            stacklevel=3,  # through the copy= wrapper to the caller
        )
    panel_counts = sparse.csr_matrix((counts.shape[0], len(panel)), dtype=np.int32)
    if measured.any():
        columns = sparse.csr_matrix(counts[:, idx[measured]].astype(np.int32))
        placement = sparse.csr_matrix(
            (np.ones(measured.sum(), dtype=np.int32), (np.arange(measured.sum()), np.flatnonzero(measured))),
            shape=(measured.sum(), len(panel)),
        )
        panel_counts = (columns @ placement).astype(np.int32).tocsr()
    var = pd.DataFrame(index=pd.Index(panel, name=None))
    var["highly_variable_rank"] = np.arange(len(panel)) if rank is None else rank
    var["mean_counts"] = np.asarray(panel_counts[in_train].mean(axis=0)).ravel()
    var[_keys.MEASURED] = measured
    var[_keys.TRAIN_VARIANCE_RANK] = _variance_rank(panel_counts[in_train], measured)
    attrs = table.uns.get("spatialdata_attrs", {})
    new = ad.AnnData(
        X=panel_counts.copy(),
        obs=table.obs.copy(),
        var=var,
        obsm={k: np.array(v, copy=True) for k, v in table.obsm.items()},
        layers={_keys.COUNTS_LAYER: panel_counts.copy()},
        uns={k: copy.deepcopy(v) for k, v in table.uns.items() if k == "spatial"},
    )
    new.uns[_keys.PANEL] = {
        "params": {
            "n_genes": len(panel),
            "train_sections": list(train),
            "flavor": "given" if genes is not None else flavor,
            "table_key": table_key,
            "layer": layer,
            "unmeasured_genes": unmeasured,
        }
    }
    new = TableModel.parse(
        new,
        region=attrs.get("region"),
        region_key=attrs.get("region_key"),
        instance_key=attrs.get("instance_key"),
    )
    add_spatial_images(sdata, new, sections_of(new))
    if table_added in sdata.tables:
        del sdata.tables[table_added]
    sdata.tables[table_added] = new
    logger.info("added `sdata.tables[%r]` with %d panel genes chosen on sections %s", table_added, len(panel), train)


def _with_sections(table, table_key: str):
    """The table itself, or a shallow copy with ``obs['section']`` from its region column when it has none."""
    import anndata as ad

    if _keys.SECTION in table.obs:
        return table
    region_key = table.uns.get("spatialdata_attrs", {}).get("region_key")
    if region_key is None or region_key not in table.obs:
        msg = (
            f"Table {table_key!r} has no obs['section'] and annotates no shapes element to take sections from. Add "
            "obs['section'] (the slide each spot comes from)."
        )
        raise KeyError(msg)
    obs = table.obs.copy()
    obs[_keys.SECTION] = obs[region_key].astype(str).astype("category")
    logger.info(
        "table %r has no obs['section']: one section per shapes element %s", table_key, list(obs[region_key].unique())
    )
    return ad.AnnData(
        X=table.X,
        obs=obs,
        var=table.var,
        obsm=dict(table.obsm.items()),
        layers=dict(table.layers.items()),
        uns=table.uns,
    )


def _given_genes(var_names: pd.Index, genes: Sequence[str], table_key: str) -> list[str]:
    genes = list(genes)
    if not genes:
        msg = "`genes` is empty; list the panel genes or pass `genes=None` to choose them."
        raise ValueError(msg)
    if len(set(genes)) != len(genes):
        dups = pd.Index(genes)[pd.Index(genes).duplicated()].tolist()
        msg = f"`genes` lists genes more than once: {dups}."
        raise ValueError(msg)
    if not any(g in var_names for g in genes):
        msg = (
            f"None of the {len(genes)} genes in `genes` (e.g. {genes[:5]}) is in table {table_key!r} "
            f"(whose genes include {var_names[:5].tolist()}). Check the gene identifiers (symbols vs Ensembl IDs)."
        )
        raise KeyError(msg)
    return genes


def _variable_genes(
    table: AnnData, train_counts: sparse.csr_matrix, in_train: np.ndarray, n_genes: int, *, flavor: str
) -> tuple[list[str], np.ndarray]:
    n_available = table.n_vars
    if not 1 <= n_genes <= n_available:
        msg = f"`n_genes` must be between 1 and the {n_available} genes available; got {n_genes}."
        raise ValueError(msg)
    expressed = np.asarray((train_counts > 0).sum(axis=0)).ravel() > 0
    if n_genes > expressed.sum():
        msg = (
            f"`n_genes`={n_genes} exceeds the {int(expressed.sum())} genes with any counts in the training "
            "sections. Choose fewer genes."
        )
        raise ValueError(msg)
    if flavor == "total_counts":
        totals = np.asarray(train_counts.sum(axis=0)).ravel()
        order = np.argsort(-totals, kind="stable")[:n_genes]
        return table.var_names[order].tolist(), np.arange(n_genes)
    if flavor != "seurat_v3":
        msg = f"`flavor` must be 'seurat_v3' or 'total_counts'; got {flavor!r}."
        raise ValueError(msg)
    import anndata as ad
    import scanpy as sc

    sub = ad.AnnData(
        X=train_counts.astype(np.float32),
        obs=table.obs.loc[in_train, [_keys.SECTION]].copy(),
        var=pd.DataFrame(index=table.var_names),
    )
    sub = sub[:, expressed].copy()
    batch_key = _keys.SECTION if sub.obs[_keys.SECTION].nunique() > 1 else None
    try:
        hvg = sc.pp.highly_variable_genes(
            sub, n_top_genes=n_genes, flavor="seurat_v3", batch_key=batch_key, inplace=False, span=0.5
        )
    except ImportError as err:
        err.add_note("The seurat_v3 flavour needs scikit-misc: pip install scikit-misc, or use flavor='total_counts'.")
        raise
    hvg.index = sub.var_names
    chosen = hvg[hvg["highly_variable"]].sort_values("highly_variable_rank", kind="stable")
    return chosen.index.tolist(), chosen["highly_variable_rank"].to_numpy()


def _variance_rank(train_counts, measured: np.ndarray) -> np.ndarray:
    """Rank of each column by its variance of log2(x + 1) over the training rows (0 = highest; unmeasured last)."""
    X = to_dense(train_counts)
    variance = np.log2(X.astype(float) + 1.0).var(axis=0) if X.shape[0] else np.zeros(X.shape[1])
    variance = np.where(measured, variance, -np.inf)
    order = np.argsort(-variance, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank
