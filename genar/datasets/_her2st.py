"""Loader for the HER2-positive breast cancer ST sections of Andersson et al. (Nature Communications 12, 6012, 2021)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from .. import _keys
from .._logging import logger
from ._download import cache_dir, data_dir, fetch
from ._her2st_files import HER2ST_BASE_URL, HER2ST_SECTIONS
from ._images import multiscale_image_from_file

if TYPE_CHECKING:
    from spatialdata import SpatialData

#: Spot diameter and centre-to-centre distance of the original ST arrays, in micrometres.
ST_SPOT_DIAMETER_UM = 100.0
ST_SPOT_PITCH_UM = 200.0


def her2st(
    path: str | os.PathLike | None = None,
    sections: str | Sequence[str] | None = None,
    *,
    base_url: str | None = None,
    image_cache: str | os.PathLike | None = None,
) -> SpatialData:
    """Load paired H&E images and raw spot counts of the her2st study as one :class:`~spatialdata.SpatialData`.

    Four sections of two HER2-positive breast tumours (patients B and C) of Andersson et al. (Nature
    Communications 12, 6012, 2021), profiled with the original Spatial Transcriptomics arrays (100 µm spots on a
    200 µm grid).

    Parameters
    ----------
    path
        Folder holding the files as laid out in the public repository (``ST-cnts/``, ``ST-spotfiles/``,
        ``ST-imgs/``), or its parent. Default: ``$GENAR_DATA_DIR/her2st`` if ``GENAR_DATA_DIR`` is set,
        else the files are downloaded from GitHub ``almaan/her2st`` into the genar cache
        (``$GENAR_CACHE_DIR``, default ``~/.cache/genar``) and checked against their sha256.
    sections
        Sections to load, from ``'B4', 'C2', 'C3', 'C4'``. Default: all four.
    base_url
        Download address replacing the public repository (also ``$GENAR_HER2ST_URL``); only used when the
        files are downloaded.
    image_cache
        Folder for the zarr image pyramids decoded from the JPEGs (default: ``images/`` in the genar cache).
        Each JPEG is decoded once; later loads read the pyramid lazily.

    Returns
    -------
    One :class:`~spatialdata.SpatialData` with, for every section ``s``:

    ``images[f'{s}_image']``
        The H&E image as a multiscale element (full resolution and 2, 4, 8, 16× downsampled), read lazily.
    ``shapes[f'{s}_spots']``
        Circles at the spot centres, in full-resolution pixels, with the true 100 µm spot diameter as radius.
    Coordinate system ``s``
        Shared by the section's image and spots, in full-resolution pixels.

    and one table ``tables['table']`` annotating all spot elements (``obs['region']``,
    ``obs['instance_id']``) with

    ``X``
        Raw integer counts (:class:`scipy.sparse.csr_matrix`, int32). Only genes measured in *every* loaded
        section are kept (each section has its own gene list; about 14,100 genes are shared by all four), so a
        gene absent from one section never turns into zeros. The number of dropped genes is logged.
    ``obs['section']``, ``obs['array_row']``, ``obs['array_col']``
        Section id and position on the ST array.
    ``obsm['spatial']``
        Spot centres ``(x, y)`` in full-resolution image pixels.
    ``uns['spatial'][s]['scalefactors']``
        ``microns_per_pixel`` (derived from the 200 µm spot pitch by a least-squares fit of pixel to array
        coordinates, about 0.69) and ``spot_diameter_fullres`` (100 µm in pixels, about 145).

    Examples
    --------
    >>> import genar
    >>> sdata = genar.datasets.her2st(sections=["C2", "C3"])  # doctest: +SKIP
    >>> sdata.tables["table"]  # doctest: +SKIP
    """
    from spatialdata import SpatialData
    from spatialdata.models import ShapesModel, TableModel
    from spatialdata.transformations import Identity

    names = _check_sections(sections)
    root = _resolve_root(path, names, base_url=base_url)
    images_dir = Path(image_cache) if image_cache is not None else cache_dir() / "images"

    images, shapes, tables, spatial = {}, {}, [], {}
    for section in names:
        files = HER2ST_SECTIONS[section]
        counts = _read_counts(root / files.counts)
        spots = _read_spots(root / files.spots)
        table, geometry = _join_counts_and_spots(counts, spots, section=section)
        identity = {section: Identity()}
        shapes_key, image_key = f"{section}_spots", f"{section}_image"
        images[image_key] = multiscale_image_from_file(
            root / files.image,
            element_name=image_key,
            transformations=identity,
            cache_key=f"her2st-{section}-{files.image_sha256[:16]}",
            cache=images_dir,
        )
        shapes[shapes_key] = ShapesModel.parse(
            table.obsm["spatial"],
            geometry=0,
            radius=np.full(table.n_obs, geometry["spot_diameter_px"] / 2),
            index=pd.Index(np.arange(table.n_obs), name="instance_id"),
            transformations=identity,
        )
        table.obs[_keys.REGION] = shapes_key
        table.obs[_keys.INSTANCE] = np.arange(table.n_obs)
        spatial[section] = {
            "scalefactors": {
                _keys.MICRONS_PER_PIXEL: geometry["microns_per_pixel"],
                _keys.SPOT_DIAMETER_FULLRES: geometry["spot_diameter_px"],
                "spot_diameter_um": ST_SPOT_DIAMETER_UM,
                "spot_pitch_px": geometry["pitch_px"],
            },
            "metadata": {"source": "her2st", "image_file": files.image},
        }
        tables.append(table)

    adata = _concat_shared_genes(tables, names)
    adata.uns["spatial"] = spatial
    regions = [f"{s}_spots" for s in names]
    adata.obs[_keys.REGION] = pd.Categorical(adata.obs[_keys.REGION], categories=regions)
    table = TableModel.parse(adata, region=regions, region_key=_keys.REGION, instance_key=_keys.INSTANCE)
    return SpatialData(images=images, shapes=shapes, tables={_keys.TABLE: table})


def _check_sections(sections: str | Sequence[str] | None) -> list[str]:
    available = list(HER2ST_SECTIONS)
    if sections is None:
        return available
    names = [sections] if isinstance(sections, str) else list(sections)
    unknown = [s for s in names if s not in HER2ST_SECTIONS]
    if unknown or not names:
        msg = f"`sections` must name sections with an H&E image; got {names}. Available sections: {available}."
        raise ValueError(msg)
    if len(set(names)) != len(names):
        msg = f"`sections` lists a section twice: {names}."
        raise ValueError(msg)
    return names


def _missing_files(root: Path, names: Sequence[str]) -> list[str]:
    wanted = [f for s in names for f in HER2ST_SECTIONS[s][0::2]]
    return [f for f in wanted if not (root / f).is_file()]


def _resolve_root(path: str | os.PathLike | None, names: Sequence[str], *, base_url: str | None) -> Path:
    """Folder with the raw files: the given path, ``$GENAR_DATA_DIR/her2st``, or the download cache."""
    if path is None and (env := data_dir()) is not None:
        path, origin = env / "her2st", f"$GENAR_DATA_DIR ({env})"
    else:
        origin = "`path`"
    if path is not None:
        root = Path(path).expanduser()
        if not (root / "ST-cnts").is_dir() and (root / "her2st" / "ST-cnts").is_dir():
            root = root / "her2st"
        missing = _missing_files(root, names)
        if missing:
            msg = (
                f"The her2st files are not all in {root} (from {origin}); missing: {missing}. Point `path` (or "
                "GENAR_DATA_DIR) at a folder with ST-cnts/, ST-spotfiles/ and ST-imgs/, or leave both unset "
                "to download the files."
            )
            raise FileNotFoundError(msg)
        return root

    root = cache_dir() / "her2st"
    url = (base_url or os.environ.get("GENAR_HER2ST_URL") or HER2ST_BASE_URL).rstrip("/")
    for section in names:
        files = HER2ST_SECTIONS[section]
        for rel, sha in zip(files[0::2], files[1::2], strict=True):
            fetch(f"{url}/{rel}", root / rel, sha)
    return root


def _read_counts(path: Path) -> pd.DataFrame:
    """Spots × genes count table; the first column holds spot labels ``'<x>x<y>'``."""
    counts = pd.read_csv(path, sep="\t", index_col=0)
    if counts.columns.duplicated().any():
        dups = counts.columns[counts.columns.duplicated()].unique().tolist()
        msg = f"{path} lists genes more than once: {dups[:10]}. Deduplicate the gene names before loading."
        raise ValueError(msg)
    counts.index = counts.index.astype(str)
    return counts


def _read_spots(path: Path) -> pd.DataFrame:
    spots = pd.read_csv(path, sep="\t")
    needed = {"x", "y", "new_x", "new_y", "pixel_x", "pixel_y"}
    if missing := needed - set(spots.columns):
        msg = f"{path} lacks the columns {sorted(missing)}; found {list(spots.columns)}."
        raise ValueError(msg)
    spots.index = spots["x"].astype(int).astype(str) + "x" + spots["y"].astype(int).astype(str)
    return spots


def _fit_geometry(spots: pd.DataFrame) -> dict[str, float]:
    """Pixels per array step by least squares of pixel on array coordinates, and the derived pixel size."""
    slope_x = np.polyfit(spots["new_x"].to_numpy(float), spots["pixel_x"].to_numpy(float), 1)[0]
    slope_y = np.polyfit(spots["new_y"].to_numpy(float), spots["pixel_y"].to_numpy(float), 1)[0]
    pitch_px = float((abs(slope_x) + abs(slope_y)) / 2)
    microns_per_pixel = ST_SPOT_PITCH_UM / pitch_px
    return {
        "pitch_px": pitch_px,
        "microns_per_pixel": microns_per_pixel,
        "spot_diameter_px": ST_SPOT_DIAMETER_UM / microns_per_pixel,
    }


def _join_counts_and_spots(counts: pd.DataFrame, spots: pd.DataFrame, *, section: str) -> tuple[ad.AnnData, dict]:
    no_counts = spots.index.difference(counts.index)
    if len(no_counts):
        logger.info(
            "%s: %d spots of the spot file have no counts and are left out: %s",
            section,
            len(no_counts),
            list(no_counts),
        )
    no_position = counts.index.difference(spots.index)
    if len(no_position):
        msg = f"{section}: {len(no_position)} count rows have no spot position: {list(no_position)[:10]}."
        raise ValueError(msg)
    spots = spots.loc[counts.index]
    geometry = _fit_geometry(spots)
    values = counts.to_numpy()
    if values.min() < 0 or not np.issubdtype(values.dtype, np.integer):
        msg = f"{section}: the count table does not hold non-negative integers."
        raise ValueError(msg)
    obs = pd.DataFrame(
        {
            _keys.SECTION: section,
            "spot": counts.index.to_numpy(),
            "array_col": spots["x"].to_numpy(int),
            "array_row": spots["y"].to_numpy(int),
        },
        index=pd.Index([f"{section}_{label}" for label in counts.index]),
    )
    adata = ad.AnnData(X=sparse.csr_matrix(values.astype(np.int32)), obs=obs, var=pd.DataFrame(index=counts.columns))
    adata.obsm["spatial"] = spots[["pixel_x", "pixel_y"]].to_numpy(float)
    return adata, geometry


def _concat_shared_genes(tables: list[ad.AnnData], names: list[str]) -> ad.AnnData:
    shared = tables[0].var_names
    for t in tables[1:]:
        shared = shared.intersection(t.var_names, sort=False)
    union = set().union(*(t.var_names for t in tables))
    if len(union) > len(shared):
        logger.info(
            "Keeping the %d genes measured in all of %s; %d genes measured in only some sections are left out.",
            len(shared),
            names,
            len(union) - len(shared),
        )
    adata = ad.concat([t[:, shared] for t in tables], join="inner", merge="same")
    adata.obs[_keys.SECTION] = pd.Categorical(adata.obs[_keys.SECTION], categories=names)
    adata.X = sparse.csr_matrix(adata.X, dtype=np.int32)
    return adata
