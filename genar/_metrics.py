"""Scores of predictions in log2(x + 1): per-gene Pearson and the summaries genar reports (numpy only).

Shared by :func:`genar.tl.evaluate` and by training, which selects epochs on the same numbers.
"""

from __future__ import annotations

import numpy as np

#: The ``k`` of the reported PCC-k (mean of the k best per-gene correlations).
TOP_K = (10, 50, 200)


def pearson_per_gene(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column; NaN where truth or prediction is constant (undefined)."""
    t = truth - truth.mean(axis=0)
    p = pred - pred.mean(axis=0)
    denom = np.sqrt((t**2).sum(axis=0) * (p**2).sum(axis=0))
    out = np.full(truth.shape[1], np.nan)
    # constant columns are detected exactly (a float mean of equal values can leave rounding residue)
    ok = (np.ptp(truth, axis=0) > 0) & (np.ptp(pred, axis=0) > 0) & (denom > 0)
    out[ok] = (t[:, ok] * p[:, ok]).sum(axis=0) / denom[ok]
    return out


def summarise(r: np.ndarray, truth_log: np.ndarray, pred_log: np.ndarray) -> dict[str, float]:
    """PCC-k for k in :data:`TOP_K` with the number of genes each averages, the mean over all, MSE and MAE.

    PCC-k is the mean of the k highest *defined* correlations; when fewer than k genes have one, it is the mean of
    those there are, and ``n_pcc_k`` says how many (a gene whose truth or prediction is constant has none).
    """
    defined = np.sort(r[np.isfinite(r)])[::-1]
    row: dict[str, float] = {}
    for k in TOP_K:
        row[f"pcc_{k}"] = float(defined[:k].mean()) if len(defined) else float("nan")
        row[f"n_pcc_{k}"] = int(min(k, len(defined)))
    row["pcc_all"] = float(defined.mean()) if len(defined) else float("nan")
    row["mse"] = float(((truth_log - pred_log) ** 2).mean())
    row["mae"] = float(np.abs(truth_log - pred_log).mean())
    row["n_genes_defined"] = int(len(defined))
    return row
