"""genar: spatial gene expression (raw counts per spot) from H&E histology, by next-scale autoregression."""

from . import datasets, encoders, io, pl, pp, tl
from ._settings import settings
from ._version import __version__
from .model import GenAR, GenARConfig

__all__ = ["GenAR", "GenARConfig", "__version__", "datasets", "encoders", "io", "pl", "pp", "settings", "tl"]
