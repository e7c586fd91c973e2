"""genar.tl.evaluate: per-gene Pearson and errors in log2(x + 1), per held-out section."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import _keys
from .._copy import supports_copy
from .._docs import doc_params
from .._keys import PredictionKeys
from .._metrics import pearson_per_gene, summarise
from .._tables import section_mask, to_dense
from .._validate import check_key, check_overwrite, check_sections, get_table, sections_of

if TYPE_CHECKING:
    from spatialdata import SpatialData

#: Size of the gene set fixed on the training sections (the most variable there), scored as ``pcc_fixed50``.
FIXED_SET = 50


@supports_copy
@doc_params
def evaluate(
    sdata: SpatialData,
    *,
    predicted_layer: str = _keys.PREDICTED_LAYER,
    layer: str = _keys.COUNTS_LAYER,
    sections: str | Sequence[str] | None = None,
    table_key: str = _keys.PANEL_TABLE,
    key_added: str = _keys.EVALUATION,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Score predicted counts against measured counts, section by section, in log2(x + 1).

    For every gene: Pearson correlation across the spots of a section. Per section: PCC-10, PCC-50 and PCC-200
    (the mean of the 10, 50, 200 highest per-gene correlations, as in the GenAR paper), the mean over all genes
    with a defined correlation, and MSE and MAE over spots and genes. A gene whose truth or prediction is constant
    across the section's spots has no correlation: it is reported as NaN (undefined), never as 0, and left out
    of the means; when fewer than k genes have a correlation, PCC-k is the mean of those there are, and
    ``n_pcc_k`` says how many. Unmeasured genes (``var['genar_measured']`` False, see :func:`genar.pp.select_genes`)
    are left out of every number and counted in ``n_genes_unmeasured``.

    Score either form of a prediction: the integer counts (``predicted_layer='genar_counts'``) or the float estimate
    for log-space metrics (``predicted_layer='genar_counts_estimate'``); baselines write both forms too.

    Parameters
    ----------
    sdata
        SpatialData with predictions from :func:`genar.tl.predict` (or :func:`genar.tl.baseline`).
    {predicted_layer}
    {layer}
    sections
        Sections to score (default: those with predictions).
    {table_key}
    key_added
        ``uns`` key of the results.
    {overwrite}

    Returns
    -------
    One row per section (with ``copy=True``, the copy instead, whose ``uns[key_added]['summary']`` holds it):
    ``n_spots``, ``pcc_10``, ``pcc_50``, ``pcc_200`` (each with ``n_pcc_10``, ``n_pcc_50``, ``n_pcc_200``: the genes
    it averages), ``pcc_all``, ``mse``, ``mae``, ``n_genes_defined``, ``pcc_fixed50`` (mean Pearson over the 50
    genes most variable on the *training* sections, ``var['genar_train_variance_rank']`` — a number not chosen on
    the test slide, unlike PCC-k),
    ``pcc_all_vs_ceiling`` (mean of each gene's Pearson divided by its noise ceiling, when
    :func:`genar.tl.noise_ceiling` has been run on the section) and ``n_genes_unmeasured``. When
    :func:`genar.tl.predict` sampled (``n_samples`` > 1), for the interval between the lowest and highest quantile it
    wrote (by default the 5% and 95% quantiles, a 90% interval; the ``90`` below is that interval's level):
    ``coverage_90`` (share of spots × genes whose measured count lies in the interval; at least about 0.9 for a
    calibrated model, more when counts are small, because a closed interval of whole counts holds at least 90% of the
    probability), ``interval_width_90`` (mean width of that interval, in counts), and, from the kept samples,
    ``rps`` (ranked probability score, the CRPS of a count distribution, averaged over spots and genes; lower is
    better) and ``pit_coverage_90`` (the same coverage by the randomised probability integral transform,
    :func:`pit_coverage`: 0.9 for a calibrated model at any count level; below 0.9 means overconfident, above means
    too vague). Also sets ``uns[key_added]`` with ``summary`` (that frame), ``per_gene`` (genes × sections
    Pearson), ``per_gene_vs_ceiling`` (Pearson / ceiling), ``per_gene_coverage``, ``per_gene_rps`` and the
    parameters.
    """
    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    check_overwrite(
        key_added in table.uns, f"An evaluation (uns[{key_added!r}])", overwrite=overwrite, rename="key_added"
    )
    check_key(table.layers, predicted_layer, where="table.layers", hint="Run `genar.tl.predict` first.")
    check_key(table.layers, layer, where="table.layers", hint="The measured counts are needed to score.")
    keys = PredictionKeys.of(table, predicted_layer)
    if sections is None:
        predicted = (
            table.obs[keys.predicted].to_numpy(bool) if keys.predicted in table.obs else np.ones(table.n_obs, bool)
        )
        sections = [s for s in sections_of(table) if predicted[section_mask(table, s)].any()]
    chosen = check_sections(sections, sections_of(table))
    measured = table.var[_keys.MEASURED].to_numpy(bool) if _keys.MEASURED in table.var else np.ones(table.n_vars, bool)
    fixed = None
    if _keys.TRAIN_VARIANCE_RANK in table.var:
        rank = table.var[_keys.TRAIN_VARIANCE_RANK].to_numpy()
        fixed = np.flatnonzero(measured & (rank < FIXED_SET))
    ceiling = table.uns.get(_keys.NOISE_CEILING, {}).get("ceiling")
    interval = keys.interval if keys.interval and all(keys.quantile(q) in table.layers for q in keys.interval) else None
    level = keys.interval_level
    summary, per_gene, normalised, coverage, crps = [], {}, {}, {}, {}
    for s in chosen:
        rows = section_mask(table, s)
        if keys.predicted in table.obs and not table.obs[keys.predicted].to_numpy(bool)[rows].all():
            msg = (
                f"Section {s!r} has spots without predictions in {predicted_layer!r}: run `genar.tl.predict` on it "
                "first."
            )
            raise ValueError(msg)
        truth_counts = to_dense(table.layers[layer][rows], float)[:, measured]
        truth = np.log2(truth_counts + 1.0)
        pred = np.log2(to_dense(table.layers[predicted_layer][rows], float)[:, measured] + 1.0)
        r = np.full(table.n_vars, np.nan)
        r[measured] = pearson_per_gene(truth, pred)
        per_gene[s] = r
        row = {"section": s, "n_spots": int(rows.sum()), **summarise(r[measured], truth, pred)}
        if fixed is not None:
            row[f"pcc_fixed{FIXED_SET}"] = _mean_defined(r[fixed])
        if ceiling is not None and s in ceiling:
            normalised[s] = r / ceiling[s].reindex(table.var_names).to_numpy()  # by name: genes may be reordered
            row["pcc_all_vs_ceiling"] = _mean_defined(normalised[s])
        if interval is not None and _all_flagged(table, keys.sampled, rows):
            lo, hi = (to_dense(table.layers[keys.quantile(q)][rows], float)[:, measured] for q in interval)
            inside = (lo <= truth_counts) & (truth_counts <= hi)
            row[f"coverage_{level}"] = float(inside.mean())
            row[f"interval_width_{level}"] = float((hi - lo).mean())
            coverage[s] = np.full(table.n_vars, np.nan)
            coverage[s][measured] = inside.mean(axis=0)
            if keys.samples in table.obsm and _all_flagged(table, keys.samples_kept, rows):
                kept = np.asarray(table.obsm[keys.samples][rows])[:, :, measured]
                crps[s] = np.full(table.n_vars, np.nan)
                crps[s][measured] = ranked_probability_score(kept, truth_counts).mean(axis=0)
                row["rps"] = float(np.nanmean(crps[s][measured]))
                row[f"pit_coverage_{level}"] = float(pit_coverage(kept, truth_counts, level / 100).mean())
        row["n_genes_unmeasured"] = int((~measured).sum())
        summary.append(row)
    summary_df = pd.DataFrame(summary).set_index("section")
    per_gene_df = pd.DataFrame(per_gene, index=table.var_names.copy())
    table.uns[key_added] = {
        "summary": summary_df,
        "per_gene": per_gene_df,
        "per_gene_vs_ceiling": pd.DataFrame(normalised, index=table.var_names.copy()),
        "per_gene_coverage": pd.DataFrame(coverage, index=table.var_names.copy()),
        "per_gene_rps": pd.DataFrame(crps, index=table.var_names.copy()),
        "params": {
            "predicted_layer": predicted_layer,
            "layer": layer,
            "sections": list(chosen),
            "space": "log2(x+1)",
            "interval": [] if interval is None else list(interval),
        },
    }
    return summary_df


def _all_flagged(table, column: str, rows: np.ndarray) -> bool:
    """Whether ``obs[column]`` exists and is True for every row in ``rows``."""
    return column in table.obs and bool(table.obs[column].to_numpy(bool)[rows].all())


def _mean_defined(values: np.ndarray) -> float:
    """Mean of the finite values; NaN (without a warning) when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def pit_coverage(samples: np.ndarray, truth: np.ndarray, level: float = 0.9, *, chunk: int = 256) -> np.ndarray:
    """Coverage of the central ``level`` interval by the randomised PIT of count predictions, (spots, genes).

    For a count ``y`` and a predictive CDF ``F`` (from ``samples``, (spots, K, genes)), the randomised probability
    integral transform is uniform on ``[F(y - 1), F(y)]``; the value returned is the share of that range inside
    ``[(1 - level) / 2, (1 + level) / 2]``. Averaged over spots and genes it is ``level`` for a calibrated model,
    whatever the discreteness of the counts — unlike the coverage of a closed interval between two quantiles, which
    is at least ``level`` by construction when counts are small.
    """
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    out = np.empty(truth.shape)
    for start in range(0, len(truth), chunk):
        x = samples[start : start + chunk]
        y = truth[start : start + chunk, None, :]
        below = (x < y).mean(axis=1)
        at_or_below = (x <= y).mean(axis=1)
        width = at_or_below - below
        overlap = np.clip(np.minimum(at_or_below, hi_q) - np.maximum(below, lo_q), 0, None)
        point = ((below >= lo_q) & (below <= hi_q)).astype(float)  # y outside the samples' support: F is flat
        out[start : start + chunk] = np.divide(overlap, width, out=point, where=width > 0)
    return out


def ranked_probability_score(samples: np.ndarray, truth: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Ranked probability score of sampled count distributions: ``samples`` (spots, K, genes), ``truth`` (spots, genes).

    For integer-valued predictions the RPS, Σ_k (F(k) − 1{y ≤ k})², equals the CRPS, computed from the samples
    as E|X − y| − ½ E|X − X'| (the second term from the sorted samples). Returns (spots, genes).
    """
    n, k, _ = samples.shape
    out = np.empty(truth.shape)
    weights = (2 * np.arange(1, k + 1) - k - 1)[None, :, None]
    for start in range(0, n, chunk):
        x = np.sort(samples[start : start + chunk].astype(np.float64), axis=1)
        y = truth[start : start + chunk, None, :]
        spread = 2.0 / k**2 * (weights * x).sum(axis=1)
        out[start : start + chunk] = np.abs(x - y).mean(axis=1) - 0.5 * spread
    return out
