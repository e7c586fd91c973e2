from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import EllipseCollection

import genar


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture
def predicted(prepared, trained):
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    return prepared


def test_training_draws_the_history(trained):
    ax = genar.pl.training(trained)
    frame = trained.history_frame()
    total = next(line for line in ax.get_lines() if line.get_label() == "train total")
    np.testing.assert_allclose(total.get_ydata(), frame["train/loss"].to_numpy())
    per_scale = [line for line in ax.get_lines() if "scale" in line.get_label()]
    assert len(per_scale) == len(trained.scales)
    np.testing.assert_allclose(per_scale[2].get_ydata(), frame["train/loss_scale2"].to_numpy())


def test_training_needs_history():
    model = genar.GenAR(genar.GenARConfig(width=8, heads=2, scales=(1, 2)), genes=["a", "b"], cap=3, feature_dim=2)
    with pytest.raises(ValueError, match=r"run `genar.tl.fit` first"):
        genar.pl.training(model)


def test_gene_correlation_ranks_and_marks_pcc(prepared):
    table = prepared.tables["genar"]
    rng = np.random.default_rng(0)
    table.layers["noisy"] = table.layers["counts"].toarray() + rng.poisson(2.0, table.shape)
    genar.tl.evaluate(prepared, predicted_layer="noisy")
    _, ax = plt.subplots()
    assert genar.pl.gene_correlation(prepared, section="S1", top=5, ax=ax) is ax
    heights = [p.get_height() for p in ax.patches]
    per_gene = table.uns["genar_evaluation"]["per_gene"]["S1"].dropna()
    assert len(per_gene) == 16
    np.testing.assert_allclose(heights, np.sort(per_gene.to_numpy())[::-1][:5])
    pcc10 = table.uns["genar_evaluation"]["summary"].loc["S1", "pcc_10"]
    marked = [line.get_ydata()[0] for line in ax.get_lines()]
    assert marked == pytest.approx([pcc10])  # PCC-50/200 are undefined for 16 genes: not drawn


def test_gene_correlation_needs_evaluate(predicted):
    with pytest.raises(KeyError, match=r"Run `genar.tl.evaluate` first"):
        genar.pl.gene_correlation(predicted)


def test_scales_shows_the_groups(prepared):
    ax = genar.pl.scales(prepared)
    table = prepared.tables["genar"]
    image = np.asarray(ax.get_images()[0].get_array())
    np.testing.assert_array_equal(image, table.varm["genar_gene_group"].T % 2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1 groups", "4 groups", "16 groups"]
    assert [t.get_text() for t in ax.get_xticklabels()] == table.var_names.tolist()


def test_scales_needs_cluster_genes(sdata):
    genar.pp.select_genes(sdata, 8)
    with pytest.raises(KeyError, match=r"Run `genar.pp.cluster_genes` first"):
        genar.pl.scales(sdata)


def test_spatial_shares_the_colour_scale_and_draws_true_spots(predicted):
    table = predicted.tables["genar"]
    predicted.shapes["S1_spots"]["radius"] = 6.0
    gene = table.var_names[3]
    axes = genar.pl.spatial(predicted, [gene], section="S1")
    assert len(axes) == 2
    rows = (table.obs["section"] == "S1").to_numpy()
    cols = [next(c for c in a.collections if isinstance(c, EllipseCollection)) for a in axes]
    observed = np.log1p(table[rows, gene].layers["counts"].toarray().ravel())
    predicted_values = np.log1p(table[rows, gene].layers["genar_counts"].ravel())
    np.testing.assert_allclose(cols[0].get_array(), observed)
    np.testing.assert_allclose(cols[1].get_array(), predicted_values)
    assert cols[0].norm.vmax == cols[1].norm.vmax == pytest.approx(max(observed.max(), predicted_values.max()))
    np.testing.assert_allclose(cols[0].get_widths(), 12.0)  # the true spot diameter, in data units
    np.testing.assert_allclose(cols[0].get_offsets(), table.obsm["spatial"][rows])  # each value at its own spot
    assert len(axes[0].get_images()) == 1  # the H&E background
    extent = axes[0].get_images()[0].get_extent()
    assert extent == [0, 256, 256, 0]


def test_spatial_places_the_image_through_its_transformation(predicted):
    # the image at half the spots' resolution, shifted: as Visium's hires PNG beside full-resolution spot coordinates
    from spatialdata.models import Image2DModel
    from spatialdata.transformations import Affine, Scale, Sequence, Translation

    full = np.asarray(predicted.images["S1_image"]["scale0"]["image"].data)
    half = full[:, ::2, ::2]
    moved = Sequence([Scale([2.0, 2.0], axes=("y", "x")), Translation([3.0, -4.0], axes=("x", "y"))])
    predicted.images["S1_image"] = Image2DModel.parse(half, dims=("c", "y", "x"), transformations={"S1": moved})
    gene = predicted.tables["genar"].var_names[0]
    ax = genar.pl.spatial(predicted, gene, section="S1", predicted_layers=[])[0]
    assert ax.get_images()[0].get_extent() == pytest.approx([3.0, 259.0, 252.0, -4.0])
    # a rotation is drawn through an affine transform of the image's pixels into the spots' frame
    turn = Affine(np.array([[0.0, -2.0, 256.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), ("x", "y"), ("x", "y"))
    predicted.images["S1_image"] = Image2DModel.parse(half, dims=("c", "y", "x"), transformations={"S1": turn})
    plt.close("all")
    ax = genar.pl.spatial(predicted, gene, section="S1", predicted_layers=[])[0]
    shown = ax.get_images()[0]
    mapped = (shown.get_transform() - ax.transData).transform([[0.0, 0.0], [128.0, 0.0]])
    np.testing.assert_allclose(mapped, [[256.0, 0.0], [256.0, 256.0]])


def test_spatial_needs_a_gene_and_a_layer(predicted):
    with pytest.raises(ValueError, match=r"genes=\[\]"):
        genar.pl.spatial(predicted, [], section="S0")
    with pytest.raises(ValueError, match=r"layer=None, predicted_layers=\[\]"):
        genar.pl.spatial(
            predicted, predicted.tables["genar"].var_names[0], section="S0", layer=None, predicted_layers=[]
        )


def test_spatial_needs_predictions(prepared):
    gene = prepared.tables["genar"].var_names[0]
    with pytest.raises(KeyError, match=r"Run `genar.tl.predict` first"):
        genar.pl.spatial(prepared, gene, section="S0")
    with pytest.raises(KeyError, match=r"not in the panel"):
        genar.pl.spatial(prepared, "nope", section="S0", predicted_layers=[])


def test_uncertainty_shows_truth_prediction_and_interval_width(predicted, trained):
    genar.tl.predict(predicted, trained, sections="S0", n_samples=8, layer_added="sampled", show_progress_bar=False)
    table = predicted.tables["genar"]
    gene = table.var_names[3]
    axes = genar.pl.uncertainty(predicted, gene, section="S0", predicted_layer="sampled", image=False)
    assert len(axes) == 3
    rows = (table.obs["section"] == "S0").to_numpy()
    width = table.layers["sampled_q95"][rows, 3] - table.layers["sampled_q05"][rows, 3]
    drawn = axes[2].collections[0].get_array()
    np.testing.assert_allclose(drawn, width)
    assert axes[0].collections[0].norm.vmax == axes[1].collections[0].norm.vmax  # truth and prediction share
    assert "interval width" in axes[2].get_title()


def test_uncertainty_needs_samples(predicted):
    with pytest.raises(KeyError, match=r"'genar_counts' has no predictive interval.*n_samples=100"):
        genar.pl.uncertainty(predicted, predicted.tables["genar"].var_names[0], section="S0")
