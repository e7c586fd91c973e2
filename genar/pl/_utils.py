"""Shared helpers of the plotting functions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def new_axes(ax: Axes | None, *, figsize: tuple[float, float] = (6.0, 4.0)) -> Axes:
    """``ax``, or the axes of a new figure."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax
