from __future__ import annotations

import copy

import pytest

import genar

TINY = genar.GenARConfig(width=16, depth=1, heads=2, mlp_ratio=2.0, batch_size=32, lr=3e-3, cap_quantile=1.0)


@pytest.fixture
def tiny_config():
    """A model small enough to train in a second."""
    return TINY


@pytest.fixture(scope="session")
def _prepared_session(_sdata_session):
    sdata = copy.deepcopy(_sdata_session)
    genar.pp.select_genes(sdata, 16, sections=["S0"])
    genar.pp.cluster_genes(sdata, scales=(1, 4, 16))
    genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)
    genar.pp.embed_patches(sdata, encoder="color_texture", show_progress_bar=False)
    return sdata


@pytest.fixture
def prepared(_prepared_session):
    """Synthetic sections after every pp step (panel of 16 genes chosen on S0)."""
    return copy.deepcopy(_prepared_session)


@pytest.fixture(scope="session")
def _trained_session(_prepared_session):
    return genar.tl.fit(
        copy.deepcopy(_prepared_session), sections=["S0"], config=TINY, max_epochs=3, show_progress_bar=False
    )


@pytest.fixture
def trained(_trained_session):
    return copy.deepcopy(_trained_session)
