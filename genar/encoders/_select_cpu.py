"""Order statistics of many rows on the CPU, by counting, compiled with numba.

:func:`genar.encoders._color_texture.order_statistics` in three passes over each row instead of ~30 PyTorch passes
over the batch: ~105 against ~360 µs for the six order statistics of a 112 px patch's channels on one thread (~270 on
two). The values selected are the rows' own, so the result is the same bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def order_statistics_into(
    x_RN: np.ndarray,
    low_R: np.ndarray,
    high_R: np.ndarray,
    ranks: np.ndarray,
    n_bins: int,
    bins_N: np.ndarray,
    out_RK: np.ndarray,
) -> None:
    """Write the ``ranks[k]``-th smallest value (0-based) of row ``r`` of ``x_RN`` to ``out_RK[r, k]``.

    Each row's values are binned into ``n_bins`` equal bins between its minimum ``low_R[r]`` and maximum
    ``high_R[r]`` (a monotone map, so bins order the values); one walk up the counts finds the bin of each rank and
    how many values lie below it; only the values of those bins are gathered and sorted. ``x_RN``: finite and
    C-contiguous; ``ranks``: in any order; ``bins_N``: scratch of one row's length, of an integer type that holds
    ``n_bins - 1``.
    """
    n_rows, n = x_RN.shape
    n_ranks = ranks.shape[0]
    counts = np.empty(n_bins, np.int64)
    slot_of_bin = np.full(n_bins, -1, np.int64)  # where a chosen bin's values go; -1 for the others
    bin_K = np.empty(n_ranks, np.int64)
    below_K = np.empty(n_ranks, np.int64)
    starts = np.empty(n_ranks + 1, np.int64)
    fill = np.empty(n_ranks, np.int64)
    rank_order = np.argsort(ranks)
    top = n_bins - 1
    for r in range(n_rows):
        row, low = x_RN[r], low_R[r]
        span = high_R[r] - low
        scale = n_bins / span if span > 0 else 0.0
        for i in range(n):
            bins_N[i] = min(np.int64((row[i] - low) * scale), top)
        counts[:] = 0
        for i in range(n):
            counts[bins_N[i]] += 1
        n_slots, through, b = 0, 0, 0
        for k in rank_order:  # in increasing rank: one walk up the bins
            while through + counts[b] <= ranks[k]:
                through += counts[b]
                b += 1
            bin_K[k], below_K[k] = b, through
            if slot_of_bin[b] < 0:
                slot_of_bin[b] = n_slots
                starts[n_slots + 1] = counts[b]
                n_slots += 1
        starts[0] = 0
        for s in range(n_slots):
            fill[s] = starts[s]
            starts[s + 1] += starts[s]
        values = np.empty(starts[n_slots], x_RN.dtype)
        for i in range(n):
            s = slot_of_bin[bins_N[i]]
            if s >= 0:
                values[fill[s]] = row[i]
                fill[s] += 1
        for s in range(n_slots):
            values[starts[s] : starts[s + 1]].sort()
        for k in range(n_ranks):
            out_RK[r, k] = values[starts[slot_of_bin[bin_K[k]]] + ranks[k] - below_K[k]]
        for k in range(n_ranks):
            slot_of_bin[bin_K[k]] = -1
