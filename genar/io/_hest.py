"""HEST-1k: the collection the field benchmarks on, read from a local copy into genar's layout."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .._logging import logger
from ._layout import combine, from_counts

if TYPE_CHECKING:
    from spatialdata import SpatialData

#: Spot diameters (µm) by ``st_technology``, for metadata without ``spot_diameter``.
SPOT_DIAMETER_UM = {"Visium": 55.0, "Spatial Transcriptomics": 100.0, "Xenium": 55.0, "Visium HD": 16.0}


def read_hest(
    root: str | os.PathLike,
    sample_ids: str | Sequence[str] | None = None,
    *,
    genes: Literal["intersection", "union"] = "intersection",
    cells: bool = False,
    backend: Literal["tiffslide", "openslide"] = "tiffslide",
) -> SpatialData:
    """Read HEST-1k samples from a local copy of its layout into genar's SpatialData layout.

    The layout of HEST-1k (Jaume et al., 2024; ``huggingface.co/datasets/MahmoodLab/hest``): for every sample id,
    ``st/<id>.h5ad`` (raw counts, spot centres in ``obs['pxl_col_in_fullres']``/``['pxl_row_in_fullres']``),
    ``wsis/<id>.tif`` (the pyramidal whole-slide image) and ``metadata/<id>.json`` (pixel size, spot diameter,
    technology, organ ...); ``cellvit_seg/`` and ``patches/`` are optional. Each sample becomes one section named by
    its id: the slide read lazily with its own pyramid (:func:`read_wsi`), its spots as circles of their true
    diameter, its counts in the shared table, and the metadata in ``uns['spatial'][id]['metadata']``.

    Parameters
    ----------
    root
        The HEST folder (holding ``st/``, ``wsis/``, ``metadata/``).
    sample_ids
        Samples to read (e.g. ``["TENX95", "NCBI785"]``); default: every ``st/*.h5ad``.
    genes
        How to join the samples' genes (:func:`genar.io.combine`): ``'intersection'`` or ``'union'``.
    cells
        Also read the CellViT nuclei (``cellvit_seg/<id>_cellvit_seg.parquet`` or ``.geojson``) into
        ``shapes[f"{id}_cells"]`` (needs geopandas' parquet or GeoJSON reader).
    backend
        Slide reader (see :func:`genar.io.read_wsi`).

    Returns
    -------
    A :class:`~spatialdata.SpatialData` with one section per sample, ready for :func:`genar.pp.select_genes`.

    Examples
    --------
    >>> sdata = genar.io.read_hest("hest_data", ["TENX95", "TENX99"])  # doctest: +SKIP
    """
    root = Path(root)
    if not (root / "st").is_dir():
        msg = f"{str(root)!r} is not a HEST folder: it has no st/ (HEST-1k holds st/, wsis/ and metadata/)."
        raise FileNotFoundError(msg)
    if sample_ids is None:
        ids = sorted(p.name[: -len(".h5ad")] for p in (root / "st").glob("*.h5ad"))
        if not ids:
            msg = f"{str(root / 'st')!r} holds no .h5ad file."
            raise FileNotFoundError(msg)
    else:
        ids = [sample_ids] if isinstance(sample_ids, str) else list(sample_ids)
    missing = [
        str(p.relative_to(root))
        for i in ids
        for p in (root / "st" / f"{i}.h5ad", root / "wsis" / f"{i}.tif", root / "metadata" / f"{i}.json")
        if not p.is_file()
    ]
    if missing:
        msg = (
            f"The HEST folder {str(root)!r} lacks {missing}. Download the samples' st/, wsis/ and metadata/ files "
            "(huggingface.co/datasets/MahmoodLab/hest) or choose other `sample_ids`."
        )
        raise FileNotFoundError(msg)
    parts = [_sample(root, i, cells=cells, backend=backend) for i in ids]
    return parts[0] if len(parts) == 1 else combine(parts, genes=genes)


def _sample(root: Path, sample_id: str, *, cells: bool, backend: str) -> SpatialData:
    import anndata as ad

    meta = json.loads((root / "metadata" / f"{sample_id}.json").read_text())
    adata = ad.read_h5ad(root / "st" / f"{sample_id}.h5ad")
    if "in_tissue" in adata.obs:
        under = adata.obs["in_tissue"].astype(bool).to_numpy()
        if not under.all():
            logger.info("HEST %s: %d spots are not under tissue and are left out", sample_id, int((~under).sum()))
            adata = adata[under].copy()
    spots = _spot_positions(adata, sample_id)
    pixel_size = meta.get("pixel_size_um_estimated") or meta.get("pixel_size_um_embedded")
    if pixel_size is None:
        msg = (
            f"metadata/{sample_id}.json records no pixel size (pixel_size_um_estimated or pixel_size_um_embedded): the "
            "sample cannot be placed in micrometres."
        )
        raise ValueError(msg)
    diameter = meta.get("spot_diameter") or SPOT_DIAMETER_UM.get(meta.get("st_technology", ""))
    if diameter is None:
        msg = (
            f"metadata/{sample_id}.json gives neither spot_diameter nor a known st_technology "
            f"({meta.get('st_technology')!r}; known: {sorted(SPOT_DIAMETER_UM)})."
        )
        raise ValueError(msg)
    sdata = from_counts(
        adata,
        spots,
        root / "wsis" / f"{sample_id}.tif",
        pixel_size_um=float(pixel_size),
        spot_diameter_um=float(diameter),
        section=sample_id,
        coordinates=("x_px", "y_px"),
        metadata={"source": "HEST-1k", **{k: v for k, v in meta.items() if _plain(v)}},
        backend=backend,
    )
    if cells:
        sdata.shapes[f"{sample_id}_cells"] = _cells(root, sample_id, sdata)
    return sdata


def _spot_positions(adata, sample_id: str) -> pd.DataFrame:
    """Spot centres in full-resolution pixels, from HEST's obs columns (else ``obsm['spatial']``)."""
    obs = adata.obs
    if {"pxl_col_in_fullres", "pxl_row_in_fullres"} <= set(obs.columns):
        xy = obs[["pxl_col_in_fullres", "pxl_row_in_fullres"]].to_numpy(float)
    elif "spatial" in adata.obsm:
        xy = np.asarray(adata.obsm["spatial"], dtype=float)[:, :2]
    else:
        msg = (
            f"st/{sample_id}.h5ad has no spot positions: neither obs['pxl_col_in_fullres'/'pxl_row_in_fullres'] nor "
            "obsm['spatial']."
        )
        raise KeyError(msg)
    frame = pd.DataFrame(xy, index=adata.obs_names, columns=["x_px", "y_px"])
    for column in ("array_row", "array_col"):
        if column in obs:
            frame[column] = obs[column].to_numpy()
    return frame.rename_axis(None)


def _plain(value) -> bool:
    """Whether a metadata value can be stored in ``uns`` and written to zarr as it is."""
    return value is None or isinstance(value, str | int | float | bool)


def _cells(root: Path, sample_id: str, sdata: SpatialData):
    """CellViT nuclei of a sample as a shapes element in the slide's coordinate systems."""
    import geopandas as gpd
    from spatialdata.models import ShapesModel
    from spatialdata.transformations import get_transformation

    folder = root / "cellvit_seg"
    parquet, geojson = folder / f"{sample_id}_cellvit_seg.parquet", folder / f"{sample_id}_cellvit_seg.geojson"
    if parquet.is_file():
        frame = gpd.read_parquet(parquet)
    elif geojson.is_file():
        frame = gpd.read_file(geojson)
    else:
        msg = f"`cells=True`, but {str(folder)!r} holds neither {parquet.name} nor {geojson.name}."
        raise FileNotFoundError(msg)
    transformations = get_transformation(sdata.images[f"{sample_id}_image"], get_all=True)
    frame = frame.reset_index(drop=True)
    return ShapesModel.parse(gpd.GeoDataFrame(frame, geometry=frame.geometry), transformations=transformations)
