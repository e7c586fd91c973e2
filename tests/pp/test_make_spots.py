"""Pseudo-spots on H&E images without transcriptomics: tissue detection, lattices, geometry presets, errors."""

from __future__ import annotations

import numpy as np
import pytest
from spatialdata import SpatialData
from spatialdata.models import Image2DModel
from spatialdata.transformations import Identity, Scale, get_transformation

import genar
from genar.pp._tissue import detect_tissue


def tissue_slide(size: int = 600, radius: int = 200, *, transformations=None) -> SpatialData:
    """A white slide (faint grey noise) with one pink-purple disc of tissue centred in it."""
    rng = np.random.default_rng(0)
    img = np.full((3, size, size), 240, dtype=np.int16) + rng.integers(-6, 7, size=(3, size, size))
    yy, xx = np.mgrid[0:size, 0:size]
    disc = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 <= radius**2
    for c, value in enumerate((200, 110, 190)):  # eosin/haematoxylin-like colour
        img[c][disc] = value + rng.integers(-20, 21, size=int(disc.sum()))
    image = Image2DModel.parse(
        img.clip(0, 255).astype(np.uint8),
        dims=("c", "y", "x"),
        scale_factors=[2],
        transformations=transformations or {"slide": Identity()},
    )
    return SpatialData(images={"he": image})


def test_tissue_detection_finds_the_stained_disc_and_ignores_debris():
    sdata = tissue_slide()
    rgb = np.moveaxis(np.asarray(sdata.images["he"]["scale0"]["image"]), 0, -1).copy()
    rgb[20:24, 20:24] = (120, 40, 120)  # a speck of dust: stained but tiny
    mask = detect_tissue(rgb, min_area_px=200, smooth_px=4)
    yy, xx = np.mgrid[0:600, 0:600]
    disc = (xx - 300) ** 2 + (yy - 300) ** 2 <= 200**2
    assert (mask == disc).mean() > 0.99
    assert not mask[:40, :40].any()


@pytest.mark.parametrize(("technology", "grid", "shape"), [("st", "square", "circle"), ("visium", "hex", "circle")])
def test_spots_cover_the_tissue_on_the_requested_lattice(technology, grid, shape):
    sdata = tissue_slide()
    genar.pp.make_spots(sdata, "he", technology=technology, pixel_size_um=2.0, section="slide1")
    table = sdata.tables["genar"]
    layout = genar.pp.TECHNOLOGIES[technology]
    xy = table.obsm["spatial"]
    # every spot lies (at least half) on the disc of 400 µm radius at 2 µm per pixel
    assert (np.hypot(*(xy - 300).T) <= 200 + layout.diameter_um / 2 / 2.0 / 2).all()
    # spots fill the disc: their number is the disc's area over the lattice cell's area, give or take the rim
    cell_um2 = layout.spacing_um**2 * (np.sqrt(3) / 2 if grid == "hex" else 1)
    expected = np.pi * 400**2 / cell_um2
    assert abs(table.n_obs - expected) < 0.2 * expected
    # nearest neighbours are one pitch apart
    d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)) * 2.0
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(np.median(d.min(axis=1)), layout.spacing_um, rtol=1e-6)
    shapes = sdata.shapes["slide1_pseudo_spots"]
    np.testing.assert_allclose(shapes["radius"], layout.diameter_um / 2 / 2.0)
    assert table.obs["section"].unique().tolist() == ["slide1"]
    assert table.obs["region"].unique().tolist() == ["slide1_pseudo_spots"]
    assert table.uns["spatial"]["slide1"]["scalefactors"]["microns_per_pixel"] == 2.0
    assert set(get_transformation(shapes, get_all=True)) == {"slide"}
    assert table.n_vars == 0 and (table.obs["tissue_fraction"] >= 0.5).all()


@pytest.mark.filterwarnings("ignore:zarr v3 autosharding:UserWarning")  # anndata announcing a future default
def test_the_tissue_mask_is_a_labels_element_over_the_image(tmp_path):
    from spatialdata import read_zarr

    # 2400 px: the mask is found on the pyramid level of 1200 px, so the labels are scaled by 2 to the image
    sdata = tissue_slide(size=2400, radius=800, transformations={"slide": Scale([0.5, 0.5], axes=("x", "y"))})
    mask = np.zeros((60, 60), bool)
    mask[10:50, 20:40] = True
    genar.pp.make_spots(sdata, "he", pixel_size_um=2.0, tissue_mask=mask, section="s")
    labels = sdata.labels["s_tissue"]
    expected = np.kron(mask, np.ones((20, 20), bool)).astype(np.uint8)  # the given mask at 1200 px (nearest)
    np.testing.assert_array_equal(np.asarray(labels), expected)
    # a label pixel lands where the image pixel twice as far out does, in every coordinate system of the image
    to_slide = get_transformation(labels, "slide").to_affine_matrix(input_axes=("x", "y"), output_axes=("x", "y"))
    image_to_slide = get_transformation(sdata.images["he"], "slide").to_affine_matrix(
        input_axes=("x", "y"), output_axes=("x", "y")
    )
    np.testing.assert_allclose(to_slide @ [200, 100, 1], image_to_slide @ [400, 200, 1])
    assert set(get_transformation(labels, get_all=True)) == {"slide"}
    # napari-spatialdata and spatialdata-plot read it from the zarr store
    sdata.write(tmp_path / "spots.zarr")
    back = read_zarr(tmp_path / "spots.zarr")
    np.testing.assert_array_equal(np.asarray(back.labels["s_tissue"]), expected)
    with pytest.raises(ValueError, match=r"sdata.labels\['s_tissue'\] exists"):
        genar.pp.make_spots(sdata, "he", pixel_size_um=2.0, tissue_mask=mask, section="s", table_added="other",
                            shapes_added="other_spots")  # fmt: skip


def test_visium_hd_bins_are_squares_that_tile_the_tissue():
    sdata = tissue_slide(size=200, radius=60)
    genar.pp.make_spots(sdata, "he", technology="visium_hd_16um", pixel_size_um=2.0)
    shapes = sdata.shapes["he_pseudo_spots"]
    assert (shapes.geometry.geom_type == "Polygon").all()
    np.testing.assert_allclose(shapes.geometry.area, (16 / 2.0) ** 2)
    # squares tile: total area ~ the disc's area
    disc_px = np.pi * 60**2
    assert abs(shapes.geometry.area.sum() - disc_px) < 0.05 * disc_px


def test_pixel_size_from_a_micrometre_coordinate_system_and_a_given_mask():
    sdata = tissue_slide(transformations={"slide": Identity(), "um": Scale([2.0, 2.0], axes=("x", "y"))})
    genar.pp.make_spots(sdata, "he", micron_coordinate_system="um")
    assert sdata.tables["genar"].uns["spatial"]["he"]["scalefactors"]["microns_per_pixel"] == 2.0
    top_half = np.zeros((60, 60), dtype=bool)
    top_half[:30] = True
    genar.pp.make_spots(sdata, "he", pixel_size_um=2.0, tissue_mask=top_half, overwrite=True)
    assert (sdata.tables["genar"].obsm["spatial"][:, 1] < 300).all()
    assert sdata.tables["genar"].uns["genar_spots"]["params"]["tissue_mask"] == "given"


def test_make_spots_errors_name_the_argument_and_the_fix():
    sdata = tissue_slide()
    with pytest.raises(ValueError, match="pixel size of image 'he' is unknown. Pass `pixel_size_um=`"):
        genar.pp.make_spots(sdata, "he")
    with pytest.raises(ValueError, match=r"Unknown `technology`='xenium'; choose one of"):
        genar.pp.make_spots(sdata, "he", technology="xenium", pixel_size_um=1.0)
    with pytest.raises(ValueError, match="`grid` must be 'hex' or 'square'; got 'round'"):
        genar.pp.make_spots(sdata, "he", grid="round", pixel_size_um=1.0)
    with pytest.raises(ValueError, match="the mask given is empty"):
        genar.pp.make_spots(sdata, "he", pixel_size_um=1.0, tissue_mask=np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match=r"`tissue_mask` has shape \(10, 30\)"):
        genar.pp.make_spots(sdata, "he", pixel_size_um=1.0, tissue_mask=np.ones((10, 30), bool))
    with pytest.raises(KeyError, match="'slide' not found in sdata.images"):
        genar.pp.make_spots(sdata, "slide", pixel_size_um=1.0)
    with pytest.raises(ValueError, match="not a coordinate system of image 'he'"):
        genar.pp.make_spots(sdata, "he", micron_coordinate_system="um")
    genar.pp.make_spots(sdata, "he", pixel_size_um=2.0)
    with pytest.raises(ValueError, match=r"sdata.tables\['genar'\] exists already. Pass `overwrite=True`"):
        genar.pp.make_spots(sdata, "he", pixel_size_um=2.0)


def test_pseudo_spots_on_a_real_section_sit_where_the_measured_spots_are(her2st):
    sdata = SpatialData(images={"C4_image": her2st.images["C4_image"]})
    mpp = her2st.tables["table"].uns["spatial"]["C4"]["scalefactors"]["microns_per_pixel"]
    genar.pp.make_spots(sdata, "C4_image", technology="st", pixel_size_um=mpp, section="C4")
    pseudo = sdata.tables["genar"].obsm["spatial"]
    real = genar._geometry.spot_centres_in_image(her2st, "C4_spots", "C4_image", "C4")
    pitch_px = 200 / mpp
    nearest = np.hypot(*(real[:, None] - pseudo[None]).transpose(2, 0, 1)).min(axis=1)
    assert (nearest < pitch_px * 0.75).mean() > 0.9  # the tissue that was measured is covered
    assert 0.8 < len(pseudo) / len(real) < 1.25
