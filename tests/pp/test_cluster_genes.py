from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import genar
from genar.pp import check_scales, group_ids


@pytest.fixture
def panel(sdata):
    genar.pp.select_genes(sdata, 32)
    return sdata


def _module(names):
    return np.array([int(n[1:]) % 4 for n in names])  # synthetic genes g<i> follow spatial factor i % 4


def test_group_ids_are_equal_width_windows():
    ids = group_ids((1, 4, 8, 40, 100, 200), 200)
    assert ids.shape == (200, 6)
    for k, s in enumerate((1, 4, 8, 40, 100, 200)):
        assert np.bincount(ids[:, k]).tolist() == [200 // s] * s
        assert np.all(np.diff(ids[:, k]) >= 0)  # contiguous
    np.testing.assert_array_equal(ids[:, -1], np.arange(200))


@pytest.mark.parametrize(
    ("scales", "match"),
    [
        ((1, 4, 3, 32), "strictly increasing"),
        ((1, 4, 8), "finest scale must equal the panel size"),
        ((1, 5, 32), r"must divide the panel size 32 so groups have equal sizes; \[5\] do not"),
        ((), "empty"),
    ],
)
def test_bad_scales(scales, match):
    with pytest.raises(ValueError, match=match):
        check_scales(scales, 32)


@pytest.mark.parametrize("method", ["kmeans", "balanced"])
def test_groups_recover_coexpression_modules(panel, method):
    genar.pp.cluster_genes(panel, scales=(1, 4, 8, 32), method=method, n_top_clusters=4, subcluster_size=4)
    table = panel.tables["genar"]
    ids = table.varm["genar_gene_group"]
    assert ids.shape == (32, 4)
    np.testing.assert_array_equal(ids, group_ids((1, 4, 8, 32), 32))
    # the 4 groups at the second scale are the 4 simulated modules
    assert adjusted_rand_score(_module(table.var_names), ids[:, 1]) == 1.0
    assert table.uns["genar_gene_group"]["scales"] == [1, 4, 8, 32]
    assert table.uns["genar_gene_group"]["params"]["method"] == method


def test_counts_follow_their_genes_when_reordered(panel):
    before = panel.tables["genar"].to_df(layer="counts")
    genar.pp.cluster_genes(panel, scales=(1, 4, 8, 32))
    after = panel.tables["genar"].to_df(layer="counts")
    assert sorted(after.columns) == sorted(before.columns)
    assert after.equals(before[after.columns])


def test_deterministic_and_independent_of_column_order(panel):
    genar.pp.cluster_genes(panel, scales=(1, 4, 8, 32), random_state=3)
    first = panel.tables["genar"].var_names.tolist()
    table = panel.tables["genar"]
    panel.tables["genar"] = table[:, table.var_names[::-1]].copy()
    genar.pp.cluster_genes(panel, scales=(1, 4, 8, 32), random_state=3, overwrite=True)
    assert panel.tables["genar"].var_names.tolist() == first


def test_balanced_rejects_non_nested(panel):
    genar.pp.select_genes(panel, 30, overwrite=True)
    with pytest.raises(ValueError, match=r"each scale must divide the next; \[\(10, 15\)\]"):
        genar.pp.cluster_genes(panel, scales=(1, 10, 15, 30), method="balanced")


def test_scales_must_fit_panel(panel):
    with pytest.raises(ValueError, match="finest scale must equal the panel size"):
        genar.pp.cluster_genes(panel)  # the paper's scales end at 200 genes


def test_needs_panel_table(sdata):
    with pytest.raises(KeyError, match=r"Run `genar.pp.select_genes` first"):
        genar.pp.cluster_genes(sdata, scales=(1, 32))


def test_random_grouping_is_the_ablation_that_ignores_coexpression(panel):
    genar.pp.cluster_genes(panel, scales=(1, 4, 8, 32), method="random", random_state=3)
    table = panel.tables["genar"]
    first = table.var_names.tolist()
    assert adjusted_rand_score(_module(table.var_names), table.varm["genar_gene_group"][:, 1]) < 0.5
    with pytest.raises(
        ValueError, match=r"gene hierarchy \(varm\['genar_gene_group'\]\) exists already.*overwrite=True"
    ):
        genar.pp.cluster_genes(panel, scales=(1, 4, 8, 32), method="random", random_state=3)
    genar.pp.cluster_genes(panel, scales=(1, 4, 8, 32), method="random", random_state=3, overwrite=True)
    assert panel.tables["genar"].var_names.tolist() == first  # the same seed gives the same order
