"""Checks that a model fits a table: the same genes, features from the same encoder."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from anndata import AnnData

    from ..model import GenAR


def check_genes(table: AnnData, model: GenAR) -> None:
    """Raise a :class:`KeyError` naming the model's genes that ``table`` lacks."""
    missing = [g for g in model.genes if g not in table.var_names]
    if missing:
        msg = (
            f"The table lacks {len(missing)} of the model's {len(model.genes)} genes: {missing[:20]}. Predict into a "
            "table with the model's panel (e.g. `genar.pp.select_genes(sdata, genes=model.genes)`)."
        )
        raise KeyError(msg)


def check_encoder(table: AnnData, model: GenAR, embedding_key: str) -> None:
    """Raise unless ``obsm[embedding_key]`` comes from the model's encoder and has the model's dimension."""
    info = table.uns.get(embedding_key, {}).get("encoder")
    features_dim = np.shape(table.obsm[embedding_key])[1] if embedding_key in table.obsm else None
    if info is not None and info.get("name") != model.encoder.get("name"):
        msg = (
            f"The features in obsm[{embedding_key!r}] come from encoder {info.get('name')!r}, but the model was "
            f"trained on {model.encoder.get('name')!r}. Re-run `genar.pp.embed_patches(sdata, "
            f"encoder={model.encoder.get('name')!r})`."
        )
        raise ValueError(msg)
    if features_dim is not None and features_dim != model.feature_dim:
        msg = (
            f"obsm[{embedding_key!r}] has {features_dim} features per spot; the model needs {model.feature_dim} "
            f"(encoder {model.encoder.get('name')!r})."
        )
        raise ValueError(msg)
