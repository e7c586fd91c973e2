"""Small idioms of reading a table, written once: the rows of some sections, a (sparse) matrix as a dense array."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from . import _keys

if TYPE_CHECKING:
    from anndata import AnnData


def section_mask(table: AnnData, sections: str | Iterable[str]) -> np.ndarray:
    """Boolean mask of the rows of ``table`` whose ``obs['section']`` is one of ``sections``."""
    sections = [sections] if isinstance(sections, str) else list(sections)
    return table.obs[_keys.SECTION].astype(str).isin(sections).to_numpy()


def to_dense(X: Any, dtype: Any = None) -> np.ndarray:
    """A matrix (sparse, dense or array-like) as a dense NumPy array, cast to ``dtype`` when given."""
    dense = np.asarray(X.toarray() if sparse.issparse(X) or hasattr(X, "toarray") else X)
    return dense if dtype is None else dense.astype(dtype, copy=False)
