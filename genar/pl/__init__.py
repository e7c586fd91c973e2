"""Plots: every function draws into ``ax=`` (or a new figure) and returns the Axes; nothing is saved or computed."""

from ._correlation import gene_correlation
from ._scales import scales
from ._spatial import spatial
from ._training import training
from ._uncertainty import uncertainty

__all__ = ["gene_correlation", "scales", "spatial", "training", "uncertainty"]
