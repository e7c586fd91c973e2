"""The count cap: the largest count token of a model, chosen from the training counts unless set."""

from __future__ import annotations

import warnings

import numpy as np

from .._logging import logger
from ._config import GenARConfig


def choose_cap(counts: np.ndarray, config: GenARConfig) -> int:
    """``config.cap``, else the ``config.cap_quantile`` quantile of the training counts (at least 1)."""
    if config.cap is not None:
        return int(config.cap)
    cap = max(1, int(np.ceil(np.quantile(counts, config.cap_quantile))))
    logger.info("count cap %d: the %g quantile of the training counts (max %d)", cap, config.cap_quantile, counts.max())
    return cap


def clip_counts(counts: np.ndarray, cap: int, *, what: str, stacklevel: int = 3) -> np.ndarray:
    """``counts`` clipped at ``cap``, with a warning that says how many were clipped and how to change the cap."""
    above = counts > cap
    if above.any():
        warnings.warn(
            f"{int(above.sum())} of {counts.size} {what} counts ({above.mean():.3%}) exceed the cap of {cap} and are "
            f"clipped to it (largest {int(counts.max())}). Set GenARConfig(cap=...) to change the cap.",
            UserWarning,
            stacklevel=stacklevel,
        )
        counts = np.minimum(counts, cap)
    return counts
