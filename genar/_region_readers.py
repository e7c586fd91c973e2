"""Direct readers of the regions behind lazy image levels that genar built itself (whole-slide images).

A slide read through tiffslide or openslide is a dask array whose chunks dask computes one at a time: the patch
reader asks dask for a batch's chunks with its synchronous scheduler, on one thread (dask's thread pool cost more
than it shared, see :data:`genar.pp._patch_reader.DECODE_SCHEDULER`). Where genar made such an array, it records
here how to read any region of it straight from the slide, so that the reader decodes a batch's tiles on all of its
threads without going through dask. An array derived from it (another dask operation, another name) is not known
here and is read through dask as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

#: ``reader(y0, y1, x0, x1)``: the ``(3, y1 - y0, x1 - x0)`` uint8 pixels of that region, C-contiguous.
RegionReader = Callable[[int, int, int, int], np.ndarray]

#: dask array name -> (its shape, its region reader). A dask array's name is the token of its graph: two arrays
#: with one name compute the same pixels.
_READERS: dict[str, tuple[tuple[int, ...], RegionReader]] = {}


def register_region_reader(array, reader: RegionReader) -> None:
    """Record that ``reader`` reads the regions of the lazy ``(3, height, width)`` uint8 dask ``array``.

    The record goes with the array: once it is garbage-collected, copies of it (the same name) are read by dask.
    """
    _READERS[array.name] = (tuple(array.shape), reader)
    weakref.finalize(array, _READERS.pop, array.name, None)


def region_reader_of(array) -> RegionReader | None:
    """The region reader recorded for the dask ``array``, else None (read it through dask)."""
    found = _READERS.get(getattr(array, "name", None))
    if found is None or found[0] != tuple(array.shape):
        return None
    return found[1]
