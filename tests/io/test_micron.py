"""genar.io.add_micron_system: a micrometre coordinate system for sections read without one."""

from __future__ import annotations

import numpy as np
import pytest
from spatialdata import transform
from spatialdata.transformations import Identity, Translation, get_transformation, set_transformation

import genar


@pytest.fixture
def panel(sdata):
    for name in ("S0", "S1"):  # as a reader that knows pixels only: 0.5 µm per pixel recorded with the counts
        sdata.tables["table"].uns["spatial"][name]["scalefactors"]["microns_per_pixel"] = 0.5
    genar.pp.select_genes(sdata, 8)
    genar.pp.extract_patches(sdata, size_um=12.0, patch_px=12)
    return sdata


def test_every_element_of_a_section_is_mapped_into_micrometres(panel):
    # the image sits shifted in the section's frame: the micrometres are measured on the image's pixels
    set_transformation(panel.images["S1_image"], Translation([5.0, -3.0], axes=("x", "y")), "S1")
    set_transformation(panel.shapes["S1_spots"], Translation([5.0, -3.0], axes=("x", "y")), "S1")
    assert genar.io.add_micron_system(panel) == ["S0_um", "S1_um"]
    for section in ("S0", "S1"):
        spots = panel.shapes[f"{section}_spots"]
        xy = np.column_stack([spots.geometry.x, spots.geometry.y])  # the spots' own coordinates = image pixels here
        in_um = transform(spots, to_coordinate_system=f"{section}_um")
        np.testing.assert_allclose(np.column_stack([in_um.geometry.x, in_um.geometry.y]), 0.5 * xy)
        np.testing.assert_allclose(in_um["radius"], 0.5 * spots["radius"])
        boxes = transform(panel.shapes[f"{section}_genar_patches"], to_coordinate_system=f"{section}_um")
        np.testing.assert_allclose(np.ptp(boxes.geometry.bounds[["minx", "maxx"]], axis=1), 12.0)  # 12 µm patches
        image_um = get_transformation(panel.images[f"{section}_image"], f"{section}_um")
        np.testing.assert_allclose(image_um.to_affine_matrix(("x", "y"), ("x", "y")), np.diag([0.5, 0.5, 1.0]))
    assert isinstance(get_transformation(panel.images["S0_image"], "S0"), Identity)  # the pixel system stays


def test_a_section_that_has_one_is_left_and_the_pixel_size_is_never_guessed(panel):
    assert genar.io.add_micron_system(panel, "S0", pixel_size_um=2.0) == ["S0_um"]
    before = get_transformation(panel.shapes["S0_spots"], "S0_um")
    assert genar.io.add_micron_system(panel, "S0") == []
    assert get_transformation(panel.shapes["S0_spots"], "S0_um") == before
    table = panel.tables["genar"]
    del table.uns["spatial"]["S1"]["scalefactors"]["microns_per_pixel"]
    del table.uns["genar_patches"]
    with pytest.raises(ValueError, match=r"pixel size of section 'S1'.* is unknown.*`pixel_size_um=`"):
        genar.io.add_micron_system(panel, "S1")
    with pytest.raises(ValueError, match=r"Unknown sections.*'S9'|unknown.*S9"):
        genar.io.add_micron_system(panel, "S9")
