from __future__ import annotations

import numpy as np
import pytest

import genar


@pytest.mark.her2st
def test_fit_predict_evaluate_on_a_real_section(her2st):
    sdata = her2st
    genar.pp.select_genes(sdata, 40, train_sections=["C2"], flavor="total_counts")
    genar.pp.cluster_genes(sdata, scales=(1, 4, 8, 40))
    genar.pp.extract_patches(sdata)
    table = sdata.tables["genar"]
    c2 = (table.obs["section"] == "C2").to_numpy()
    # colour/texture features of C2 only: seconds, not minutes
    from spatialdata.models import TableModel

    sub = table[c2].copy()
    del sub.uns["spatialdata_attrs"]
    sub.obs["region"] = sub.obs["region"].cat.remove_unused_categories()
    sdata.tables["genar"] = TableModel.parse(sub, region="C2_spots", region_key="region", instance_key="instance_id")
    genar.pp.embed_patches(sdata, encoder="color_texture", show_progress_bar=False)
    config = genar.GenARConfig(width=32, depth=1, heads=2, batch_size=64, lr=5e-3)
    with pytest.warns(UserWarning, match="exceed the cap"):
        model = genar.tl.fit(sdata, train_sections=["C2"], config=config, max_epochs=8, show_progress_bar=False)
    genar.tl.predict(sdata, model, show_progress_bar=False)
    table = sdata.tables["genar"]
    layer = table.layers["genar_counts"]
    assert layer.dtype == np.int32 and layer.shape == (187, 40)
    assert layer.min() >= 0 and layer.max() <= model.cap
    summary = genar.tl.evaluate(sdata)
    assert summary.index.tolist() == ["C2"] and summary.loc["C2", "n_spots"] == 187
    assert np.isfinite(summary.loc["C2", ["mse", "mae"]].astype(float)).all()
    per_gene = table.uns["genar_evaluation"]["per_gene"]["C2"]
    assert summary.loc["C2", "n_genes_defined"] == per_gene.notna().sum()
    assert (summary.loc["C2", "n_genes_defined"] >= 10) == np.isfinite(summary.loc["C2", "pcc_10"])
