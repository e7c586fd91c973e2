"""Example data sets, loaded as :class:`~spatialdata.SpatialData`."""

from .._files import cache_dir, data_dir
from ._her2st import her2st
from ._her2st_files import HER2ST_SECTIONS

__all__ = ["HER2ST_SECTIONS", "cache_dir", "data_dir", "her2st"]
