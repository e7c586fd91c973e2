"""Pyramid levels and pixel sizes: one rule each, shared by patches, pseudo-spots and plots."""

from __future__ import annotations

import numpy as np
import pytest
from spatialdata.models import Image2DModel
from spatialdata.transformations import Identity, Scale

from genar._geometry import choose_level, image_levels, micron_scale, resolve_pixel_size


@pytest.fixture
def pyramid():
    image = np.zeros((3, 256, 512), dtype=np.uint8)
    return Image2DModel.parse(image, dims=("c", "y", "x"), scale_factors=[2, 2], transformations={"px": Identity()})


def test_levels_and_the_level_to_read(pyramid):
    levels = image_levels(pyramid)
    assert [lv.shape[-1] for lv in levels] == [512, 256, 128]
    assert choose_level(levels, max_downsample=1.5) == 0
    assert choose_level(levels, max_downsample=2.0) == 1  # a patch of 64 px read at 32 px may come from level 1
    assert choose_level(levels, max_downsample=100.0) == 2
    assert choose_level(levels, max_edge_px=300) == 1  # the finest level small enough
    assert choose_level(levels, max_edge_px=10) == 2  # none is small enough: the coarsest
    with pytest.raises(ValueError, match="exactly one"):
        choose_level(levels)


def test_pixel_size_sources_in_order(pyramid):
    from spatialdata.transformations import set_transformation

    set_transformation(pyramid, {"px": Identity(), "um": Scale([0.5, 0.5], axes=("y", "x"))}, set_all=True)
    assert resolve_pixel_size("it", given={"A": 0.3}, section="A", recorded=0.9) == 0.3
    assert resolve_pixel_size("it", micron_system=(pyramid, "um"), spot_diameter=(100.0, 50.0), recorded=0.9) == 0.5
    assert resolve_pixel_size("it", spot_diameter=(100.0, 50.0), recorded=0.9) == 2.0
    assert resolve_pixel_size("it", recorded=0.9) == 0.9
    with pytest.raises(ValueError, match=r"pixel size of it is unknown. Pass `a`, or `b`.*never guesses"):
        resolve_pixel_size("it", ways=("`a`", "`b`"))
    with pytest.raises(ValueError, match="must be a positive number of micrometres; got -1.0"):
        resolve_pixel_size("it", given=-1)


def test_anisotropic_pixels_are_refused(pyramid):
    from spatialdata.transformations import set_transformation

    set_transformation(pyramid, {"um": Scale([0.5, 0.25], axes=("y", "x"))}, set_all=True)
    with pytest.raises(ValueError, match=r"scaled differently along x \(0.25\) and y \(0.5\)"):
        micron_scale(pyramid, "um", what="image 'x'")
    with pytest.raises(ValueError, match=r"'nope' is not a coordinate system of image 'x': \['um'\]"):
        micron_scale(pyramid, "nope", what="image 'x'")
