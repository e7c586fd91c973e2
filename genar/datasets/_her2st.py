"""Loader for the HER2-positive breast cancer ST sections of Andersson et al. (Nature Communications 12, 6012, 2021)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .._files import cache_dir, data_dir
from .._logging import logger
from ..io import combine, from_counts
from ._download import fetch
from ._her2st_files import HER2ST_BASE_URL, HER2ST_SECTIONS, PAIRED_SECTIONS, RemoteFile

if TYPE_CHECKING:
    from spatialdata import SpatialData

#: Spot diameter and centre-to-centre distance of the original ST arrays, in micrometres.
ST_SPOT_DIAMETER_UM = 100.0
ST_SPOT_PITCH_UM = 200.0


def her2st(
    path: str | os.PathLike | None = None,
    sections: str | Sequence[str] | None = None,
    *,
    images: bool = True,
    genes: Literal["intersection", "union"] = "intersection",
    base_url: str | None = None,
    image_cache: str | os.PathLike | None = None,
) -> SpatialData:
    """Load H&E images and raw spot counts of the her2st study as one :class:`~spatialdata.SpatialData`.

    The study has 36 sections of eight HER2-positive breast tumours (patients A–H) of Andersson et al. (Nature
    Communications 12, 6012, 2021), profiled with the original Spatial Transcriptomics arrays (100 µm spots on a
    200 µm grid).

    Parameters
    ----------
    path
        Folder holding the files as laid out in the public repository (``ST-cnts/``, ``ST-spotfiles/``,
        ``ST-imgs/``), or its parent. Default: ``$GENAR_DATA_DIR/her2st`` if ``GENAR_DATA_DIR`` is set,
        else the files are downloaded from GitHub ``almaan/her2st`` into the genar cache
        (``$GENAR_CACHE_DIR``, default ``~/.cache/genar``) and checked against their sha256 or git blob id.
    sections
        Sections to load (``'A1'`` … ``'H3'``), or ``'all'`` for the 36. Default: the four paired sections the
        demo uses (B4, C2, C3, C4).
    images
        Load each section's H&E image. ``False`` loads expression-only sections (counts, spots and their
        coordinates, no image element): what needs no histology, e.g. the count prior of
        :func:`genar.tl.pretrain`. An image that is neither in ``path`` nor downloadable is an error that says so.
    genes
        Sections list different genes (each table lists the genes detected on its array). ``'intersection'``
        (default) keeps the genes of every loaded section; ``'union'`` keeps all, counting 0 where a section's
        table lacks a gene. Either way the choice is logged (see :func:`genar.io.combine`).
    base_url
        Download address replacing the public repository (also ``$GENAR_HER2ST_URL``); only used when the
        files are downloaded.
    image_cache
        Folder for the zarr image pyramids decoded from the JPEGs (default: ``images/`` in the genar cache).
        Each JPEG is decoded once per section; later loads read its pyramid lazily.

    Returns
    -------
    One :class:`~spatialdata.SpatialData` in genar's layout (:func:`genar.io.from_counts`), with, for every section
    ``s``:

    ``images[f'{s}_image']``
        The H&E image as a multiscale element (full resolution and 2, 4, 8, 16× downsampled), read lazily (not
        with ``images=False``).
    ``shapes[f'{s}_spots']``
        Circles at the spot centres, in full-resolution pixels, with the true 100 µm spot diameter.
    Coordinate systems ``s`` and ``f'{s}_um'``
        Shared by the section's image and spots: full-resolution pixels, and micrometres.

    and one table ``tables['table']`` annotating all spot elements (``obs['region']``,
    ``obs['instance_id']``) with

    ``X``
        Raw integer counts (:class:`scipy.sparse.csr_matrix`, int32) over the genes chosen by ``genes``.
    ``obs['section']``, ``obs['spot']``, ``obs['array_row']``, ``obs['array_col']``
        Section id, spot label and position on the ST array.
    ``obsm['spatial']``
        Spot centres ``(x, y)`` in full-resolution image pixels.
    ``uns['spatial'][s]['scalefactors']``
        ``microns_per_pixel`` (derived from the 200 µm spot pitch by a least-squares fit of pixel to array
        coordinates, about 0.69) and ``spot_diameter_fullres`` (100 µm in pixels, about 145).

    Examples
    --------
    >>> import genar
    >>> sdata = genar.datasets.her2st(sections=["C2", "C3"])  # doctest: +SKIP
    >>> prior = genar.datasets.her2st(sections="all", images=False)  # doctest: +SKIP
    """
    names = _check_sections(sections)
    root, fetcher = _source(path, base_url=base_url)
    cache = Path(image_cache) if image_cache is not None else cache_dir() / "images"
    parts = []
    for section in names:
        files = HER2ST_SECTIONS[section]
        counts = _read_counts(fetcher(files.counts, section))
        spots = _read_spots(fetcher(files.spots, section))
        image = _image(fetcher, files.image, section) if images else None
        geometry = _fit_geometry(spots.loc[spots.index.intersection(counts.index)])
        spots = spots.rename(columns={"pixel_x": "x_px", "pixel_y": "y_px", "x": "array_col", "y": "array_row"})
        parts.append(
            from_counts(
                counts,
                spots[["x_px", "y_px", "array_row", "array_col"]],
                image,
                pixel_size_um=geometry["microns_per_pixel"],
                spot_diameter_um=ST_SPOT_DIAMETER_UM,
                section=section,
                coordinates=("x_px", "y_px"),
                metadata={
                    "source": "her2st",
                    "counts_file": files.counts.path,
                    "image_file": files.image.path if image is not None else None,
                    "spot_pitch_px": geometry["pitch_px"],
                },
                image_cache=cache,
            )
        )
    return parts[0] if len(parts) == 1 else combine(parts, genes=genes)


def _check_sections(sections: str | Sequence[str] | None) -> list[str]:
    available = list(HER2ST_SECTIONS)
    if sections is None:
        return list(PAIRED_SECTIONS)
    if isinstance(sections, str) and sections == "all":
        return available
    names = [sections] if isinstance(sections, str) else list(sections)
    unknown = [s for s in names if s not in HER2ST_SECTIONS]
    if unknown or not names:
        msg = f"`sections` names unknown her2st sections {unknown or names}. Available sections: {available}."
        raise ValueError(msg)
    if len(set(names)) != len(names):
        msg = f"`sections` lists a section twice: {names}."
        raise ValueError(msg)
    return names


def _source(path: str | os.PathLike | None, *, base_url: str | None):
    """The folder to read from and a function ``(RemoteFile, section) -> local path`` that finds or fetches a file.

    With a folder (``path`` or ``$GENAR_DATA_DIR/her2st``), files are read from it and a missing one is an error
    that lists it; without, each file is downloaded into the cache and checked against its recorded digest.
    """
    origin = "`path`"
    if path is None and (env := data_dir()) is not None:
        path, origin = env / "her2st", f"$GENAR_DATA_DIR ({env})"
    if path is not None:
        root = Path(path).expanduser()
        if not (root / "ST-cnts").is_dir() and (root / "her2st" / "ST-cnts").is_dir():
            root = root / "her2st"

        def local(file: RemoteFile, section: str) -> Path:
            target = root / file.path
            if not target.is_file():
                msg = (
                    f"The her2st file {file.path} of section {section} is not in {root} (from {origin}). Point `path` "
                    "(or GENAR_DATA_DIR) at a folder with ST-cnts/, ST-spotfiles/ and ST-imgs/, or leave both unset "
                    "to download the files."
                )
                raise FileNotFoundError(msg)
            return target

        return root, local

    root = cache_dir() / "her2st"
    url = (base_url or os.environ.get("GENAR_HER2ST_URL") or HER2ST_BASE_URL).rstrip("/")

    def download(file: RemoteFile, section: str) -> Path:
        return fetch(f"{url}/{file.path}", root / file.path, file.sha256, git_blob=file.git_blob_sha1)

    return root, download


def _image(fetcher, file: RemoteFile, section: str) -> Path:
    """The section's image file, or an error that says it can be neither found nor downloaded."""
    try:
        return fetcher(file, section)
    except (FileNotFoundError, OSError) as err:
        msg = (
            f"The H&E image of section {section} ({file.path}) is neither here nor downloadable: {err} Load the "
            "section without its image (`images=False`) for its counts and spots, or put the file in place."
        )
        raise FileNotFoundError(msg) from err


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
    logger.debug("her2st: %g px per array step, %g µm per pixel", pitch_px, microns_per_pixel)
    return {"pitch_px": pitch_px, "microns_per_pixel": microns_per_pixel}
