from __future__ import annotations

import numpy as np
import pytest
from spatialdata.transformations import Identity, set_transformation

import genar


@pytest.fixture
def panel(sdata):
    genar.pp.select_genes(sdata, 16)
    return sdata


def test_patch_centre_is_the_spot_centre(panel):
    # the synthetic image encodes position: red = x, green = y
    genar.pp.extract_patches(panel, size_um=21.0, patch_px=21)
    table = panel.tables["genar"]
    patches = genar.pp.read_patches(panel)
    assert patches.shape == (table.n_obs, 21, 21, 3) and patches.dtype == np.uint8
    centre = patches[:, 10, 10, :2].astype(float)
    # a pixel (i, j) covers [j, j+1) x [i, i+1): the pixel under a centre (x, y) has value floor(x), floor(y)
    np.testing.assert_array_equal(centre, np.floor(table.obsm["spatial"]))
    boxes = table.obsm["genar_patches"]
    np.testing.assert_allclose((boxes[:, :2] + boxes[:, 2:]) / 2, table.obsm["spatial"])
    np.testing.assert_allclose(boxes[:, 2:] - boxes[:, :2], 21.0)
    blue = patches[..., 2]
    section = table.obs["section"].cat.codes.to_numpy().astype(int)
    assert np.all(blue == (128 + section)[:, None, None])  # each patch comes from its own section's image


def test_patches_resample_micrometres_to_pixels(panel):
    table = panel.tables["genar"]
    table.uns["spatial"]["S0"]["scalefactors"]["microns_per_pixel"] = 0.5
    genar.pp.extract_patches(panel, size_um=20.0, patch_px=20)
    boxes = table.obsm["genar_patches"]
    s0 = (table.obs["section"] == "S0").to_numpy()
    np.testing.assert_allclose(boxes[s0, 2] - boxes[s0, 0], 40.0)  # 20 µm at 0.5 µm/px
    np.testing.assert_allclose(boxes[~s0, 2] - boxes[~s0, 0], 20.0)
    patches = genar.pp.read_patches(panel, np.flatnonzero(s0)[:5])
    # 40 px of image squeezed into 20 px: red (= x) rises by about 2 per output pixel
    slope = np.diff(patches[:, 10, 2:18, 0].astype(float), axis=1).mean()
    assert slope == pytest.approx(2.0, abs=0.05)


def test_coarser_pyramid_level_is_used_when_enough(panel):
    genar.pp.extract_patches(panel, size_um=64.0, patch_px=16)
    params = panel.tables["genar"].uns["genar_patches"]["params"]["sections"]
    assert params["S0"]["level"] == 1  # 64 px at full resolution, 32 px at level 1, still >= 16
    genar.pp.extract_patches(panel, size_um=64.0, patch_px=48, overwrite=True)
    assert panel.tables["genar"].uns["genar_patches"]["params"]["sections"]["S0"]["level"] == 0


def test_border_patches_are_padded_and_flagged(panel):
    table = panel.tables["genar"]
    shapes = panel.shapes["S0_spots"]
    row = np.flatnonzero((table.obs["section"] == "S0").to_numpy())[0]
    instance = table.obs["instance_id"].iloc[row]
    from shapely.geometry import Point

    shapes.loc[instance, "geometry"] = Point(3.0, 100.0)
    genar.pp.extract_patches(panel, size_um=20.0, patch_px=20)
    assert table.obs["genar_patches_border"].iloc[row]
    assert table.obs["genar_patches_border"].sum() == 1
    patch = genar.pp.read_patches(panel, [row])[0]
    assert np.all(patch[:, :7] == 255)  # the 7 columns left of the image are white padding
    assert patch[10, 12, 0] == 5  # inside the image, red is still x


def test_unknown_pixel_size(sdata):
    del sdata.tables["table"].uns["spatial"]
    genar.pp.select_genes(sdata, 8)
    with pytest.raises(ValueError, match=r"pixel size of section 'S0'.*Pass `pixel_size_um=`"):
        genar.pp.extract_patches(sdata)
    genar.pp.extract_patches(sdata, pixel_size_um=2.0, size_um=20.0)
    boxes = sdata.tables["genar"].obsm["genar_patches"]
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], 10.0)


def test_image_must_share_a_coordinate_system(panel):
    set_transformation(panel.images["S0_image"], {"elsewhere": Identity()}, set_all=True)
    with pytest.raises(KeyError, match=r"No image shares a coordinate system with spots 'S0_spots'.*Available images"):
        genar.pp.extract_patches(panel)


def test_read_patches_needs_extract(panel):
    with pytest.raises(KeyError, match=r"Run `genar.pp.extract_patches` first"):
        genar.pp.read_patches(panel, [0])


@pytest.mark.her2st
def test_real_patch_centres(her2st):
    genar.pp.select_genes(her2st, 50, flavor="total_counts")
    table = her2st.tables["genar"]
    size_px = 145.0
    genar.pp.extract_patches(her2st, size_um=size_px * 0.6881, patch_px=145)
    rows = np.flatnonzero((table.obs["section"] == "C2").to_numpy())[:8]
    patches = genar.pp.read_patches(her2st, rows)
    image = her2st.images["C2_image"]["scale0"].ds["image"]
    for patch, (x, y) in zip(patches, table.obsm["spatial"][rows], strict=True):
        expected = image[:, int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4].values.mean(axis=(1, 2))
        got = patch[69:76, 69:76].reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(got, expected, atol=12)
    assert not table.obs["genar_patches_border"].any()


def test_missing_shapes_element_is_named(panel):
    del panel.shapes["S1_spots"]
    with pytest.raises(KeyError, match=r"'S1_spots' not found in sdata.shapes. Available keys: \['S0_spots'\]"):
        genar.pp.extract_patches(panel)


def test_float_image_is_refused(panel):
    from spatialdata.models import Image2DModel

    img = np.random.default_rng(0).random((3, 64, 64)).astype(np.float32)
    panel.images["S0_image"] = Image2DModel.parse(img, dims=("c", "y", "x"), transformations={"S0": Identity()})
    with pytest.raises(TypeError, match=r"'S0_image' has 3 channels of dtype float32.*RGB uint8"):
        genar.pp.extract_patches(panel)


def test_missing_image_lists_the_images(sdata):
    del sdata.images["S1_image"]
    genar.pp.select_genes(sdata, 8)
    with pytest.raises(KeyError, match=r"No image shares a coordinate system with spots 'S1_spots'.*\['S0_image'\]"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)


def test_missing_shapes_lists_the_shapes(sdata):
    genar.pp.select_genes(sdata, 8)
    del sdata.shapes["S0_spots"]
    with pytest.raises(KeyError, match=r"'S0_spots' not found in sdata.shapes. Available keys: \['S1_spots'\]"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)


def test_table_region_that_names_no_shapes(sdata):
    genar.pp.select_genes(sdata, 8)
    table = sdata.tables["genar"]
    table.obs["region"] = table.obs["region"].cat.rename_categories({"S0_spots": "S0_spotz"})
    with pytest.raises(KeyError, match=r"'S0_spotz' not found in sdata.shapes.*region must name a shapes element"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)


def test_coordinate_systems_that_do_not_connect_image_and_spots(sdata):
    genar.pp.select_genes(sdata, 8)
    set_transformation(sdata.images["S0_image"], {"elsewhere": Identity()}, set_all=True)
    with pytest.raises(KeyError, match=r"No image shares a coordinate system with spots 'S0_spots' .*\['S0'\]"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)
    with pytest.raises(ValueError, match=r"Image 'S0_image' and spots 'S0_spots' share no coordinate system"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24, image_key="S0_image")


def test_spots_outside_the_image_hold_no_tissue(sdata):
    genar.pp.select_genes(sdata, 8)
    shapes = sdata.shapes["S1_spots"]
    shapes.geometry = shapes.geometry.translate(xoff=5000)
    with pytest.warns(UserWarning, match=r"40 of the 40 spots of section 'S1' lie entirely outside image 'S1_image'"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)
    assert sdata.tables["genar"].obs["genar_patches_border"].to_numpy()[40:].all()


@pytest.mark.filterwarnings("ignore:zarr v3 autosharding:UserWarning")
def test_patch_boxes_are_a_shapes_element_over_the_image(panel, tmp_path, caplog):
    from spatialdata import read_zarr
    from spatialdata.transformations import get_transformation

    genar.pp.extract_patches(panel, size_um=21.0, patch_px=21)
    table = panel.tables["genar"]
    panel.write(tmp_path / "patches.zarr")
    back = read_zarr(tmp_path / "patches.zarr")
    for section in ("S0", "S1"):
        rows = (table.obs["section"] == section).to_numpy()
        shapes = back.shapes[f"{section}_genar_patches"]
        assert shapes.index.tolist() == table.obs["instance_id"][rows].tolist()  # indexed like the spots
        np.testing.assert_allclose(shapes.geometry.bounds.to_numpy(), table.obsm["genar_patches"][rows])
        image_systems = get_transformation(back.images[f"{section}_image"], get_all=True)
        assert get_transformation(shapes, get_all=True) == image_systems  # drawn where the image is drawn
    with pytest.raises(ValueError, match=r"Patches \(obsm\['genar_patches'\]\) exists already"):
        genar.pp.extract_patches(panel, size_um=21.0, patch_px=21)
    # a new panel table (select_genes again) makes new patches: the boxes of the old one are replaced, with a warning
    genar.pp.select_genes(panel, 8, overwrite=True)
    with caplog.at_level("WARNING", logger="genar"):
        genar.pp.extract_patches(panel, size_um=30.0, patch_px=21)
    assert "replacing shapes element 'S0_genar_patches'" in caplog.text
    np.testing.assert_allclose(np.ptp(panel.shapes["S0_genar_patches"].geometry.bounds[["minx", "maxx"]], axis=1), 30)


def _reference_patch(rgb_HWC: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """A patch cut straight from the whole image in memory (white outside it), resampled as the reader does."""
    from PIL import Image

    lo, hi = np.floor(box[:2]).astype(int), np.ceil(box[2:]).astype(int)
    canvas = np.full((hi[1] - lo[1], hi[0] - lo[0], 3), 255, np.uint8)
    y0, y1 = max(lo[1], 0), min(hi[1], rgb_HWC.shape[0])
    x0, x1 = max(lo[0], 0), min(hi[0], rgb_HWC.shape[1])
    canvas[y0 - lo[1] : y1 - lo[1], x0 - lo[0] : x1 - lo[0]] = rgb_HWC[y0:y1, x0:x1]
    sub = (box[0] - lo[0], box[1] - lo[1], box[2] - lo[0], box[3] - lo[1])
    return np.asarray(Image.fromarray(canvas).resize((size, size), Image.Resampling.BILINEAR, box=sub))


@pytest.mark.filterwarnings("ignore:zarr v3 autosharding:UserWarning")
@pytest.mark.parametrize(
    ("cache_bytes", "stored", "channel_chunk"),
    # default cache, room for three chunks; read from disk, with the channels in one chunk or in three
    [(None, False, 3), (3 * 32 * 32 * 3, False, 3), (None, True, 3), (None, True, 1)],
)
def test_overlapping_patches_decode_each_chunk_once(cache_bytes, stored, channel_chunk, tmp_path):
    """Dense, heavily overlapping windows (as Visium HD bins) read the same pixels as a cut from the whole image.

    In memory the chunks are computed by dask; an image read from a zarr store is read straight from its chunk files.
    """
    from spatialdata import SpatialData, read_zarr
    from spatialdata.models import Image2DModel

    from genar.pp import _patch_reader

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 200, 232), dtype=np.uint8)
    image = Image2DModel.parse(rgb, dims=("c", "y", "x"), chunks=(channel_chunk, 32, 32))
    sdata = SpatialData(images={"slide": image})
    if stored:
        sdata.write(tmp_path / "slide.zarr")
        sdata = read_zarr(tmp_path / "slide.zarr")
    genar.pp.make_spots(
        sdata,
        "slide",
        pixel_size_um=1.0,
        diameter_um=8,
        spacing_um=8,
        grid="square",
        shape="square",
        tissue_mask=np.ones((25, 29), bool),
    )
    genar.pp.extract_patches(sdata, size_um=21.0, patch_px=24)  # 21 µm windows, 8 µm apart: each pixel in ~7 patches
    table = sdata.tables["genar"]
    reader = _patch_reader.PatchReader(sdata, table, "genar_patches")
    assert (reader.levels["slide"][0].stored is not None) == stored
    assert (reader.levels["slide"][0].files is not None) == stored
    if cache_bytes is not None:
        reader.levels["slide"][0].cache_bytes = cache_bytes
    got = np.concatenate([reader.read(rows) for rows in np.array_split(np.arange(table.n_obs), 7)])
    reader.close()
    expected = np.stack([_reference_patch(np.moveaxis(rgb, 0, -1), b, 24) for b in table.obsm["genar_patches"]])
    np.testing.assert_array_equal(got, expected)
    level = reader.levels["slide"][0]
    touched = {
        k
        for b in table.obsm["genar_patches"]
        for k in level.chunks_of(
            max(int(np.floor(b[1])), 0),
            min(int(np.ceil(b[3])), 200),
            max(int(np.floor(b[0])), 0),
            min(int(np.ceil(b[2])), 232),
        )
    }
    assert level.decoded == len(touched) == 7 * 8  # every chunk of the 200 × 232 image, once
    if cache_bytes is not None:  # batches in row order move down the image: chunks above are dropped, never re-read
        assert len(level.cache) < len(touched)
    # iter_patches reads ahead on a thread and yields the same batches in order
    batches = list(genar.pp.iter_patches(sdata, batch_size=50))
    np.testing.assert_array_equal(np.concatenate([p for _, p in batches]), expected)
    assert np.array_equal(np.concatenate([r for r, _ in batches]), np.arange(table.n_obs))


def test_only_an_unchanged_zarr_image_is_read_straight_from_its_store(tmp_path):
    import dask.array as da
    import zarr

    from genar.pp._patch_reader import zarr_array_of

    stored = zarr.create_array(tmp_path / "image.zarr", shape=(3, 64, 64), chunks=(3, 32, 32), dtype="uint8")
    stored[:] = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    image = da.from_zarr(stored)
    assert zarr_array_of(image) is stored
    assert zarr_array_of(image + 1) is None  # computed from the store: its pixels are not the stored ones
    assert zarr_array_of(image[:, 8:]) is None
    assert zarr_array_of(image.rechunk((3, 16, 16))) is None
    assert zarr_array_of(da.from_array(np.zeros((3, 64, 64), np.uint8))) is None


@pytest.mark.parametrize(
    ("zarr_format", "compressors"),
    [(3, "auto"), (3, "blosc"), (3, "gzip"), (3, None), (2, "auto"), (2, "blosc")],
)
def test_stored_chunks_are_decoded_from_their_files_as_zarr_reads_them(zarr_format, compressors, tmp_path):
    import numcodecs
    import zarr

    from genar.pp._stored_chunks import StoredChunks

    codec = {
        "blosc": zarr.codecs.BloscCodec() if zarr_format == 3 else numcodecs.Blosc(),
        "gzip": zarr.codecs.GzipCodec(),
    }.get(compressors, compressors)
    kwargs = {"chunk_key_encoding": {"name": "v2", "separator": "/"}} if zarr_format == 2 else {}
    array = zarr.create_array(
        tmp_path / "image.zarr",
        shape=(3, 70, 45),  # short chunks at the bottom and right edges
        chunks=(2, 32, 32),
        dtype="uint8",
        fill_value=7,
        zarr_format=zarr_format,
        compressors=codec,
        **kwargs,
    )
    array[:, :40] = np.random.default_rng(0).integers(
        0, 256, (3, 40, 45), dtype=np.uint8
    )  # the last chunk row: unwritten
    files = StoredChunks.of(zarr.open_array(tmp_path / "image.zarr", mode="r"))
    assert files is not None
    for index in np.ndindex(2, 3, 2):
        region = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, (2, 32, 32), strict=True))
        np.testing.assert_array_equal(files.read(index), array[region])
    assert (files.read((0, 2, 0)) == 7).all()


def test_stored_chunks_leave_other_layouts_to_zarr_and_refuse_a_wrong_sized_chunk(tmp_path):
    import numcodecs
    import zarr

    from genar.pp._stored_chunks import StoredChunks

    def make(name, **kwargs):
        kwargs.setdefault("dtype", "uint8")
        return zarr.create_array(tmp_path / name, shape=(3, 64, 64), chunks=(3, 32, 32), **kwargs)

    assert StoredChunks.of(make("sharded.zarr", shards=(3, 64, 64))) is None
    assert StoredChunks.of(make("int16.zarr", dtype="int16")) is None
    assert StoredChunks.of(make("filtered.zarr", zarr_format=2, filters=[numcodecs.Delta("u1")])) is None
    in_memory = zarr.create_array(zarr.storage.MemoryStore(), shape=(3, 64, 64), chunks=(3, 32, 32), dtype="uint8")
    assert StoredChunks.of(in_memory) is None
    array = make("plain.zarr")
    array[:] = 1
    files = StoredChunks.of(array)
    chunk_file = tmp_path / "plain.zarr" / "c" / "0" / "0" / "0"
    chunk_file.write_bytes(numcodecs.Zstd().encode(b"too short"))
    with pytest.raises(ValueError, match="holds 9 values"):
        files.read((0, 0, 0))


@pytest.mark.parametrize("prefetch", [True, False])
def test_iter_patches_reads_into_the_given_buffers_in_turn(panel, prefetch):
    genar.pp.extract_patches(panel, size_um=24.0, patch_px=24)
    expected = genar.pp.read_patches(panel)
    px = expected.shape[1]
    buffers = [np.zeros((4, px, px, 3), np.uint8) for _ in range(3)]
    seen = []
    for k, (rows, patches) in enumerate(genar.pp.iter_patches(panel, batch_size=4, prefetch=prefetch, buffers=buffers)):
        assert np.shares_memory(patches, buffers[k % 3]) and len(patches) == len(rows)
        np.testing.assert_array_equal(patches, expected[rows])  # the buffer not yet overwritten by a later batch
        seen.append(rows)
    assert len(seen) > 3 and np.array_equal(np.concatenate(seen), np.arange(len(expected)))
    with pytest.raises(ValueError, match=r"`buffers` must hold at least 2 arrays.*got 1"):
        next(genar.pp.iter_patches(panel, batch_size=4, buffers=buffers[:1]))


def test_reader_writes_into_out_and_refuses_a_wrong_buffer(panel):
    from genar.pp import _patch_reader

    genar.pp.extract_patches(panel, size_um=24.0, patch_px=24)
    reader = _patch_reader.PatchReader(panel, panel.tables["genar"], "genar_patches")
    try:
        px = reader.patch_px
        out = np.zeros((6, px, px, 3), np.uint8)
        got = reader.read(np.arange(4), out=out)
        assert np.shares_memory(got, out) and got.shape == (4, px, px, 3)
        np.testing.assert_array_equal(got, reader.read(np.arange(4)))
        assert not out[4:].any()  # rows past the batch are left alone
        for wrong in (np.zeros((3, px, px, 3), np.uint8), np.zeros((6, px, px, 3), np.float32)):
            with pytest.raises(ValueError, match=r"`out` must be a uint8 array of at least \(4, "):
                reader.read(np.arange(4), out=wrong)
    finally:
        reader.close()


def test_iter_patches_on_given_reader_threads(panel, reader_threads_made):
    genar.pp.extract_patches(panel, size_um=24.0, patch_px=24)
    expected = genar.pp.read_patches(panel)
    got = np.concatenate([p for _, p in genar.pp.iter_patches(panel, batch_size=4, n_threads=1)])
    np.testing.assert_array_equal(got, expected)
    assert reader_threads_made[-1] == 1
    with pytest.raises(ValueError, match=r"`n_threads` must be at least 1.*got 0"):
        next(genar.pp.iter_patches(panel, n_threads=0))
