from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import genar


def test_panel_table_holds_raw_counts_of_panel_genes(sdata):
    before = sdata.tables["table"].copy()
    genar.pp.select_genes(sdata, 12, train_sections=["S0"])
    panel = sdata.tables["genar"]
    assert panel.n_vars == 12 and panel.n_obs == before.n_obs
    np.testing.assert_array_equal(panel.layers["counts"].toarray(), before[:, panel.var_names].X.toarray())
    np.testing.assert_array_equal(panel.X.toarray(), panel.layers["counts"].toarray())
    assert panel.uns["genar"]["params"]["train_sections"] == ["S0"]
    assert panel.uns["spatialdata_attrs"]["region"] == before.uns["spatialdata_attrs"]["region"]
    # the source table is untouched
    table = sdata.tables["table"]
    assert (table.X != before.X).nnz == 0
    assert table.var_names.equals(before.var_names) and table.obs.equals(before.obs)
    assert set(table.uns) == set(before.uns)


def test_panel_is_chosen_on_training_sections_only(sdata):
    table = sdata.tables["table"]
    X = table.X.toarray()
    s1 = (table.obs["section"] == "S1").to_numpy()
    rng = np.random.default_rng(1)
    X[:, 0] = 6  # g00: constant everywhere ...
    X[s1, 0] = rng.choice([0, 0, 0, 24], s1.sum())  # ... except wildly variable in the held-out section S1
    table.X = sparse.csr_matrix(X)
    genar.pp.select_genes(sdata, 8, train_sections=["S0"])
    assert "g00" not in sdata.tables["genar"].var_names
    genar.pp.select_genes(sdata, 8, train_sections=["S1"], overwrite=True)
    assert "g00" in sdata.tables["genar"].var_names


def test_given_genes_keep_their_order(sdata):
    genar.pp.select_genes(sdata, genes=["g05", "g01", "g30"])
    assert sdata.tables["genar"].var_names.tolist() == ["g05", "g01", "g30"]
    assert sdata.tables["genar"].var["genar_measured"].all()
    with pytest.raises(KeyError, match=r"None of the 2 genes in `genes`.*symbols vs Ensembl"):
        genar.pp.select_genes(sdata, genes=["nope", "nada"], overwrite=True)


def test_normalised_counts_are_refused(sdata):
    table = sdata.tables["table"]
    table.X = sparse.csr_matrix(np.log1p(table.X.toarray()))
    with pytest.raises(ValueError, match=r"does not hold raw counts.*layer="):
        genar.pp.select_genes(sdata, 8)


def test_negative_counts_are_refused(sdata):
    table = sdata.tables["table"]
    table.layers["shifted"] = table.X.toarray() - 5
    with pytest.raises(ValueError, match="negative values"):
        genar.pp.select_genes(sdata, 8, layer="shifted")


def test_too_many_genes(sdata):
    with pytest.raises(ValueError, match=r"`n_genes` must be between 1 and the 32 genes available; got 33"):
        genar.pp.select_genes(sdata, 33)


def test_missing_table_lists_available(sdata):
    with pytest.raises(KeyError, match=r"Available tables: \['table'\]"):
        genar.pp.select_genes(sdata, 8, table_key="counts")


def test_existing_panel_is_not_overwritten(sdata):
    genar.pp.select_genes(sdata, 8)
    first = sdata.tables["genar"].var_names.tolist()
    with pytest.raises(ValueError, match="overwrite=True"):
        genar.pp.select_genes(sdata, 12)
    assert sdata.tables["genar"].var_names.tolist() == first


def test_unknown_section(sdata):
    with pytest.raises(ValueError, match=r"unknown sections \['S7'\]. Available sections: \['S0', 'S1'\]"):
        genar.pp.select_genes(sdata, 8, train_sections=["S7"])


def test_negative_counts(sdata):
    table = sdata.tables["table"]
    table.X = table.X.astype(np.int32)
    table.X[0, 0] = -2
    with pytest.raises(ValueError, match=r"adata.X contains negative values \(minimum -2\).*raw, non-negative"):
        genar.pp.select_genes(sdata, 8)


def test_duplicate_gene_names(sdata):
    table = sdata.tables["table"]
    table.var_names = ["g00", "g00", *table.var_names[2:]]
    with pytest.raises(ValueError, match=r"gene names of table 'table' are not unique: \['g00'\].*make_unique"):
        genar.pp.select_genes(sdata, 8)


def test_sparse_float_counts_that_are_whole_numbers_are_accepted(sdata):
    sdata.tables["table"].X = sparse.csr_matrix(sdata.tables["table"].X.toarray().astype(np.float32))
    genar.pp.select_genes(sdata, 8)  # float storage of integer counts is common (e.g. after concatenation)
    assert sdata.tables["genar"].layers["counts"].dtype == np.int32
