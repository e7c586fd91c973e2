"""Reading patch windows from image pyramids chunk by chunk, so each chunk is decoded once per slide region.

However many patches overlap an image chunk (Visium HD bins overlap heavily), it is decoded once and kept while nearby
patches still need it.

A batch's windows are mapped onto the chunk grid of their pyramid level; the chunks not yet in memory are decoded
(from their files when the image is a zarr array read from disk, on a thread pool; else in one dask computation),
then every patch is cut from them and resampled on the thread pool (:func:`~genar.pp._resample.resample_bilinear`,
Pillow's bilinear filter, releases the GIL), so reading uses every core and never runs Python per pixel.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from .. import _keys
from .._geometry import image_levels
from .._region_readers import region_reader_of
from .._validate import check_key
from ._stored_chunks import StoredChunks

if TYPE_CHECKING:
    from anndata import AnnData
    from spatialdata import SpatialData

#: Fill value of patch pixels outside the image (white, like slide background).
PAD_VALUE = 255
#: dask scheduler that decodes a batch's chunks when the image is neither a zarr array read as it is nor a slide with a
#: region reader: measured 3.1 ms per 512 px zstd chunk synchronously against 6.3 ms on dask's thread pool (scheduling
#: costs more than it shares), on 2 cores. Zarr arrays are read directly on the reader's threads instead: 1.2 ms per
#: chunk through zarr, 0.45 ms from the chunk's file (:class:`~genar.pp._stored_chunks.StoredChunks`); so are
#: whole-slide images (:mod:`genar._region_readers`): a JPEG-tiled TIFF through tiffslide read 861–986 patches/s on
#: one reader thread and 1,180–1,323 on two, against 722–792 and 814–916 through dask, on 2 cores.
DECODE_SCHEDULER = "synchronous"
#: Decoded image chunks kept in memory between batches, in bytes (a 512 × 512 RGB chunk is 0.75 MiB).
CHUNK_CACHE_BYTES = 256 * 2**20


def zarr_array_of(data):
    """The zarr array that the dask array ``data`` reads unchanged, else None.

    SpatialData reads images from disk with ``dask.array.from_zarr``: a graph of two layers, the stored array
    (``original-from-zarr-…``) and the reading of its chunks (``from-zarr-…``). Anything computed from it adds a
    layer or changes the shape, and an image in memory has no zarr array: None, and the reader asks dask.
    """
    import zarr

    layers = getattr(getattr(data, "dask", None), "layers", {})
    names = sorted(layers)
    if len(names) != 2 or not (names[0].startswith("from-zarr-") and names[1] == f"original-{names[0]}"):
        return None
    arrays = [a for a in dict(layers[names[1]]).values() if isinstance(a, zarr.Array)]
    if len(arrays) == 1 and arrays[0].shape == data.shape and arrays[0].dtype == data.dtype:
        return arrays[0]
    return None


class ChunkedLevel:
    """One pyramid level: its chunk grid, and the decoded chunks (``(3, h, w)`` uint8) least recently used first.

    Chunks are decoded on ``pool`` straight from the zarr array when the level is one read unchanged from disk
    (:func:`zarr_array_of`), from their files where :class:`StoredChunks` reads the array; from the slide when genar
    recorded a region reader for the level (:func:`~genar._region_readers.region_reader_of`: a whole-slide image);
    otherwise by dask, on the calling thread.
    """

    def __init__(self, data, pool: ThreadPoolExecutor, *, cache_bytes: int = CHUNK_CACHE_BYTES) -> None:
        self.stored = zarr_array_of(data)
        self.pool = pool
        self.data = data[:3] if data.shape[0] > 3 else data
        self.y_edges = np.concatenate([[0], np.cumsum(self.data.chunks[1])])
        self.x_edges = np.concatenate([[0], np.cumsum(self.data.chunks[2])])
        self.files = None if self.stored is None else StoredChunks.of(self.stored)
        self.region = None if self.stored is not None else region_reader_of(self.data)
        if self.files is not None:
            from dask.array.core import normalize_chunks

            if normalize_chunks(self.files.chunk_shape[1:], self.files.shape[1:]) != data.chunks[1:]:
                self.files = None  # dask's chunks are not the stored ones: read regions through zarr
        self.cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self.cache_bytes = cache_bytes
        self.decoded = 0  # chunks decoded so far (the benchmark reports it)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.data.shape[1]), int(self.data.shape[2])

    def chunks_of(self, y0: int, y1: int, x0: int, x1: int) -> list[tuple[int, int]]:
        """Grid indices of the chunks that the window ``[y0, y1) × [x0, x1)`` (inside the image) touches."""
        if y1 <= y0 or x1 <= x0:
            return []
        iy = range(np.searchsorted(self.y_edges, y0, "right") - 1, np.searchsorted(self.y_edges, y1 - 1, "right"))
        ix = range(np.searchsorted(self.x_edges, x0, "right") - 1, np.searchsorted(self.x_edges, x1 - 1, "right"))
        return [(i, j) for i in iy for j in ix]

    def load(self, keys: set[tuple[int, int]]) -> None:
        """Decode the chunks of ``keys`` not in memory (together), then drop the least recently used others."""
        import dask

        missing = sorted(k for k in keys if k not in self.cache)
        if missing:
            if self.stored is not None:
                blocks = list(self.pool.map(self._read_stored, missing))
            elif self.region is not None:
                blocks = list(self.pool.map(self._read_region, missing))
            else:
                blocks = dask.compute(*(self.data.blocks[:, i, j] for i, j in missing), scheduler=DECODE_SCHEDULER)
            for key, block in zip(missing, blocks, strict=True):
                self.cache[key] = np.asarray(block, dtype=np.uint8)
            self.decoded += len(missing)
        for key in keys:
            self.cache.move_to_end(key)
        held = sum(block.nbytes for block in self.cache.values())
        while held > self.cache_bytes and len(self.cache) > len(keys):
            _, block = self.cache.popitem(last=False)
            held -= block.nbytes

    def _read_region(self, key: tuple[int, int]) -> np.ndarray:
        (y0, y1), (x0, x1) = self.y_edges[key[0] : key[0] + 2], self.x_edges[key[1] : key[1] + 2]
        return self.region(int(y0), int(y1), int(x0), int(x1))

    def _read_stored(self, key: tuple[int, int]) -> np.ndarray:
        i, j = key
        channels = self.data.shape[0]
        if self.files is not None:
            per_chunk = self.files.chunk_shape[0]
            parts = [self.files.read((c, i, j)) for c in range(-(-channels // per_chunk))]
            return (parts[0] if len(parts) == 1 else np.concatenate(parts))[:channels]
        rows = slice(int(self.y_edges[i]), int(self.y_edges[i + 1]))
        columns = slice(int(self.x_edges[j]), int(self.x_edges[j + 1]))
        return self.stored[:channels, rows, columns]

    def cut(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The window ``[lo, hi)`` (x, y; may reach beyond the image) as ``(3, h, w)``, padded white outside."""
        canvas = np.full((3, hi[1] - lo[1], hi[0] - lo[0]), PAD_VALUE, dtype=np.uint8)
        height, width = self.shape
        y0, y1 = max(lo[1], 0), min(hi[1], height)
        x0, x1 = max(lo[0], 0), min(hi[0], width)
        for i, j in self.chunks_of(y0, y1, x0, x1):
            cy0, cx0 = self.y_edges[i], self.x_edges[j]
            block = self.cache[i, j]
            ya, yb = max(y0, cy0), min(y1, cy0 + block.shape[1])
            xa, xb = max(x0, cx0), min(x1, cx0 + block.shape[2])
            canvas[:, ya - lo[1] : yb - lo[1], xa - lo[0] : xb - lo[0]] = block[
                :, ya - cy0 : yb - cy0, xa - cx0 : xb - cx0
            ]
        return canvas


def default_threads() -> int:
    """The reader's threads when none are asked for: the CPU's cores, at most 8."""
    return min(8, os.cpu_count() or 1)


class PatchReader:
    """Reads the patches :func:`genar.pp.extract_patches` defined, resampled to ``patch_px``, chunk-aware."""

    def __init__(self, sdata: SpatialData, table: AnnData, patches_key: str, *, n_threads: int | None = None) -> None:
        check_key(table.obsm, patches_key, where="table.obsm", hint="Run `genar.pp.extract_patches` first.")
        self.boxes = np.asarray(table.obsm[patches_key], dtype=float)
        self.params = table.uns[patches_key]["params"]
        self.sections = table.obs[_keys.SECTION].astype(str).to_numpy()
        self.n_threads = n_threads or default_threads()
        self.pool = ThreadPoolExecutor(max_workers=self.n_threads)
        self.levels: dict[str, tuple[ChunkedLevel, float]] = {}
        for section, p in self.params["sections"].items():
            levels = image_levels(sdata.images[p["image_key"]])
            level = levels[p["level"]]
            self.levels[section] = (ChunkedLevel(level.data, self.pool), levels[0].shape[-1] / level.shape[-1])

    @property
    def patch_px(self) -> int:
        """Edge of every patch :meth:`read` returns, in pixels."""
        return int(self.params["patch_px"])

    def read(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """uint8 patches ``(len(rows), patch_px, patch_px, 3)`` of the table rows ``rows``.

        ``out``: a uint8 array to write them into, at least ``len(rows)`` patches long (its first ``len(rows)`` are
        returned), such as page-locked memory for a copy to a GPU.
        """
        rows = np.asarray(rows, dtype=int)
        shape = (len(rows), self.patch_px, self.patch_px, 3)
        if out is not None:
            if out.dtype != np.uint8 or out.shape[1:] != shape[1:] or len(out) < len(rows):
                msg = (
                    f"`out` must be a uint8 array of at least {shape} to hold these patches; got "
                    f"{out.dtype} {out.shape}. Allocate it as `np.empty((n, {self.patch_px}, {self.patch_px}, 3), "
                    "np.uint8)`."
                )
                raise ValueError(msg)
            out = out[: len(rows)]
        plans, needed = [], {}
        for row in rows:
            level, factor = self.levels[self.sections[row]]
            box = self.boxes[row] / factor
            lo, hi = np.floor(box[:2]).astype(int), np.ceil(box[2:]).astype(int)
            height, width = level.shape
            keys = level.chunks_of(max(lo[1], 0), min(hi[1], height), max(lo[0], 0), min(hi[0], width))
            needed.setdefault(id(level), (level, set()))[1].update(keys)
            plans.append((level, lo, hi, box))
        for level, keys in needed.values():
            level.load(keys)
        if out is None:
            out = np.empty(shape, dtype=np.uint8)

        def cut_patches(indices: np.ndarray) -> None:
            for i in indices:
                self._patch(out, i, *plans[i])

        # One task per thread, not per patch: a task's hand-over cost ~15% of a 224 px patch's resampling.
        list(self.pool.map(cut_patches, np.array_split(np.arange(len(rows)), self.n_threads)))
        return out

    def _patch(self, out: np.ndarray, i: int, level: ChunkedLevel, lo, hi, box) -> None:
        from ._resample import resample_bilinear  # imports numba (0.3 s): not before patches are read

        size = out.shape[1]
        canvas = level.cut(lo, hi)
        sub = (box[0] - lo[0], box[1] - lo[1], box[2] - lo[0], box[3] - lo[1])
        if canvas.shape[1:] == (size, size) and np.allclose(sub, (0, 0, size, size)):
            out[i] = canvas.transpose(1, 2, 0)  # the window is the patch: nothing to resample
        else:
            resample_bilinear(canvas, sub, out[i])

    def close(self) -> None:
        """Stop the reader's threads."""
        self.pool.shutdown(wait=False)


def row_batches(n_rows: int, batch_size: int) -> list[np.ndarray]:
    """Consecutive row indices ``0 .. n_rows - 1`` in batches of ``batch_size`` (the last may be shorter)."""
    return [np.arange(start, min(start + batch_size, n_rows)) for start in range(0, n_rows, batch_size)]
