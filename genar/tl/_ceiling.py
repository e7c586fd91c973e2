"""genar.tl.noise_ceiling: how well any prediction could correlate with the measured counts of each gene."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import _keys
from .._copy import supports_copy
from .._docs import doc_params
from .._metrics import pearson_per_gene
from .._tables import section_mask, to_dense
from .._validate import check_overwrite, check_sections, get_counts, get_table, sections_of

if TYPE_CHECKING:
    from spatialdata import SpatialData


def split_half_reliability(counts: np.ndarray, *, n_splits: int = 10, random_state: int = 0) -> np.ndarray:
    """Spearman–Brown corrected split-half reliability of every gene (column) across spots (rows).

    Each spot's counts are split into two halves by binomial thinning (every molecule goes to either half with
    probability 1/2, which is how two half-depth measurements of the same spot would look); the halves are
    correlated across spots in log2(x + 1) and the correlation is corrected to full depth, r·2 / (1 + r). The
    result is averaged over ``n_splits`` random splits. NaN where a half is constant (e.g. a gene never detected).
    """
    rng = np.random.default_rng(random_state)
    counts = np.asarray(counts, dtype=np.int64)
    halves = np.empty((n_splits, counts.shape[1]))
    for i in range(n_splits):
        first = rng.binomial(counts, 0.5)
        halves[i] = pearson_per_gene(np.log2(first + 1.0), np.log2(counts - first + 1.0))
    finite = np.isfinite(halves)
    n = finite.sum(axis=0)
    r = np.full(counts.shape[1], np.nan)
    r[n > 0] = np.where(finite, halves, 0.0).sum(axis=0)[n > 0] / n[n > 0]
    return 2 * r / (1 + r)


@supports_copy
@doc_params
def noise_ceiling(
    sdata: SpatialData,
    *,
    layer: str = _keys.COUNTS_LAYER,
    sections: str | Sequence[str] | None = None,
    n_splits: int = 10,
    random_state: int = 0,
    table_key: str = _keys.PANEL_TABLE,
    key_added: str = _keys.NOISE_CEILING,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Per-gene noise ceiling of the measured counts, section by section, by binomial thinning.

    Counts are noisy: even a perfect model of a spot's expression correlates with the measured counts only as
    well as two repeated measurements would. The split-half *reliability* ρ of a gene (see
    :func:`split_half_reliability`) estimates the correlation between two full-depth measurements; a perfect
    prediction of the expected counts then reaches a Pearson correlation of about √ρ with the measurement — the
    *ceiling*. Read every per-gene Pearson against it: :func:`genar.tl.evaluate` reports ``r / ceiling``
    when this has been run.

    Parameters
    ----------
    sdata
        SpatialData with the panel table.
    {layer}
    sections
        Sections to assess (default: all).
    n_splits
        Random splits averaged.
    {random_state}
    {table_key}
    key_added
        ``uns`` key of the results; :func:`genar.tl.evaluate` reads the default one.
    {overwrite}

    Returns
    -------
    The ceiling (with ``copy=True``, the copy instead), genes × sections (NaN where undefined: a gene never detected
    in a section, or reliability ≤ 0).
    Also sets ``uns[key_added]`` with ``reliability`` and ``ceiling`` (genes × sections) and the parameters.
    """
    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    check_overwrite(
        key_added in table.uns, f"A noise ceiling (uns[{key_added!r}])", overwrite=overwrite, rename="key_added"
    )
    counts = get_counts(table, layer)
    chosen = check_sections(sections, sections_of(table))
    reliability = {}
    for i, s in enumerate(chosen):
        rows = section_mask(table, s)
        reliability[s] = split_half_reliability(
            to_dense(counts[rows], np.int64), n_splits=n_splits, random_state=random_state + i
        )
    reliability_df = pd.DataFrame(reliability, index=table.var_names.copy())
    ceiling_df = np.sqrt(reliability_df.where(reliability_df > 0))
    table.uns[key_added] = {
        "reliability": reliability_df,
        "ceiling": ceiling_df,
        "params": {"layer": layer, "sections": list(chosen), "n_splits": n_splits, "random_state": random_state},
    }
    return ceiling_df
