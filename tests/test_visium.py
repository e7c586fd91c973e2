"""The pp/tl/pl chain on a SpatialData read by ``spatialdata_io.visium`` from a Visium folder written here.

The folder is made from a real her2st section: a 10x feature-barcode matrix (HDF5), ``tissue_positions.csv``,
``scalefactors_json.json``, hires and lowres PNGs and a "full-resolution" TIFF (the section's image at a quarter of
its size, to keep the test small), so the real reader — not a stand-in — builds the SpatialData.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import sparse

import genar
from genar._geometry import image_levels, spot_centres_in_image

spatialdata_io = pytest.importorskip("spatialdata_io")

#: The "full-resolution" TIFF is the section's image downscaled by this factor.
DOWNSCALE = 4
HIRES, LOWRES = 0.5, 0.125


def write_visium_folder(her2st, section: str, path) -> dict:
    """A Space Ranger 2-style output folder for one her2st section; returns the facts the test checks against."""
    import h5py

    table = her2st.tables["table"]
    rows = (table.obs["section"] == section).to_numpy()
    counts = sparse.csc_matrix(table.X[rows].T.astype(np.int32))  # genes × barcodes, as 10x stores it
    barcodes = [f"{section}-{i:04d}-1" for i in range(int(rows.sum()))]
    genes = table.var_names.to_numpy().astype(str)
    with h5py.File(path / "filtered_feature_bc_matrix.h5", "w") as f:
        f.attrs["library_ids"] = np.array([section.encode()])
        m = f.create_group("matrix")
        m["barcodes"] = np.array(barcodes, dtype="S")
        m["data"], m["indices"], m["indptr"] = counts.data, counts.indices.astype(np.int64), counts.indptr
        m["shape"] = np.array(counts.shape, dtype=np.int32)
        feats = m.create_group("features")
        feats["id"] = np.array([f"ENSG{i:011d}" for i in range(len(genes))], dtype="S")
        feats["name"] = genes.astype("S")
        feats["feature_type"] = np.array([b"Gene Expression"] * len(genes))
        feats["genome"] = np.array([b"GRCh38"] * len(genes))
        feats["_all_tag_keys"] = np.array([b"genome"])

    image_key = f"{section}_image"
    full = image_levels(her2st.images[image_key])[0]
    rgb = np.moveaxis(np.asarray(full.data[:3, ::DOWNSCALE, ::DOWNSCALE]), 0, -1)
    (path / "spatial").mkdir()
    Image.fromarray(rgb).save(path / f"{section}_fullres.tif")
    for name, scale in (("hires", HIRES), ("lowres", LOWRES)):
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR).save(path / "spatial" / f"tissue_{name}_image.png")

    centres = (
        spot_centres_in_image(her2st, f"{section}_spots", image_key, section)[
            her2st.shapes[f"{section}_spots"].index.get_indexer(table.obs.loc[rows, "instance_id"])
        ]
        / DOWNSCALE
    )
    lines = ["barcode,in_tissue,array_row,array_col,pxl_row_in_fullres,pxl_col_in_fullres"]
    lines += [f"{b},1,{i},{i},{y:.3f},{x:.3f}" for i, (b, (x, y)) in enumerate(zip(barcodes, centres, strict=True))]
    (path / "spatial" / "tissue_positions.csv").write_text("\n".join(lines) + "\n")
    scalefactors = table.uns["spatial"][section]["scalefactors"]
    diameter_px = scalefactors["spot_diameter_fullres"] / DOWNSCALE
    (path / "spatial" / "scalefactors_json.json").write_text(
        json.dumps(
            {
                "tissue_hires_scalef": HIRES,
                "tissue_lowres_scalef": LOWRES,
                "spot_diameter_fullres": diameter_px,
                "fiducial_diameter_fullres": diameter_px * 1.6,
            }
        )
    )
    return {
        "counts": counts.T.tocsr(),
        "genes": genes,
        "centres": centres,
        "microns_per_pixel": scalefactors["microns_per_pixel"] * DOWNSCALE,
    }


# the reader's own warning about its table, not genar's
@pytest.mark.filterwarnings("ignore:Converting `region_key. region` to categorical dtype:UserWarning")
def test_the_chain_runs_on_a_spatialdata_io_visium_object(her2st, tmp_path):
    facts = write_visium_folder(her2st, "C4", tmp_path)
    sdata = spatialdata_io.visium(tmp_path, dataset_id="C4", fullres_image_file="C4_fullres.tif")
    assert {"C4_full_image", "C4_hires_image", "C4_lowres_image"} <= set(sdata.images)
    visium_table = sdata.tables["table"]
    assert "section" not in visium_table.obs

    genar.pp.select_genes(sdata, 60)
    panel = sdata.tables["genar"]
    assert panel.obs["section"].unique().tolist() == ["C4"]  # one section per shapes element
    assert "section" not in sdata.tables["table"].obs  # the reader's table is left as it was
    got = panel.layers["counts"].toarray()
    expected = facts["counts"][:, [list(facts["genes"]).index(g) for g in panel.var_names]].toarray()
    np.testing.assert_array_equal(got, expected)  # counts survive the 10x file and the reader
    genar.pp.cluster_genes(sdata, scales=(1, 6, 60))

    # Visium spots are 55 µm; these are ST spots of 100 µm, and their circles give the pixel size
    genar.pp.extract_patches(sdata, spot_diameter_um=100.0)
    panel = sdata.tables["genar"]  # cluster_genes reordered the genes into a new table
    params = panel.uns["genar_patches"]["params"]["sections"]["C4"]
    assert params["image_key"] == "C4_full_image"  # the sharpest of the three images
    assert params["microns_per_pixel"] == pytest.approx(facts["microns_per_pixel"], rel=1e-3)
    boxes = panel.obsm["genar_patches"]
    np.testing.assert_allclose((boxes[:, :2] + boxes[:, 2:]) / 2, facts["centres"], atol=1e-2)
    patches = genar.pp.read_patches(sdata, [0, 1])
    assert patches.shape == (2, 224, 224, 3) and patches.std() > 5  # tissue, not padding

    genar.pp.embed_patches(sdata, encoder="color_texture", show_progress_bar=False)
    config = genar.GenARConfig(width=16, depth=1, heads=2, batch_size=32, cap_quantile=1.0)
    model = genar.tl.fit(sdata, config=config, max_epochs=2, show_progress_bar=False)
    genar.tl.predict(sdata, model, show_progress_bar=False)
    summary = genar.tl.evaluate(sdata)
    assert summary.loc["C4", "n_spots"] == len(facts["centres"])
    import matplotlib

    matplotlib.use("Agg")
    axes = genar.pl.spatial(sdata, genes=panel.var_names[:2].tolist(), section="C4")
    assert len(axes) == 4 and all(len(ax.collections) >= 1 for ax in axes)  # 2 genes × (counts, genar_counts)
    with pytest.raises(ValueError, match="`spot_diameter_um` must be a positive number of micrometres; got -55"):
        genar.pp.extract_patches(sdata, spot_diameter_um=-55)


@pytest.mark.filterwarnings("ignore:Converting `region_key. region` to categorical dtype:UserWarning")
def test_plots_place_the_hires_image_when_the_full_resolution_image_was_not_read(her2st, tmp_path):
    import matplotlib.pyplot as plt

    facts = write_visium_folder(her2st, "C4", tmp_path)
    sdata = spatialdata_io.visium(tmp_path, dataset_id="C4")  # hires and lowres PNGs only, spots in full-res pixels
    assert "C4_full_image" not in sdata.images
    genar.pp.select_genes(sdata, 20)
    panel = sdata.tables["genar"]
    full_height, full_width = np.asarray(image_levels(her2st.images["C4_image"])[0].shape[-2:]) // DOWNSCALE

    ax = genar.pl.spatial(sdata, panel.var_names[0], section="C4", predicted_layers=[])[0]
    x0, x1, y1, y0 = ax.get_images()[0].get_extent()
    # the hires PNG spans the whole full-resolution frame the spots live in, not its own 0.5× pixel grid
    assert (x0, y0) == (0, 0)
    assert x1 == pytest.approx(full_width, abs=1 / HIRES) and y1 == pytest.approx(full_height, abs=1 / HIRES)
    spots = ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.sort(spots[:, 0]), np.sort(facts["centres"][:, 0]), atol=1e-2)
    plt.close("all")

    # squidpy reads the same placement from uns['spatial']: the hires image, and the factor into its pixels
    entry = panel.uns["spatial"]["C4"]
    assert entry["images"]["hires"].shape[:2] == (round(full_height * HIRES), round(full_width * HIRES))
    assert entry["scalefactors"]["tissue_hires_scalef"] == pytest.approx(HIRES, rel=1e-3)
