"""Reading data into genar's SpatialData layout: counts + spots + an image, whole-slide images, HEST-1k."""

from ._hest import read_hest
from ._layout import combine, from_counts
from ._micron import add_micron_system
from ._wsi import SlideError, read_wsi

__all__ = ["SlideError", "add_micron_system", "combine", "from_counts", "read_hest", "read_wsi"]
