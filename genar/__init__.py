"""genar: spatial gene expression (raw counts per spot) from H&E histology, by next-scale autoregression."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, encoders, pl, pp, tl
from ._settings import settings
from .model import GenAR, GenARConfig

try:
    __version__ = version("genar")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["GenAR", "GenARConfig", "__version__", "datasets", "encoders", "pl", "pp", "settings", "tl"]
