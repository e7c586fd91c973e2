"""Order the panel genes coarse to fine, so contiguous groups of genes are co-expressed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import sparse

from .. import _keys
from .._copy import supports_copy
from .._docs import doc_params
from .._logging import logger
from .._scales import PAPER_SCALES, check_scales, group_ids
from .._tables import section_mask
from .._validate import check_overwrite, check_sections, get_counts, get_table, sections_of

if TYPE_CHECKING:
    from spatialdata import SpatialData


@supports_copy
@doc_params
def cluster_genes(
    sdata: SpatialData,
    *,
    scales: Sequence[int] = PAPER_SCALES,
    method: Literal["kmeans", "balanced", "random"] = "kmeans",
    train_sections: str | Sequence[str] | None = None,
    table_key: str = _keys.PANEL_TABLE,
    layer: str | None = _keys.COUNTS_LAYER,
    n_top_clusters: int = 4,
    subcluster_size: int = 12,
    random_state: int = 0,
    key_added: str = _keys.GENE_GROUPS,
    overwrite: bool = False,
) -> None:
    """Order the panel genes by clustering their expression profiles, and fix the gene group at every scale.

    Each gene's profile is its log-normalised expression across the spots of the training sections, z-scored
    within each section. At scale ``k`` the ordered panel is cut into ``scales[k]`` contiguous groups of equal
    size; the model predicts the mean raw count of each group at that scale, coarse to fine.

    Parameters
    ----------
    sdata
        SpatialData with the panel table from :func:`genar.pp.select_genes`.
    scales
        Number of gene groups per scale, coarse to fine; strictly increasing, each dividing the panel size,
        the last equal to it. The paper's: ``(1, 4, 8, 40, 100, 200)``.
    method
        ``'kmeans'`` (the paper): k-means into ``n_top_clusters`` groups, each split by k-means into
        sub-clusters of about ``subcluster_size`` genes; the panel is ordered group by group. The equal-width
        windows of a scale can then cut across a cluster. ``'balanced'``: a balanced hierarchical clustering
        whose tree is exactly the scales (each group is split into equal-size, co-expressed parts), so every
        group at every scale is a cluster; needs each scale to divide the next. ``'random'``: a random order
        (seeded by ``random_state``), the ablation that shows what the clustering is worth.
    train_sections
        Training sections whose spots define the profiles. Default: those :func:`~genar.pp.select_genes` used.
    {table_key}
    {layer}
    n_top_clusters, subcluster_size
        Parameters of ``method='kmeans'``.
    {random_state}
    key_added
        Key of the outputs.
    {overwrite}

    Returns
    -------
    Nothing; reorders the genes (columns) of ``sdata.tables[table_key]`` into model order and sets

    ``varm[key_added]``
        Group index of every gene at every scale, int array of shape ``(n_genes, n_scales)``.
    ``var[f'{key_added}_cluster']``
        The leaf cluster of each gene.
    ``uns[key_added]``
        ``{'scales': [...], 'params': {...}}``.

    Examples
    --------
    >>> genar.pp.cluster_genes(sdata, scales=(1, 4, 8, 40, 100, 200))  # doctest: +SKIP
    """
    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    check_overwrite(
        key_added in table.varm, f"A gene hierarchy (varm[{key_added!r}])", overwrite=overwrite, rename="key_added"
    )
    n_genes = table.n_vars
    scales = check_scales(scales, n_genes)
    if method not in ("kmeans", "balanced", "random"):
        msg = f"`method` must be 'kmeans', 'balanced' or 'random'; got {method!r}."
        raise ValueError(msg)
    if method == "balanced":
        not_nested = [(a, b) for a, b in zip(scales, scales[1:], strict=False) if b % a]
        if not_nested:
            msg = (
                f"method='balanced' builds a tree whose levels are the scales, so each scale must divide the next; "
                f"{not_nested} do not (in {scales}). Use e.g. scales=(1, 4, 8, 40, 200) or (1, 2, 10, 50, 100, 200), "
                "or method='kmeans'."
            )
            raise ValueError(msg)
    if train_sections is None:
        train_sections = _keys.panel_params(table).get("train_sections")
    train = check_sections(train_sections, sections_of(table), argument="train_sections")
    counts = sparse.csr_matrix(get_counts(table, layer))
    in_train = section_mask(table, train)
    # Cluster in a canonical (alphabetical) gene order so the result does not depend on the current column order.
    canon = np.argsort(table.var_names.to_numpy(str), kind="stable")
    features = _gene_profiles(counts[in_train][:, canon], table.obs[_keys.SECTION].to_numpy()[in_train])
    rng = np.random.RandomState(random_state)
    if method == "kmeans":
        order_c, leaf_c = _kmeans_order(features, n_top_clusters, subcluster_size, rng)
    elif method == "random":
        order_c, leaf_c = rng.permutation(n_genes), np.full(n_genes, -1)
    else:
        order_c, leaf_c = _balanced_order(features, scales, rng)
    order = canon[order_c]

    new = table[:, order].copy()
    new.varm[key_added] = group_ids(scales, n_genes)
    new.var[f"{key_added}_cluster"] = leaf_c[order_c].astype(np.int64)
    new.uns[key_added] = {
        "scales": list(scales),
        "params": {
            "method": method,
            "train_sections": list(train),
            "layer": layer,
            "n_top_clusters": n_top_clusters,
            "subcluster_size": subcluster_size,
            "random_state": random_state,
        },
    }
    sdata.tables[table_key] = new
    logger.info("ordered %d genes into scales %s; added `varm[%r]`", n_genes, scales, key_added)


def _gene_profiles(counts: sparse.csr_matrix, section: np.ndarray, max_dims: int = 50) -> np.ndarray:
    """Genes × features: z-scored log-normalised profiles over spots (within each section), PCA-reduced."""
    totals = np.asarray(counts.sum(axis=1)).ravel().astype(float)
    scale = np.median(totals[totals > 0]) / np.maximum(totals, 1.0)
    logx = np.log1p(counts.multiply(scale[:, None]).toarray())
    for s in np.unique(section):
        rows = section == s
        block = logx[rows]
        sd = block.std(axis=0)
        logx[rows] = (block - block.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    genes_by_spots = logx.T / np.sqrt(logx.shape[0])
    n_dims = min(max_dims, *genes_by_spots.shape)
    u, s, _ = np.linalg.svd(genes_by_spots - genes_by_spots.mean(axis=0), full_matrices=False)
    return u[:, :n_dims] * s[:n_dims]


def _pc1_order(points: np.ndarray) -> np.ndarray:
    """Order points along their first principal axis (sign fixed so the result is deterministic)."""
    if len(points) < 2:
        return np.arange(len(points))
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = vt[0] * np.sign(vt[0][np.argmax(np.abs(vt[0]))])
    return np.argsort(centred @ axis, kind="stable")


def _kmeans(points: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
    from sklearn.cluster import KMeans

    k = max(1, min(k, len(points)))
    if k == 1:
        return np.zeros(len(points), dtype=int)
    return KMeans(n_clusters=k, n_init=10, random_state=rng.randint(2**31 - 1)).fit_predict(points)


def _kmeans_order(
    features: np.ndarray, n_top: int, sub_size: int, rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """The paper's ordering: top-level k-means groups, each split into sub-clusters of about ``sub_size`` genes."""
    top = _kmeans(features, n_top, rng)
    top_ids = np.unique(top)
    order, leaves, leaf = [], np.zeros(len(features), dtype=int), 0
    top_centres = np.stack([features[top == t].mean(axis=0) for t in top_ids])
    for t in top_ids[_pc1_order(top_centres)]:
        members = np.flatnonzero(top == t)
        sub = _kmeans(features[members], round(len(members) / sub_size), rng)
        sub_ids = np.unique(sub)
        sub_centres = np.stack([features[members[sub == s]].mean(axis=0) for s in sub_ids])
        for s in sub_ids[_pc1_order(sub_centres)]:
            genes = members[sub == s]
            genes = genes[_pc1_order(features[genes])]
            order.extend(genes.tolist())
            leaves[genes] = leaf
            leaf += 1
    return np.asarray(order), leaves


def _balanced_split(points: np.ndarray, n_parts: int, rng: np.random.RandomState, n_iter: int = 20) -> np.ndarray:
    """Split points into ``n_parts`` equal-size clusters (k-means with a size constraint, by assignment)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    size = len(points) // n_parts
    labels = _kmeans(points, n_parts, rng)
    centres = np.stack([points[labels == j].mean(axis=0) if np.any(labels == j) else points[j] for j in range(n_parts)])
    for _ in range(n_iter):
        cost = np.repeat(cdist(points, centres, "sqeuclidean"), size, axis=1)
        _, slots = linear_sum_assignment(cost)
        new_labels = slots // size
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        centres = np.stack([points[labels == j].mean(axis=0) for j in range(n_parts)])
    return labels


def _balanced_order(
    features: np.ndarray, scales: tuple[int, ...], rng: np.random.RandomState
) -> tuple[np.ndarray, np.ndarray]:
    """Recursive equal-size splits whose levels are exactly the scales."""
    groups = [np.arange(len(features))]
    if scales[0] > 1:
        groups = _split_groups(features, groups, scales[0], rng)
    for coarse, fine in zip(scales, scales[1:], strict=False):
        groups = _split_groups(features, groups, fine // coarse, rng)
    order = np.concatenate(groups)
    leaves = np.zeros(len(features), dtype=int)
    for i, g in enumerate(groups):
        leaves[g] = i
    return order, leaves


def _split_groups(
    features: np.ndarray, groups: list[np.ndarray], n_parts: int, rng: np.random.RandomState
) -> list[np.ndarray]:
    out = []
    for g in groups:
        labels = _balanced_split(features[g], n_parts, rng)
        centres = np.stack([features[g[labels == j]].mean(axis=0) for j in range(n_parts)])
        out.extend(g[labels == j] for j in _pc1_order(centres))
    return out
