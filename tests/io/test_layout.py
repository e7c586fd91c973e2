"""genar.io.from_counts and combine: the one place genar's layout is made, and the checks at its door."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from spatialdata.transformations import get_transformation

import genar


def _section(rng, n=30, genes=("a", "b", "c", "d"), size=200):
    counts = pd.DataFrame(rng.poisson(3, (n, len(genes))), index=[f"s{i}" for i in range(n)], columns=list(genes))
    spots = pd.DataFrame({"x": rng.uniform(20, size - 20, n), "y": rng.uniform(20, size - 20, n)}, index=counts.index)
    image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    return counts, spots, image


def test_counts_spots_and_an_image_become_genar_layout():
    rng = np.random.default_rng(0)
    counts, spots, image = _section(rng)
    spots["array_row"] = np.arange(30)
    extra = pd.DataFrame({"x": [1.0], "y": [1.0], "array_row": [99]}, index=["unused"])  # a spot without counts
    sdata = genar.io.from_counts(
        counts.iloc[::-1], pd.concat([spots, extra]), image, pixel_size_um=2.0, spot_diameter_um=10, section="S"
    )
    table = sdata.tables["table"]
    assert list(sdata.images) == ["S_image"] and list(sdata.shapes) == ["S_spots"]
    assert table.obs["spot"].tolist() == counts.index[::-1].tolist()  # the counts' order, matched by spot id
    np.testing.assert_array_equal(table.X.toarray(), counts.iloc[::-1].to_numpy())
    np.testing.assert_allclose(table.obsm["spatial"], spots.loc[counts.index[::-1], ["x", "y"]].to_numpy())
    assert table.obs["array_row"].tolist() == list(range(30))[::-1]
    scale = table.uns["spatial"]["S"]["scalefactors"]
    assert scale["microns_per_pixel"] == 2.0 and scale["spot_diameter_fullres"] == 5.0
    np.testing.assert_allclose(sdata.shapes["S_spots"]["radius"], 2.5)
    for element in (sdata.images["S_image"], sdata.shapes["S_spots"]):
        assert set(get_transformation(element, get_all=True)) == {"S", "S_um"}
    # the chain runs on it
    genar.pp.select_genes(sdata, 4, flavor="total_counts")
    genar.pp.extract_patches(sdata, size_um=40.0, patch_px=16)
    assert sdata.tables["genar"].uns["genar_patches"]["params"]["sections"]["S"]["microns_per_pixel"] == 2.0


def test_bad_input_is_named():
    rng = np.random.default_rng(1)
    counts, spots, image = _section(rng)
    with pytest.raises(ValueError, match=r"2 counted spots are not in the spot positions: \['s0', 's1'\]"):
        genar.io.from_counts(counts, spots.iloc[2:], image, pixel_size_um=1, spot_diameter_um=10)
    with pytest.raises(ValueError, match=r"pixel size is unknown.*`pixel_size_um=`.*never guesses"):
        genar.io.from_counts(counts, spots, image, spot_diameter_um=10)
    with pytest.raises(ValueError, match=r"does not hold raw counts"):
        genar.io.from_counts(counts / 3, spots, image, pixel_size_um=1, spot_diameter_um=10)
    with pytest.raises(ValueError, match=r"every spot lies outside the image \(200 × 200 px\)"):
        genar.io.from_counts(counts, spots * 10 + 5000, image, pixel_size_um=1, spot_diameter_um=10)
    with pytest.raises(KeyError, match=r"`spots` lacks the coordinate columns \['x_px'\]"):
        genar.io.from_counts(counts, spots, image, pixel_size_um=1, spot_diameter_um=10, coordinates=("x_px", "y"))
    with pytest.raises(TypeError, match=r"`image` has dtype float64"):
        genar.io.from_counts(counts, spots, image / 255.0, pixel_size_um=1, spot_diameter_um=10)
    with pytest.raises(ValueError, match=r"pass the gene names as `genes=`"):
        genar.io.from_counts(counts.to_numpy(), spots.to_numpy(), image, pixel_size_um=1, spot_diameter_um=10)
    arrays = genar.io.from_counts(
        counts.to_numpy(), spots.to_numpy(), None, genes=list("abcd"), pixel_size_um=1, spot_diameter_um=10
    )
    assert arrays.tables["table"].obs["spot"].tolist()[:2] == ["0", "1"] and not arrays.images


def test_combine_keeps_shared_genes_or_all_of_them_with_what_was_missing():
    rng = np.random.default_rng(2)
    a = genar.io.from_counts(*_section(rng, genes=("a", "b", "c")), pixel_size_um=1, spot_diameter_um=10, section="A")
    b = genar.io.from_counts(*_section(rng, genes=("b", "c", "d")), pixel_size_um=1, spot_diameter_um=10, section="B")
    inner = genar.io.combine([a, b]).tables["table"]
    assert inner.var_names.tolist() == ["b", "c"] and inner.obs["section"].cat.categories.tolist() == ["A", "B"]
    outer = genar.io.combine([a, b], genes="union").tables["table"]
    assert outer.var_names.tolist() == ["a", "b", "c", "d"]
    assert outer.uns["genar_missing_genes"] == {"A": ["d"], "B": ["a"]}
    rows_a = (outer.obs["section"] == "A").to_numpy()
    assert not outer[rows_a, "d"].X.toarray().any() and outer[~rows_a, "d"].X.toarray().any()
    assert set(outer.uns["spatial"]) == {"A", "B"} and outer.X.dtype == np.int32
    with pytest.raises(ValueError, match=r"Sections appear in more than one SpatialData: \['A'\]"):
        genar.io.combine([a, a])


@pytest.mark.her2st
def test_predictions_from_a_slide_match_those_from_the_jpeg_section(her2st, c4_slides, tiny_config):
    """The same spots of C4, once from the JPEG-based her2st section and once from a JPEG-tiled pyramidal TIFF."""
    table = her2st.tables["table"]
    rows = (table.obs["section"] == "C4").to_numpy()
    c4 = table[rows]
    counts = pd.DataFrame(c4.X.toarray(), index=c4.obs["spot"].to_numpy(), columns=c4.var_names)
    spots = pd.DataFrame(c4.obsm["spatial"], index=counts.index, columns=["x", "y"])
    slide = genar.io.from_counts(counts, spots, c4_slides["tiff"], spot_diameter_um=100, section="C4")
    scale = slide.tables["table"].uns["spatial"]["C4"]["scalefactors"]
    assert scale["microns_per_pixel"] == pytest.approx(c4_slides["pixel_size_um"])  # from the slide's resolution tags
    features = {}
    for name, sdata in (("jpeg", her2st), ("slide", slide)):
        genar.pp.select_genes(sdata, 40, flavor="total_counts", train_sections=["C4"])
        genar.pp.extract_patches(sdata)
        genar.pp.embed_patches(sdata, encoder="color_texture", show_progress_bar=False)
        genar.pp.cluster_genes(sdata, scales=(1, 4, 8, 40))
        features[name] = sdata.tables["genar"][sdata.tables["genar"].obs["section"] == "C4"]
    a, b = (features[k].obsm["X_histology"] for k in ("jpeg", "slide"))
    assert a.shape == b.shape == (184, 46)
    np.testing.assert_allclose(b, a, atol=0.05 * np.abs(a).max())  # JPEG tiles recompress: within tolerance
    model = genar.tl.fit(her2st, train_sections=["C4"], config=tiny_config, max_epochs=2, show_progress_bar=False)
    genar.pp.select_genes(slide, genes=model.genes, overwrite=True)
    genar.pp.extract_patches(slide)
    genar.pp.embed_patches(slide, encoder="color_texture", show_progress_bar=False)
    for sdata in (her2st, slide):
        genar.tl.predict(sdata, model, sections="C4", show_progress_bar=False)
    estimate = {
        k: np.log2(1 + s.tables["genar"][s.tables["genar"].obs["section"] == "C4"].layers["genar_counts_estimate"])
        for k, s in (("jpeg", her2st), ("slide", slide))
    }
    assert np.abs(estimate["slide"] - estimate["jpeg"]).mean() < 0.05
    assert np.corrcoef(estimate["slide"].ravel(), estimate["jpeg"].ravel())[0, 1] > 0.99
