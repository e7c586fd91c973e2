"""genar.pp.make_spots: pseudo-spots over the tissue of an H&E image that has no spatial transcriptomics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .. import _keys
from .._copy import supports_copy
from .._docs import doc_params
from .._geometry import check_rgb_uint8, choose_level, coordinate_systems, image_levels, resolve_pixel_size
from .._logging import logger
from .._validate import check_key, check_overwrite
from ._spatial_images import add_spatial_images
from ._tissue import detect_tissue

if TYPE_CHECKING:
    from anndata import AnnData
    from geopandas import GeoDataFrame
    from spatialdata import SpatialData

Technology = Literal["st", "visium", "visium_hd_8um", "visium_hd_16um"]
Grid = Literal["hex", "square"]
Shape = Literal["circle", "square"]


@dataclass(frozen=True)
class SpotLayout:
    """Geometry of a spatial transcriptomics technology's capture areas."""

    diameter_um: float
    spacing_um: float
    grid: Grid
    shape: Shape


#: Capture geometries that :func:`make_spots` can imitate (``technology=``).
TECHNOLOGIES = {
    # legacy Spatial Transcriptomics (the her2st data): 100 µm spots, 200 µm apart centre to centre
    "st": SpotLayout(100.0, 200.0, "square", "circle"),
    # 10x Visium: 55 µm spots, 100 µm apart on a hexagonal lattice
    "visium": SpotLayout(55.0, 100.0, "hex", "circle"),
    # 10x Visium HD: square bins tiling the tissue
    "visium_hd_8um": SpotLayout(8.0, 8.0, "square", "square"),
    "visium_hd_16um": SpotLayout(16.0, 16.0, "square", "square"),
}

#: Largest edge, in pixels, of the image level on which tissue is detected.
TISSUE_LEVEL_MAX_PX = 2048


@supports_copy
@doc_params
def make_spots(
    sdata: SpatialData,
    image_key: str,
    *,
    technology: Technology = "st",
    diameter_um: float | None = None,
    spacing_um: float | None = None,
    grid: Grid | None = None,
    shape: Shape | None = None,
    pixel_size_um: float | None = None,
    micron_coordinate_system: str | None = None,
    tissue_mask: np.ndarray | None = None,
    min_tissue_fraction: float = 0.5,
    section: str | None = None,
    table_added: str = _keys.PANEL_TABLE,
    shapes_added: str | None = None,
    labels_added: str | None = None,
    overwrite: bool = False,
) -> None:
    """Lay pseudo-spots over the tissue of an H&E image, so genar can predict expression where nothing was measured.

    Tissue is detected on a low-resolution level of the image (Otsu's threshold on the saturation, then closing,
    hole filling and removal of small debris) unless ``tissue_mask`` is given. Spots are laid on a lattice in
    micrometres with the geometry of ``technology`` (or the explicit ``diameter_um``, ``spacing_um``, ``grid`` and
    ``shape``), and every spot whose disc (or square) lies at least ``min_tissue_fraction`` on tissue is kept. Use
    the geometry of the data the model was trained on: a model trained on 100 µm ST spots expects 100 µm spots.

    Parameters
    ----------
    sdata
        SpatialData holding the image.
    image_key
        The H&E image (RGB uint8, single- or multiscale).
    technology
        Geometry preset: ``"st"`` (100 µm circles, 200 µm pitch, square lattice: the her2st data), ``"visium"``
        (55 µm circles, 100 µm pitch, hexagonal), ``"visium_hd_8um"`` or ``"visium_hd_16um"`` (square bins that tile
        the tissue).
    diameter_um, spacing_um, grid, shape
        Override the preset: spot diameter (or bin edge), centre-to-centre distance, ``"hex"`` or ``"square"``
        lattice, ``"circle"`` or ``"square"`` spots.
    pixel_size_um
        Micrometres per full-resolution pixel of the image.
    micron_coordinate_system
        Instead of ``pixel_size_um``: a coordinate system of the image whose unit is the micrometre; the pixel size
        is read from the image's transformation into it (its scale must be the same along x and y). Default: the
        image's one coordinate system named ``'<section>_um'``, as genar's readers (:func:`genar.io.read_wsi`,
        :func:`genar.io.from_counts`) make it from the slide's metadata.
    tissue_mask
        Boolean mask of the tissue, at any resolution with the image's aspect ratio (it is resampled to the image);
        default: detected.
    min_tissue_fraction
        Share of a spot's area that must be tissue for the spot to be kept.
    section
        Name of the section (``obs['section']``); default ``image_key``.
    table_added
        The new table (default ``"genar"``, the panel table that :func:`extract_patches`, :func:`embed_patches` and
        :func:`genar.tl.predict` read; prediction adds the model's genes to it).
    shapes_added
        The new shapes element; default ``f"{section}_pseudo_spots"``.
    labels_added
        The new labels element with the tissue mask; default ``f"{section}_tissue"``.
    {overwrite}

    Returns
    -------
    Nothing; adds to ``sdata``

    ``shapes[shapes_added]``
        The spots (circles with a ``radius``, or square polygons), in the image's pixels and with the image's
        transformations, so they share its coordinate systems.
    ``labels[labels_added]``
        The tissue mask the spots were kept by (1 tissue, 0 background) at the resolution it was found, with the
        image's transformations after the scaling to full resolution, so napari-spatialdata and spatialdata-plot
        draw it over the image.
    ``tables[table_added]``
        One row per spot and no genes yet: ``obs['section']``, ``obs['region']``, ``obs['instance_id']``,
        ``obs['array_row']``/``obs['array_col']`` (lattice position), ``obs['tissue_fraction']``,
        ``obsm['spatial']`` (centres in full-resolution pixels), the pixel size and spot diameter in
        ``uns['spatial'][section]['scalefactors']``, a ``'hires'`` image in ``uns['spatial'][section]['images']``
        for scanpy and squidpy (as :func:`select_genes` writes it), and the parameters and the low-resolution tissue
        mask in ``uns['genar_spots']``.

    Examples
    --------
    >>> genar.pp.make_spots(sdata, "slide_image", pixel_size_um=0.5)  # doctest: +SKIP
    >>> genar.pp.extract_patches(sdata)  # doctest: +SKIP
    >>> genar.pp.embed_patches(sdata, encoder=model.encoder["name"])  # doctest: +SKIP
    >>> genar.tl.predict(sdata, model)  # doctest: +SKIP
    """
    check_key(sdata.images, image_key, where="sdata.images")
    layout = _layout(technology, diameter_um, spacing_um, grid, shape)
    if not 0 < min_tissue_fraction <= 1:
        msg = f"`min_tissue_fraction` must lie in (0, 1]; got {min_tissue_fraction}."
        raise ValueError(msg)
    section = image_key if section is None else str(section)
    shapes_added = f"{section}_pseudo_spots" if shapes_added is None else shapes_added
    labels_added = f"{section}_tissue" if labels_added is None else labels_added
    check_overwrite(
        table_added in sdata.tables, f"sdata.tables[{table_added!r}]", overwrite=overwrite, rename="table_added"
    )
    check_overwrite(
        shapes_added in sdata.shapes, f"sdata.shapes[{shapes_added!r}]", overwrite=overwrite, rename="shapes_added"
    )
    check_overwrite(
        labels_added in sdata.labels, f"sdata.labels[{labels_added!r}]", overwrite=overwrite, rename="labels_added"
    )

    image = sdata.images[image_key]
    levels = image_levels(image)
    check_rgb_uint8(levels[0], image_key)
    height, width = (int(n) for n in levels[0].shape[-2:])
    if pixel_size_um is not None and micron_coordinate_system is not None:
        msg = "Pass either `pixel_size_um` or `micron_coordinate_system`, not both."
        raise ValueError(msg)
    if pixel_size_um is None and micron_coordinate_system is None:
        micron_coordinate_system = _micron_system(image, image_key)
    mpp = resolve_pixel_size(
        f"image {image_key!r}",
        given=pixel_size_um,
        micron_system=None if micron_coordinate_system is None else (image, micron_coordinate_system),
        ways=("`pixel_size_um=`", "`micron_coordinate_system=` (a coordinate system of the image in micrometres)"),
    )

    low = levels[choose_level(levels, max_edge_px=TISSUE_LEVEL_MAX_PX)]
    factor = width / low.shape[-1]  # full-resolution pixels per low-resolution pixel
    mask, source = _tissue(low, image_key, layout, mpp, factor, tissue_mask, aspect=width / height)
    centres_um, rows, cols = _lattice(width * mpp, height * mpp, layout)
    centres_px = centres_um / mpp
    fraction = _tissue_fraction(mask, centres_px / factor, layout.diameter_um / mpp / factor, layout.shape)
    keep = fraction >= min_tissue_fraction
    if not keep.any():
        msg = (
            f"No {layout.diameter_um:g} µm spot lies at least {min_tissue_fraction:.0%} on tissue in image "
            f"{image_key!r}; lower `min_tissue_fraction` or check `pixel_size_um` ({mpp:g} µm per pixel)."
        )
        raise ValueError(msg)
    centres_px, rows, cols, fraction = centres_px[keep], rows[keep], cols[keep], fraction[keep]
    shapes = _spot_shapes(image, centres_px, layout.diameter_um / mpp, layout.shape)
    params = {
        "image_key": image_key,
        "technology": technology,
        "diameter_um": layout.diameter_um,
        "spacing_um": layout.spacing_um,
        "grid": layout.grid,
        "shape": layout.shape,
        "microns_per_pixel": mpp,
        "min_tissue_fraction": float(min_tissue_fraction),
        "tissue_mask": source,
        "tissue_mask_downsampling": float(factor),
    }
    table = _spot_table(section, shapes_added, centres_px, rows, cols, fraction, layout, mpp, params, mask)
    labels = _tissue_labels(image, mask, (height / mask.shape[0], width / mask.shape[1]))
    for key, store in ((shapes_added, sdata.shapes), (labels_added, sdata.labels), (table_added, sdata.tables)):
        if key in store:
            del store[key]
    sdata.shapes[shapes_added] = shapes
    sdata.labels[labels_added] = labels
    add_spatial_images(sdata, table, [section])
    sdata.tables[table_added] = table
    logger.info(
        "added %d %g µm pseudo-spots (%s lattice, %g µm pitch) over %.1f%% tissue of %r: shapes %r, table %r",
        len(centres_px),
        layout.diameter_um,
        layout.grid,
        layout.spacing_um,
        100 * mask.mean(),
        image_key,
        shapes_added,
        table_added,
    )


def _tissue(low, image_key: str, layout: SpotLayout, mpp: float, factor: float, tissue_mask, *, aspect: float):
    """The tissue mask on the low-resolution level ``low`` (detected, or the given one resampled) and its source."""
    if tissue_mask is None:
        rgb = np.moveaxis(np.asarray(low.data[:3]), 0, -1)
        spot_px = layout.diameter_um / mpp / factor
        mask = detect_tissue(rgb, min_area_px=max(int(4 * spot_px**2), 16), smooth_px=max(int(spot_px / 2), 2))
        source = "detected"
    else:
        mask = _resample_mask(np.asarray(tissue_mask), low.shape[-2:], aspect)
        source = "given"
    if not mask.any():
        msg = (
            f"No tissue found in image {image_key!r}"
            + (" (the mask given is empty)." if source == "given" else ": the image looks uniform.")
            + " Pass `tissue_mask=` (a boolean array) to choose the area."
        )
        raise ValueError(msg)
    return mask, source


def _tissue_labels(image, mask: np.ndarray, scale_yx: tuple[float, float]):
    """The tissue mask as a labels element: scaled to full-resolution pixels, then the image's transformations."""
    from spatialdata.models import Labels2DModel
    from spatialdata.transformations import Scale, Sequence, get_transformation

    to_full = Scale(list(scale_yx), axes=("y", "x"))
    transformations = {
        system: Sequence([to_full, transformation])
        for system, transformation in get_transformation(image, get_all=True).items()
    }
    return Labels2DModel.parse(mask.astype(np.uint8), dims=("y", "x"), transformations=transformations)


def _spot_shapes(image, centres_px: np.ndarray, diameter_px: float, shape: Shape) -> GeoDataFrame:
    """Circles (with a radius) or square polygons at ``centres_px``, carrying the image's transformations."""
    from spatialdata.models import ShapesModel
    from spatialdata.transformations import get_transformation

    n = len(centres_px)
    index = pd.RangeIndex(n, name=None)
    transformations = get_transformation(image, get_all=True)
    if shape == "circle":
        return ShapesModel.parse(
            centres_px, geometry=0, radius=np.full(n, diameter_px / 2), index=index, transformations=transformations
        )
    import geopandas as gpd
    from shapely import box

    half = diameter_px / 2
    squares = box(centres_px[:, 0] - half, centres_px[:, 1] - half, centres_px[:, 0] + half, centres_px[:, 1] + half)
    return ShapesModel.parse(gpd.GeoDataFrame(geometry=squares, index=index), transformations=transformations)


def _spot_table(
    section: str,
    shapes_key: str,
    centres_px: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    fraction: np.ndarray,
    layout: SpotLayout,
    mpp: float,
    params: dict,
    mask: np.ndarray,
) -> AnnData:
    """The table of the pseudo-spots: no genes, one row per spot annotating ``shapes_key``."""
    import anndata as ad
    from spatialdata.models import TableModel

    n = len(centres_px)
    obs = pd.DataFrame(
        {
            _keys.SECTION: pd.Categorical([section] * n),
            _keys.REGION: pd.Categorical([shapes_key] * n),
            _keys.INSTANCE: np.arange(n),
            "array_row": rows,
            "array_col": cols,
            "tissue_fraction": fraction.astype(np.float32),
        },
        index=pd.Index([f"{section}_{i}" for i in range(n)]),
    )
    scalefactors = {_keys.MICRONS_PER_PIXEL: mpp, _keys.SPOT_DIAMETER_FULLRES: float(layout.diameter_um / mpp)}
    table = ad.AnnData(
        obs=obs,
        obsm={_keys.SPATIAL: centres_px.astype(np.float64)},
        uns={
            "spatial": {section: {"scalefactors": scalefactors}},
            _keys.SPOTS: {"params": params, "tissue_mask": mask},
        },
    )
    return TableModel.parse(table, region=shapes_key, region_key=_keys.REGION, instance_key=_keys.INSTANCE)


def _micron_system(image, image_key: str) -> str | None:
    """The image's one coordinate system in micrometres by genar's naming (``'<section>_um'``), or None."""
    systems = sorted(cs for cs in coordinate_systems(image) if cs.endswith(_keys.MICRON_SYSTEM_SUFFIX))
    if len(systems) == 1:
        logger.info("image %r: pixel size from its micrometre coordinate system %r", image_key, systems[0])
        return systems[0]
    return None


def _layout(technology, diameter_um, spacing_um, grid, shape) -> SpotLayout:
    if technology not in TECHNOLOGIES:
        msg = f"Unknown `technology`={technology!r}; choose one of {sorted(TECHNOLOGIES)}, or set the geometry."
        raise ValueError(msg)
    base = TECHNOLOGIES[technology]
    layout = SpotLayout(
        float(base.diameter_um if diameter_um is None else diameter_um),
        float(base.spacing_um if spacing_um is None else spacing_um),
        base.grid if grid is None else grid,
        base.shape if shape is None else shape,
    )
    for name, value in (("diameter_um", layout.diameter_um), ("spacing_um", layout.spacing_um)):
        if not (np.isfinite(value) and value > 0):
            msg = f"`{name}` must be a positive number of micrometres; got {value}."
            raise ValueError(msg)
    if layout.grid not in ("hex", "square"):
        msg = f"`grid` must be 'hex' or 'square'; got {layout.grid!r}."
        raise ValueError(msg)
    if layout.shape not in ("circle", "square"):
        msg = f"`shape` must be 'circle' or 'square'; got {layout.shape!r}."
        raise ValueError(msg)
    return layout


def _lattice(width_um: float, height_um: float, layout: SpotLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres ``(x, y)`` in µm of a lattice covering the image, with their row and column indices."""
    pitch = layout.spacing_um
    row_step = pitch * np.sqrt(3) / 2 if layout.grid == "hex" else pitch
    n_rows = int(np.floor((height_um - layout.diameter_um) / row_step)) + 1
    n_cols = int(np.floor((width_um - layout.diameter_um) / pitch)) + 1
    if n_rows < 1 or n_cols < 1:
        msg = f"The image ({width_um:g} × {height_um:g} µm) is smaller than one {layout.diameter_um:g} µm spot."
        raise ValueError(msg)
    rows, cols = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    x = layout.diameter_um / 2 + cols * pitch + (pitch / 2 if layout.grid == "hex" else 0) * (rows % 2)
    y = layout.diameter_um / 2 + rows * row_step
    inside = x + layout.diameter_um / 2 <= width_um + 1e-9
    return np.column_stack([x[inside], y[inside]]), rows[inside], cols[inside]


def _tissue_fraction(mask: np.ndarray, centres: np.ndarray, diameter: float, shape: str) -> np.ndarray:
    """Share of each spot's area on tissue, sampled on a 7 × 7 grid of points over the spot (mask pixels)."""
    offsets = (np.arange(7) - 3) / 7 * diameter
    dx, dy = np.meshgrid(offsets, offsets)
    if shape == "circle":
        inside = dx**2 + dy**2 <= (diameter / 2) ** 2
        dx, dy = dx[inside], dy[inside]
    out = np.empty(len(centres))
    for s in range(0, len(centres), 100_000):  # Visium HD lays millions of bins: bound the temporaries
        xs = np.clip((centres[s : s + 100_000, :1] + dx.ravel()).astype(int), 0, mask.shape[1] - 1)
        ys = np.clip((centres[s : s + 100_000, 1:] + dy.ravel()).astype(int), 0, mask.shape[0] - 1)
        out[s : s + 100_000] = mask[ys, xs].mean(axis=1)
    return out


def _resample_mask(mask: np.ndarray, shape: tuple[int, int], aspect: float) -> np.ndarray:
    """A boolean mask resampled (nearest) to ``shape``, after checking it has the image's aspect ratio."""
    if mask.ndim != 2 or mask.dtype != bool:
        msg = f"`tissue_mask` must be a 2-D boolean array; got {mask.ndim} dimensions of {mask.dtype}."
        raise ValueError(msg)
    if not np.isclose(mask.shape[1] / mask.shape[0], aspect, rtol=0.02):
        msg = (
            f"`tissue_mask` has shape {mask.shape} (aspect {mask.shape[1] / mask.shape[0]:.3f}); the image's aspect "
            f"is {aspect:.3f}. Give a mask of the whole image, at any resolution."
        )
        raise ValueError(msg)
    ys = (np.arange(shape[0]) * mask.shape[0] / shape[0]).astype(int)
    xs = (np.arange(shape[1]) * mask.shape[1] / shape[1]).astype(int)
    return mask[np.ix_(ys, xs)]
