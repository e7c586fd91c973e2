"""Whole-slide images read lazily, with the pixel size from their metadata; bad slides get clear errors."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from spatialdata.transformations import get_transformation

import genar
from genar.io import SlideError

pytestmark = pytest.mark.her2st


@pytest.mark.parametrize("kind", ["tiff", "ome"])
def test_a_slide_keeps_its_pyramid_reads_lazily_and_knows_its_pixel_size(c4_slides, c4_rgb, kind):
    sdata = genar.io.read_wsi(c4_slides[kind], name="C4")
    image = sdata.images["C4_image"]
    levels = genar._geometry.image_levels(image)
    assert [lv.shape[1:] for lv in levels] == [lv.shape[:2] for lv in c4_slides["levels"]]  # the file's own levels
    assert type(levels[0].data).__name__ == "Array" and levels[0].data.chunksize == (3, 512, 512)  # dask, per tile
    scale = get_transformation(image, "C4_um").to_affine_matrix(("x", "y"), ("x", "y"))
    assert scale[0, 0] == pytest.approx(c4_slides["pixel_size_um"], rel=1e-6) == scale[1, 1]
    window = np.moveaxis(np.asarray(levels[0][:, 5000:5064, 4000:4064]), 0, -1)
    expected = c4_rgb[5000:5064, 4000:4064].astype(int)
    tolerance = 12 if kind == "tiff" else 0  # JPEG-compressed tiles vs lossless ones
    assert np.abs(window.astype(int) - expected).mean() <= tolerance


def test_the_openslide_backend_reads_the_same_pixels(c4_slides):
    pytest.importorskip("openslide")
    a = genar.io.read_wsi(c4_slides["ome"], name="a", pixel_size_um=c4_slides["pixel_size_um"])
    b = genar.io.read_wsi(c4_slides["ome"], name="b", backend="openslide", pixel_size_um=c4_slides["pixel_size_um"])
    level_a = genar._geometry.image_levels(a.images["a_image"])[0]
    level_b = genar._geometry.image_levels(b.images["b_image"])[0]
    np.testing.assert_array_equal(level_a[:, 3000:3100, 6000:6100], level_b[:, 3000:3100, 6000:6100])


@pytest.mark.parametrize(("kind", "backend"), [("tiff", "tiffslide"), ("ome", "tiffslide"), ("ome", "openslide")])
def test_patches_of_a_slide_are_read_from_its_tiles_on_the_reader_threads_as_dask_reads_them(
    c4_slides, kind, backend, monkeypatch
):
    if backend == "openslide":
        pytest.importorskip("openslide")
    from genar._region_readers import region_reader_of
    from genar.pp import _patch_reader

    sdata = genar.io.read_wsi(c4_slides[kind], name="C4", backend=backend)
    height, width = c4_slides["levels"][0].shape[:2]
    # spots everywhere (openslide sees only these files' full resolution, where detecting tissue takes minutes)
    genar.pp.make_spots(sdata, "C4_image", section="C4", tissue_mask=np.ones((height // 64, width // 64), bool))
    genar.pp.extract_patches(sdata, patch_px=64)
    table = sdata.tables["genar"]
    rows = np.linspace(0, table.n_obs - 1, 200).astype(int)
    gc.collect()  # the record lives as long as the SpatialData's level does
    reader = _patch_reader.PatchReader(sdata, table, "genar_patches")
    level = next(iter(reader.levels.values()))[0]
    assert level.stored is None and level.region is not None  # the slide's tiles, not dask's graph
    direct = reader.read(rows)
    assert direct.shape == (200, 64, 64, 3) and level.decoded > 0
    reader.close()
    monkeypatch.setattr(_patch_reader, "region_reader_of", lambda array: None)
    through_dask = genar.pp.read_patches(sdata, rows)
    np.testing.assert_array_equal(direct, through_dask)
    # an array computed from a level is not the slide's: dask reads it
    image_level = genar._geometry.image_levels(sdata.images["C4_image"])[0].data
    assert region_reader_of(image_level) is not None
    assert region_reader_of(image_level.rechunk(256)) is None and region_reader_of(image_level + 0) is None


def test_make_spots_and_patches_need_no_pixel_size_after_read_wsi(c4_slides):
    sdata = genar.io.read_wsi(c4_slides["tiff"], name="C4")
    genar.pp.make_spots(sdata, "C4_image", section="C4")
    table = sdata.tables["genar"]
    assert table.uns["spatial"]["C4"]["scalefactors"]["microns_per_pixel"] == pytest.approx(c4_slides["pixel_size_um"])
    assert 150 < table.n_obs < 250  # 100 µm spots, 200 µm apart, over C4's tissue (184 spots were measured)
    genar.pp.extract_patches(sdata)
    assert table.uns["genar_patches"]["params"]["sections"]["C4"]["microns_per_pixel"] == pytest.approx(
        c4_slides["pixel_size_um"]
    )


def test_a_slide_without_a_pixel_size_asks_for_one(c4_slides, slide_tools):
    write_slide, _, _ = slide_tools
    path = write_slide(c4_slides["folder"] / "bare.tif", c4_slides["levels"][2:])  # no resolution tags, no OME
    with pytest.raises(SlideError, match=r"records no pixel size.*`pixel_size_um=`"):
        genar.io.read_wsi(path)
    sdata = genar.io.read_wsi(path, pixel_size_um=4 * c4_slides["pixel_size_um"])
    assert list(sdata.images) == ["bare_image"]


def test_an_implausible_pixel_size_is_refused(c4_slides, slide_tools):
    write_slide, _, _ = slide_tools
    path = write_slide(c4_slides["folder"] / "dpi.tif", c4_slides["levels"][3:], resolution_um=25400 / 72,
                       resolutionunit="INCH")  # fmt: skip
    with pytest.raises(SlideError, match=r"pixel size of 352.778 µm, which is not that of a slide scan"):
        genar.io.read_wsi(path)


def test_a_corrupt_or_truncated_slide_is_named(c4_slides, tmp_path):
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(c4_slides["ome"].read_bytes()[:4096])
    garbage = tmp_path / "garbage.svs"
    garbage.write_bytes(b"not a tiff at all" * 100)
    for path in (truncated, garbage):
        with pytest.raises(
            SlideError, match=rf"{path.name}' cannot be read as a slide with tiffslide.*(truncated|corrupt)"
        ):
            genar.io.read_wsi(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.svs", "truncated.tif"]  # nothing written
    with pytest.raises(FileNotFoundError, match="No slide at"):
        genar.io.read_wsi(tmp_path / "absent.svs")
