"""The one place where genar's SpatialData layout is made: counts, spots and an image in, one section out.

Layout of a section ``s``: ``images[f"{s}_image"]`` (multiscale, read lazily), ``shapes[f"{s}_spots"]`` (circles of
the spots' true diameter, in full-resolution image pixels), coordinate systems ``s`` (those pixels) and
``f"{s}_um"`` (micrometres), and one table ``tables["table"]`` annotating the spots: raw counts (CSR int32),
``obs['section']``, ``obs['region']``, ``obs['instance_id']``, ``obs['spot']``, ``obsm['spatial']`` (pixels), and
``uns['spatial'][s]['scalefactors']`` with the pixel size and spot diameter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _keys
from .._geometry import section_transformations
from .._logging import logger
from .._validate import check_raw_counts

if TYPE_CHECKING:
    from anndata import AnnData
    from spatialdata import SpatialData


def from_counts(
    counts: AnnData | pd.DataFrame | np.ndarray | sparse.spmatrix,
    spots: pd.DataFrame | np.ndarray,
    image: Any = None,
    *,
    pixel_size_um: float | None = None,
    spot_diameter_um: float,
    section: str = "section",
    genes: Sequence[str] | None = None,
    layer: str | None = None,
    coordinates: tuple[str, str] = ("x", "y"),
    metadata: Mapping[str, Any] | None = None,
    image_cache: str | os.PathLike | None = None,
    backend: Literal["tiffslide", "openslide"] = "tiffslide",
    table_key: str = _keys.TABLE,
) -> SpatialData:
    """Put counts, spot positions and an H&E image of one section into genar's SpatialData layout.

    This is the entry point for data genar has no reader for: raw counts per spot, where each spot is in the
    full-resolution image (pixels), the image, and its pixel size. The her2st, HEST-1k and whole-slide readers are
    built on it.

    Parameters
    ----------
    counts
        Raw counts, spots × genes: an AnnData (``X`` or ``layer``), a DataFrame (index: spot ids, columns: genes),
        or an array with ``genes``. Spots are matched to ``spots`` by id when both have one, else by position.
    spots
        Spot centres in full-resolution image pixels: a DataFrame with the ``coordinates`` columns (index: spot
        ids; other columns are kept in ``obs``), or an ``(n, 2)`` array of ``(x, y)``. Spots without counts are
        left out (logged); counts without a spot are an error.
    image
        The H&E image: a slide file (SVS, pyramidal TIFF, OME-TIFF, ...: read lazily with its own pyramid and, if
        ``pixel_size_um`` is not given, its pixel size from its metadata), another image file (decoded once into a
        cached pyramid), an RGB uint8 array or an image element; ``None`` for expression-only data.
    pixel_size_um
        Micrometres per full-resolution pixel; needed unless a slide file records it. Never guessed.
    spot_diameter_um
        The spots' true diameter (55 for Visium, 100 for the original ST arrays).
    section
        Name of the section: ``obs['section']``, the coordinate systems and the element names derive from it.
    genes
        Gene names, when ``counts`` is an array.
    layer
        Layer of an AnnData ``counts`` holding the raw counts (default ``X``).
    coordinates
        Columns of ``spots`` with ``x`` (image width) and ``y`` (image height).
    metadata
        Anything to keep about the section (e.g. its source), in ``uns['spatial'][section]['metadata']``.
    image_cache
        Folder for the pyramids of decoded image files (default: ``images/`` in the genar cache).
    backend
        Slide reader: ``'tiffslide'`` (default) or ``'openslide'`` (MRXS, VMS, BIF, ...).
    table_key
        Name of the table.

    Returns
    -------
    A :class:`~spatialdata.SpatialData` in genar's layout (see the module docstring), ready for
    :func:`genar.pp.select_genes`; with several sections, join them with :func:`genar.io.combine`.

    Examples
    --------
    >>> sdata = genar.io.from_counts(counts, spots, "slide.svs", spot_diameter_um=55, section="S1")  # doctest: +SKIP
    """
    from spatialdata import SpatialData
    from spatialdata.models import ShapesModel

    table, xy = _spot_table(counts, spots, genes=genes, layer=layer, coordinates=coordinates, section=section)
    pixel_size_um = _pixel_size(image, pixel_size_um, backend)
    if not (np.isfinite(spot_diameter_um) and spot_diameter_um > 0):
        msg = f"`spot_diameter_um` must be a positive number of micrometres; got {spot_diameter_um}."
        raise ValueError(msg)
    if pixel_size_um is None:
        msg = (
            f"Section {section!r}: the pixel size is unknown, so the spots' size in pixels is too. Pass "
            "`pixel_size_um=` (micrometres per full-resolution pixel). genar never guesses the pixel size."
        )
        raise ValueError(msg)
    systems = section_transformations(section, pixel_size_um)
    images = {}
    if image is not None:
        from .._geometry import image_levels
        from ._images import image_element

        image_key = f"{section}_image"
        cache = Path(image_cache) if image_cache is not None else _default_cache()
        images[image_key] = image_element(image, name=image_key, transformations=systems, cache=cache, backend=backend)
        height, width = image_levels(images[image_key])[0].shape[-2:]
        outside = (xy[:, 0] < 0) | (xy[:, 1] < 0) | (xy[:, 0] >= width) | (xy[:, 1] >= height)
        if outside.all():
            msg = (
                f"Section {section!r}: every spot lies outside the image ({width} × {height} px). The spot positions "
                "must be in full-resolution pixels of this image (x along its width, y along its height)."
            )
            raise ValueError(msg)
        if outside.any():
            logger.warning("section %r: %d spots lie outside the image", section, int(outside.sum()))
    diameter_px = spot_diameter_um / pixel_size_um
    shapes_key = f"{section}_spots"
    shapes = ShapesModel.parse(
        xy,
        geometry=0,
        radius=np.full(len(xy), diameter_px / 2),
        index=pd.Index(np.arange(len(xy)), name=_keys.INSTANCE),
        transformations=systems,
    )
    table.obs[_keys.REGION] = pd.Categorical([shapes_key] * table.n_obs)
    table.uns["spatial"] = {
        section: {
            "scalefactors": {
                _keys.MICRONS_PER_PIXEL: float(pixel_size_um),
                _keys.SPOT_DIAMETER_FULLRES: float(diameter_px),
                "spot_diameter_um": float(spot_diameter_um),
            },
            "metadata": dict(metadata or {}),
        }
    }
    return SpatialData(images=images, shapes={shapes_key: shapes}, tables={table_key: _parse_table(table)})


def _default_cache() -> Path:
    from .._files import cache_dir

    return cache_dir() / "images"


def _pixel_size(image: Any, pixel_size_um: float | None, backend: str) -> float | None:
    """The argument, else what a slide file or an element with a micrometre coordinate system records."""
    if pixel_size_um is not None:
        value = float(pixel_size_um)
        if not (np.isfinite(value) and value > 0):
            msg = f"`pixel_size_um` must be a positive number of micrometres; got {pixel_size_um}."
            raise ValueError(msg)
        return value
    if isinstance(image, str | os.PathLike):
        from ._images import SLIDE_SUFFIXES
        from ._wsi import open_slide, slide_pixel_size

        if Path(image).name.lower().endswith(SLIDE_SUFFIXES) and Path(image).is_file():
            return slide_pixel_size(open_slide(image, backend), image)
    return None


def _spot_table(
    counts: Any,
    spots: pd.DataFrame | np.ndarray,
    *,
    genes: Sequence[str] | None,
    layer: str | None,
    coordinates: tuple[str, str],
    section: str,
) -> tuple[AnnData, np.ndarray]:
    """The section's counts joined to its spots: a table (no annotation yet) and the spots' ``(x, y)``."""
    import anndata as ad

    X, ids, gene_names = _counts_matrix(counts, genes=genes, layer=layer)
    check_raw_counts(X, where=f"the counts of section {section!r}", argument="counts")
    if pd.Index(gene_names).has_duplicates:
        dups = pd.Index(gene_names)[pd.Index(gene_names).duplicated()].unique().tolist()
        msg = f"Section {section!r}: genes are listed more than once: {dups[:10]}. Make the gene names unique."
        raise ValueError(msg)
    frame = _spots_frame(spots, coordinates)
    if ids is not None and frame.index.name != "_position":
        ids, frame_ids = pd.Index(ids).astype(str), frame.index.astype(str)
        missing = ids.difference(frame_ids)
        if len(missing):
            msg = (
                f"Section {section!r}: {len(missing)} counted spots are not in the spot positions: "
                f"{missing[:10].tolist()}. Every spot with counts needs a position."
            )
            raise ValueError(msg)
        dropped = frame_ids.difference(ids)
        if len(dropped):
            logger.info("section %r: %d spot positions have no counts and are left out", section, len(dropped))
        frame.index = frame_ids
        frame = frame.loc[ids]
    elif len(frame) != X.shape[0]:
        msg = f"Section {section!r}: {X.shape[0]} rows of counts but {len(frame)} spot positions."
        raise ValueError(msg)
    xy = frame[list(coordinates)].to_numpy(float)
    if not np.isfinite(xy).all():
        msg = f"Section {section!r}: {int((~np.isfinite(xy)).any(axis=1).sum())} spots have no finite position."
        raise ValueError(msg)
    spot_ids = frame.index.astype(str) if frame.index.name != "_position" else pd.Index(map(str, range(len(frame))))
    obs = frame.drop(columns=list(coordinates)).reset_index(drop=True)
    obs.insert(0, _keys.SECTION, section)
    obs.insert(1, "spot", spot_ids.to_numpy())
    obs[_keys.INSTANCE] = np.arange(len(frame))
    obs.index = pd.Index([f"{section}_{s}" for s in spot_ids])
    table = ad.AnnData(
        X=sparse.csr_matrix(X, dtype=np.int32), obs=obs, var=pd.DataFrame(index=pd.Index(gene_names).astype(str))
    )
    table.obsm[_keys.SPATIAL] = xy
    return table, xy


def _counts_matrix(counts: Any, *, genes: Sequence[str] | None, layer: str | None):
    """``(matrix, spot ids or None, gene names)`` of any supported counts input."""
    from anndata import AnnData

    if isinstance(counts, AnnData):
        X = counts.X if layer is None else counts.layers[layer]
        return X, counts.obs_names, list(counts.var_names)
    if isinstance(counts, pd.DataFrame):
        return counts.to_numpy(), counts.index, list(map(str, counts.columns))
    if genes is None:
        msg = "`counts` is an array: pass the gene names as `genes=`."
        raise ValueError(msg)
    X = counts if sparse.issparse(counts) else np.asarray(counts)
    if X.ndim != 2 or X.shape[1] != len(genes):
        msg = f"`counts` has shape {X.shape}, but `genes` names {len(genes)} genes."
        raise ValueError(msg)
    return X, None, list(genes)


def _spots_frame(spots: pd.DataFrame | np.ndarray, coordinates: tuple[str, str]) -> pd.DataFrame:
    if isinstance(spots, pd.DataFrame):
        missing = [c for c in coordinates if c not in spots.columns]
        if missing:
            msg = f"`spots` lacks the coordinate columns {missing}; it has {list(spots.columns)} (see `coordinates`)."
            raise KeyError(msg)
        return spots.copy()
    xy = np.asarray(spots, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        msg = f"`spots` must be an (n, 2) array of (x, y) pixels or a DataFrame; got shape {xy.shape}."
        raise ValueError(msg)
    frame = pd.DataFrame(xy, columns=list(coordinates))
    frame.index.name = "_position"
    return frame


def _parse_table(table: AnnData) -> AnnData:
    from spatialdata.models import TableModel

    regions = list(table.obs[_keys.REGION].cat.categories)
    return TableModel.parse(table, region=regions, region_key=_keys.REGION, instance_key=_keys.INSTANCE)


def combine(
    sdatas: Sequence[SpatialData],
    *,
    genes: Literal["intersection", "union"] = "intersection",
    table_key: str = _keys.TABLE,
) -> SpatialData:
    """Join sections made by :func:`from_counts` (or genar's readers) into one SpatialData with one table.

    Parameters
    ----------
    sdatas
        One SpatialData per section (or several sections each); element names must not clash.
    genes
        ``'intersection'`` keeps the genes every section measured (the others are dropped, and logged); ``'union'``
        keeps every gene and counts 0 where a section's table lacks it (right where a table lists every gene
        detected on its array, as the ST count tables do; the genes each section lacked are recorded in
        ``uns['genar_missing_genes']`` and logged).
    table_key
        The table of each SpatialData, and of the result.

    Returns
    -------
    The joined :class:`~spatialdata.SpatialData`.
    """
    import anndata as ad
    from spatialdata import SpatialData

    if genes not in ("intersection", "union"):
        msg = f"`genes` must be 'intersection' or 'union'; got {genes!r}."
        raise ValueError(msg)
    tables = [s.tables[table_key] for s in sdatas]
    sections = [str(s) for t in tables for s in t.obs[_keys.SECTION].astype(str).unique()]
    if len(set(sections)) != len(sections):
        msg = f"Sections appear in more than one SpatialData: {sorted({s for s in sections if sections.count(s) > 1})}."
        raise ValueError(msg)
    images, shapes = {}, {}
    for s in sdatas:
        for store, items in ((images, s.images), (shapes, s.shapes)):
            clash = set(store) & set(items)
            if clash:
                msg = f"Element names {sorted(clash)} appear in more than one SpatialData; rename the sections."
                raise ValueError(msg)
            store.update(items)
    shared = tables[0].var_names
    for t in tables[1:]:
        shared = shared.intersection(t.var_names, sort=False)
    every = pd.Index(pd.unique(np.concatenate([t.var_names.to_numpy() for t in tables])))
    missing = {sec: every.difference(t.var_names).tolist() for sec, t in zip(sections, tables, strict=False)}
    if genes == "intersection":
        if len(every) > len(shared):
            logger.info(
                "Keeping the %d genes measured in all of %s; %d genes measured in only some sections are left out "
                "(genes='union' keeps them, with zero counts where a section lacks them).",
                len(shared),
                sections,
                len(every) - len(shared),
            )
        joined = ad.concat([t[:, shared] for t in tables], join="inner", merge="same", uns_merge="unique")
    else:
        if len(every) > len(shared):
            logger.info(
                "Keeping all %d genes of %s; %d are absent from some sections' tables and counted as 0 there "
                "(recorded in uns['genar_missing_genes']).",
                len(every),
                sections,
                len(every) - len(shared),
            )
        joined = ad.concat(tables, join="outer", merge="same", uns_merge="unique", fill_value=0)
        joined = joined[:, every].copy()
        joined.uns["genar_missing_genes"] = {s: g for s, g in missing.items() if g}
    joined.uns["spatial"] = {k: v for t in tables for k, v in t.uns.get("spatial", {}).items()}
    joined.obs[_keys.SECTION] = pd.Categorical(joined.obs[_keys.SECTION].astype(str), categories=sections)
    regions = [r for t in tables for r in t.obs[_keys.REGION].cat.categories]
    joined.obs[_keys.REGION] = pd.Categorical(joined.obs[_keys.REGION].astype(str), categories=regions)
    joined.X = sparse.csr_matrix(joined.X, dtype=np.int32)
    del joined.uns["spatialdata_attrs"]
    return SpatialData(images=images, shapes=shapes, tables={table_key: _parse_table(joined)})
