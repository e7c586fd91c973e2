"""Writing a prediction into the panel table: its layers, its flags, its samples and its provenance, for some rows.

Shared by :func:`genar.tl.predict` and :func:`genar.tl.baseline`, so a baseline's layer looks like GenAR's to
:func:`genar.tl.evaluate` and the plots.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _keys
from .._tables import to_dense
from .._validate import check_overwrite

if TYPE_CHECKING:
    from anndata import AnnData

    from .._keys import PredictionKeys


def check_free(table: AnnData, keys: PredictionKeys, rows: np.ndarray, *, overwrite: bool, sampled: bool) -> None:
    """Refuse to replace predictions that ``rows`` already hold in any layer this prediction writes."""
    already = table.obs[keys.predicted].to_numpy(bool) if keys.predicted in table.obs else np.zeros(table.n_obs, bool)
    clash = [name for name in keys.layers(sampled=sampled) if name in table.layers]
    sections = sorted(set(table.obs.loc[already & rows, _keys.SECTION].astype(str)))
    check_overwrite(
        bool(clash) and bool((already & rows).any()),
        f"A prediction in table.layers {clash} for sections {sections}",
        overwrite=overwrite,
        rename="layer_added",
    )


def nearest_count_in_log_space(estimate: np.ndarray, cap: int | None = None) -> np.ndarray:
    """The whole count nearest a float estimate in log2(x + 1): ``floor`` or ``floor + 1``, int32 (at most ``cap``).

    Rounding in count space would move small estimates the wrong way for log-space metrics (0.45 is nearer 1 than
    0 in log2(x + 1)).
    """
    est = np.maximum(np.asarray(estimate, dtype=np.float64), 0.0)
    low = np.floor(est)
    up = np.abs(np.log2(2 + low) - np.log2(1 + est)) < np.abs(np.log2(1 + low) - np.log2(1 + est))
    counts = (low + up).astype(np.int64)
    if cap is not None:
        counts = np.minimum(counts, cap)
    return counts.astype(np.int32)


def write_rows(table: AnnData, name: str, rows: np.ndarray, columns: np.ndarray, values: np.ndarray) -> None:
    """Put ``values`` (rows × columns) into ``layers[name]`` at ``rows`` and ``columns``; other rows are kept."""
    layer = np.zeros(table.shape, dtype=values.dtype)
    if name in table.layers:
        layer[:] = to_dense(table.layers[name])
    block = layer[rows]
    block[:, columns] = values
    layer[rows] = block
    table.layers[name] = layer


def set_flag(table: AnnData, column: str, rows: np.ndarray, *, value: bool) -> None:
    """Set the boolean ``obs[column]`` to ``value`` at ``rows``, keeping the other rows (False where new)."""
    flag = table.obs[column].to_numpy(bool).copy() if column in table.obs else np.zeros(table.n_obs, bool)
    flag[rows] = value
    table.obs[column] = flag


def write_samples(table: AnnData, keys: PredictionKeys, rows: np.ndarray, columns: np.ndarray, samples) -> None:
    """Keep ``samples`` (rows × K × columns) in ``obsm``; a different K or dtype starts the array anew."""
    stored = table.obsm.get(keys.samples)
    n_samples = samples.shape[1]
    if stored is None or stored.shape[1:] != (n_samples, table.n_vars) or stored.dtype != samples.dtype:
        stored = np.zeros((table.n_obs, n_samples, table.n_vars), dtype=samples.dtype)
        if keys.samples_kept in table.obs:
            table.obs[keys.samples_kept] = False  # the samples of other rows are gone with the old array
    stored[np.ix_(np.flatnonzero(rows), np.arange(n_samples), columns)] = samples
    table.obsm[keys.samples] = stored


def write_prediction(
    table: AnnData,
    keys: PredictionKeys,
    rows: np.ndarray,
    columns: np.ndarray,
    layers: Mapping[str, np.ndarray],
    *,
    samples: np.ndarray | None,
    sampled: bool,
    record: dict[str, Any],
) -> None:
    """Write every layer of a prediction for ``rows``, update the flags, keep the samples, record the provenance.

    ``layers`` maps layer names to ``(rows, columns)`` arrays. The flags say, per spot, whether it holds a
    prediction, whether its mean and quantile layers are valid (``sampled``), and whether its samples are kept, so
    that stale uncertainty from an earlier call is never read.
    """
    for name, values in layers.items():
        write_rows(table, name, rows, columns, values)
    if samples is not None:
        write_samples(table, keys, rows, columns, samples)
    if samples is not None or keys.samples_kept in table.obs:
        set_flag(table, keys.samples_kept, rows, value=samples is not None)
    if sampled or keys.sampled in table.obs:
        set_flag(table, keys.sampled, rows, value=sampled)
    set_flag(table, keys.predicted, rows, value=True)
    table.uns.setdefault(_keys.PREDICTIONS, {})[keys.layer] = record
