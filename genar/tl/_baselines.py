"""Reference predictors scored through the same evaluate(): ridge on the histology features, and the mean."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from .. import _keys
from .._copy import supports_copy
from .._logging import logger
from .._validate import check_sections, get_counts, get_table, sections_of
from ._arrays import dense_counts, histology_features, section_mask

if TYPE_CHECKING:
    from spatialdata import SpatialData


@supports_copy
def baseline(
    sdata: SpatialData,
    kind: Literal["ridge", "mlp", "mean"],
    *,
    sections: str | Sequence[str] | None = None,
    predict_sections: str | Sequence[str] | None = None,
    layer_added: str | None = None,
    table_key: str = _keys.PANEL_TABLE,
    embedding_key: str = _keys.HISTOLOGY,
    layer: str | None = _keys.COUNTS_LAYER,
    n_components: int = 256,
    alphas: Sequence[float] = tuple(np.logspace(-1, 5, 13)),
    hidden: Sequence[int] = (256,),
    seed: int = 0,
    overwrite: bool = False,
) -> None:
    """Fit a baseline on the training sections and write its predicted counts for other sections.

    ``'ridge'`` follows the HEST-Benchmark protocol: standardise the histology features, reduce them to
    ``n_components`` principal components, and fit a ridge regression (penalty chosen by efficient
    leave-one-out over ``alphas``) to log1p counts; predictions are ``expm1`` of the fit, at least 0.
    ``'mlp'``: the same standardisation and PCA, then a multilayer perceptron (``hidden`` ReLU layers, Adam,
    early stopping on 10% of the training spots, seeded) to log1p counts of all genes at once.
    ``'mean'`` predicts every spot with the mean count of the training spots (its correlations are undefined).

    Parameters
    ----------
    sdata
        SpatialData after :func:`genar.pp.embed_patches`.
    kind
        ``'ridge'`` or ``'mean'``.
    sections
        Training sections (default: those the panel was chosen on).
    predict_sections
        Sections to predict (default: all).
    layer_added
        Layer for the predictions (default ``f'{kind}_counts'``); expected counts, float32.
    table_key, embedding_key, layer
        Panel table, features and raw counts.
    n_components, alphas
        PCA size (``'ridge'``, ``'mlp'``) and ridge penalties.
    hidden, seed
        Hidden layer sizes and seed of ``'mlp'``.
    overwrite
        Replace an existing layer.

    Returns
    -------
    Nothing (or the copy); sets in ``sdata.tables[table_key]`` ``layers[layer_added]`` (float32 expected counts),
    ``obs[f'{layer_added}_predicted']`` (which spots hold predictions) and ``uns['genar']['predict'][layer_added]``
    (the baseline's settings).
    """
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    layer_added = layer_added or f"{kind}_counts"
    if layer_added in table.layers and not overwrite:
        msg = f"table.layers[{layer_added!r}] exists already. Pass `overwrite=True` or another `layer_added`."
        raise ValueError(msg)
    available = sections_of(table)
    if sections is None:
        sections = table.uns.get(_keys.PANEL_TABLE, {}).get("params", {}).get("sections")
    train = check_sections(sections, available)
    targets = check_sections(predict_sections, available, argument="predict_sections")
    is_train, is_target = section_mask(table, train), section_mask(table, targets)
    y = np.log1p(dense_counts(get_counts(table, layer)[is_train]).astype(float))
    if kind == "mean":
        pred = np.broadcast_to(np.expm1(y).mean(axis=0), (int(is_target.sum()), table.n_vars))
    elif kind == "ridge":
        X = histology_features(table, embedding_key)
        n = min(n_components, X.shape[1], int(is_train.sum()) - 1)
        model = make_pipeline(StandardScaler(), PCA(n, random_state=0), RidgeCV(alphas=list(alphas)))
        model.fit(X[is_train], y)
        pred = np.maximum(np.expm1(model.predict(X[is_target])), 0.0)
    elif kind == "mlp":
        from sklearn.neural_network import MLPRegressor

        X = histology_features(table, embedding_key)
        n = min(n_components, X.shape[1], int(is_train.sum()) - 1)
        mlp = MLPRegressor(
            hidden_layer_sizes=tuple(hidden), alpha=1e-3, early_stopping=True, max_iter=500, random_state=seed
        )
        model = make_pipeline(StandardScaler(), PCA(n, random_state=0), mlp)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)  # early stopping decides, not max_iter
            model.fit(X[is_train], y)
        pred = np.maximum(np.expm1(model.predict(X[is_target]).reshape(int(is_target.sum()), -1)), 0.0)
    else:
        msg = f"`kind` must be 'ridge', 'mlp' or 'mean'; got {kind!r}."
        raise ValueError(msg)
    out = np.zeros(table.shape, dtype=np.float32)
    out[is_target] = pred
    table.layers[layer_added] = out
    table.obs[f"{layer_added}_predicted"] = is_target
    table.uns.setdefault(_keys.PANEL_TABLE, {}).setdefault("predict", {})[layer_added] = {
        "baseline": kind,
        "seed": seed,
        "sections": list(train),
        "predicted_sections": list(targets),
    }
    logger.info("added `layers[%r]`: %s baseline trained on %s", layer_added, kind, train)
