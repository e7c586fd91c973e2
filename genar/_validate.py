"""Checks at the public boundary: keys that must exist, counts that must be raw."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from . import _keys

if TYPE_CHECKING:
    from anndata import AnnData
    from spatialdata import SpatialData


def get_table(sdata: SpatialData, table_key: str, *, hint: str | None = None) -> AnnData:
    """Return ``sdata.tables[table_key]`` or raise a :class:`KeyError` that lists the tables that exist."""
    if table_key not in sdata.tables:
        msg = f"Table {table_key!r} not found in SpatialData. Available tables: {sorted(sdata.tables)}."
        if hint:
            msg += f" {hint}"
        raise KeyError(msg)
    return sdata.tables[table_key]


def check_key(mapping: Any, key: str, *, where: str, hint: str | None = None) -> None:
    """Raise a :class:`KeyError` naming ``where`` and the keys that exist when ``key`` is absent."""
    if key not in mapping:
        msg = f"{key!r} not found in {where}. Available keys: {sorted(map(str, mapping.keys()))}."
        if hint:
            msg += f" {hint}"
        raise KeyError(msg)


def get_counts(adata: AnnData, layer: str | None, *, argument: str = "layer") -> np.ndarray | sparse.spmatrix:
    """Return ``adata.X`` or ``adata.layers[layer]`` after checking that it holds raw counts.

    Raw counts are finite, non-negative integers (stored as any numeric dtype).
    """
    if layer is None:
        X = adata.X
        where = "adata.X"
    else:
        check_key(adata.layers, layer, where="adata.layers", hint=f"Pass an existing layer as `{argument}=`.")
        X = adata.layers[layer]
        where = f"adata.layers[{layer!r}]"
    check_raw_counts(X, where=where, argument=argument)
    return X


def check_raw_counts(X: Any, *, where: str, argument: str = "layer") -> None:
    """Raise a :class:`ValueError` unless ``X`` holds finite non-negative integers."""
    values = X.data if sparse.issparse(X) else np.asarray(X)
    if values.size == 0:
        return
    if not np.issubdtype(values.dtype, np.number):
        msg = f"{where} has dtype {values.dtype}; genar needs raw integer counts."
        raise TypeError(msg)
    if not np.all(np.isfinite(values)):
        msg = f"{where} contains NaN or infinite values; genar needs raw integer counts."
        raise ValueError(msg)
    vmin = values.min()
    if vmin < 0:
        msg = (
            f"{where} contains negative values (minimum {vmin}); genar needs raw, non-negative integer counts. "
            f"Pass the raw counts, e.g. with `{argument}='counts'`."
        )
        raise ValueError(msg)
    if not np.issubdtype(values.dtype, np.integer):
        frac = values[values != np.round(values)]
        if frac.size:
            msg = (
                f"{where} does not hold raw counts: found non-integer values such as {frac[0]!r} "
                "(normalised or log-transformed data?). genar models raw integer counts; pass the layer that "
                f"holds them with `{argument}=` (e.g. `{argument}='counts'`)."
            )
            raise ValueError(msg)


def check_overwrite(exists: bool, what: str, *, overwrite: bool, rename: str | None = None) -> None:  # noqa: FBT001
    """Refuse to replace an existing output unless ``overwrite``: one message everywhere.

    ``what`` names the output (e.g. ``"sdata.tables['genar']"``); ``rename`` is the argument that chooses another name.
    """
    if exists and not overwrite:
        other = f", or choose another `{rename}`" if rename else ""
        msg = f"{what} exists already. Pass `overwrite=True` to replace it{other}."
        raise ValueError(msg)


def check_sections(
    requested: Iterable[str] | None, available: Sequence[str], *, argument: str = "sections"
) -> list[str]:
    """Return the requested sections (all when ``None``), raising if one is unknown."""
    available = list(available)
    if requested is None:
        return available
    if isinstance(requested, str):
        requested = [requested]
    requested = list(requested)
    unknown = [s for s in requested if s not in available]
    if unknown:
        msg = f"`{argument}` names unknown sections {unknown}. Available sections: {available}."
        raise ValueError(msg)
    if not requested:
        msg = f"`{argument}` is empty; pass at least one of {available} or None for all."
        raise ValueError(msg)
    return requested


def sections_of(adata: AnnData) -> list[str]:
    """Sections of a table in order of appearance (``obs['section']``)."""
    check_key(
        adata.obs,
        _keys.SECTION,
        where="adata.obs",
        hint="Each spot needs the section (slide) it comes from, as written by `genar.datasets.her2st`.",
    )
    return list(dict.fromkeys(adata.obs[_keys.SECTION].astype(str)))
