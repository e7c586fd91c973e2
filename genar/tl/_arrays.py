"""From the panel table to the arrays the model reads: features, and coordinates in [0, 1]."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _keys
from .._validate import check_key

if TYPE_CHECKING:
    from anndata import AnnData


def normalised_coords(table: AnnData, spatial_key: str = _keys.SPATIAL) -> np.ndarray:
    """Spot coordinates scaled to ``[0, 1]`` within each section (min-max of ``obsm[spatial_key]``), float32."""
    check_key(table.obsm, spatial_key, where="table.obsm", hint="Spot coordinates are needed (x, y per spot).")
    xy = np.asarray(table.obsm[spatial_key], dtype=float)[:, :2]
    if not np.isfinite(xy).all():
        bad = int((~np.isfinite(xy)).any(axis=1).sum())
        msg = f"table.obsm[{spatial_key!r}] has NaN or infinite coordinates for {bad} spots; fix or drop those spots."
        raise ValueError(msg)
    out = np.zeros_like(xy)
    sections = table.obs[_keys.SECTION].astype(str).to_numpy()
    for s in np.unique(sections):
        rows = sections == s
        lo, hi = xy[rows].min(axis=0), xy[rows].max(axis=0)
        out[rows] = (xy[rows] - lo) / np.where(hi > lo, hi - lo, 1.0)
    return out.astype(np.float32)


def histology_features(table: AnnData, embedding_key: str) -> np.ndarray:
    """``obsm[embedding_key]`` as float32, checked to be finite."""
    check_key(table.obsm, embedding_key, where="table.obsm", hint="Run `genar.pp.embed_patches` first.")
    features = np.asarray(table.obsm[embedding_key], dtype=np.float32)
    if not np.isfinite(features).all():
        bad = int((~np.isfinite(features)).any(axis=1).sum())
        msg = f"table.obsm[{embedding_key!r}] has NaN or infinite values for {bad} spots; re-run embed_patches."
        raise ValueError(msg)
    return features
