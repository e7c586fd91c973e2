"""The scale schedule: how many gene groups each scale has, and which genes form each group (numpy only).

One definition of the contiguous, equal-width gene windows, shared by the preprocessing (:func:`genar.pp.group_ids`)
and the network's pooling (:func:`genar.module.pooling_matrix`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The paper's scales: number of tokens (gene groups) per scale, coarse to fine.
PAPER_SCALES = (1, 4, 8, 40, 100, 200)


def check_scales(scales: Sequence[int], n_genes: int) -> tuple[int, ...]:
    """Validate a scale schedule for a panel of ``n_genes`` genes and return it as a tuple.

    Scales are the number of gene groups per scale, coarse to fine: positive, strictly increasing, each a
    divisor of the panel size (so every group at a scale has the same number of genes), ending at the panel
    size (the finest scale predicts one count per gene).
    """
    scales = tuple(int(s) for s in scales)
    if not scales:
        msg = "`scales` is empty; pass the number of gene groups per scale, e.g. (1, 4, 8, 40, 100, 200)."
        raise ValueError(msg)
    if any(s < 1 for s in scales) or any(b <= a for a, b in zip(scales, scales[1:], strict=False)):
        msg = f"`scales` must be positive and strictly increasing (coarse to fine); got {scales}."
        raise ValueError(msg)
    if scales[-1] != n_genes:
        msg = (
            f"The finest scale must equal the panel size ({n_genes} genes); got scales {scales}. "
            f"Append {n_genes} or choose a panel of {scales[-1]} genes in `genar.pp.select_genes`."
        )
        raise ValueError(msg)
    bad = [s for s in scales if n_genes % s]
    if bad:
        divisors = [d for d in range(1, n_genes + 1) if n_genes % d == 0]
        msg = (
            f"Every scale must divide the panel size {n_genes} so groups have equal sizes; {bad} do not. "
            f"Divisors of {n_genes}: {divisors}."
        )
        raise ValueError(msg)
    return scales


def gene_windows(n_groups: int, n_genes: int) -> np.ndarray:
    """Group of every gene (in model order) when ``n_genes`` are cut into ``n_groups`` contiguous, equal windows.

    Returns an int64 array of length ``n_genes``: ``gene_index // (n_genes // n_groups)``.
    """
    if n_groups < 1 or n_genes % n_groups:
        msg = f"A scale of {n_groups} groups does not divide {n_genes} genes into equal windows."
        raise ValueError(msg)
    return np.arange(n_genes, dtype=np.int64) // (n_genes // n_groups)


def group_ids(scales: Sequence[int], n_genes: int) -> np.ndarray:
    """Group of every gene (in model order) at every scale: an int array of shape ``(n_genes, n_scales)``.

    Column ``k`` is :func:`gene_windows` of ``scales[k]``: exactly the pooling groups of the model.
    """
    scales = check_scales(scales, n_genes)
    return np.stack([gene_windows(s, n_genes) for s in scales], axis=1)
