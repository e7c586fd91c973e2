"""Reference predictors scored through the same evaluate(): ridge and an MLP on the histology features, the mean."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from .. import _keys
from .._copy import supports_copy
from .._docs import doc_params
from .._keys import PredictionKeys
from .._logging import logger
from .._tables import section_mask, to_dense
from .._validate import check_sections, get_counts, get_table, sections_of
from ._arrays import histology_features
from ._write import check_free, nearest_count_in_log_space, write_prediction

if TYPE_CHECKING:
    from spatialdata import SpatialData

Baseline = Literal["ridge", "hest_ridge", "mlp", "mean"]
KINDS = ("ridge", "hest_ridge", "mlp", "mean")


@supports_copy
@doc_params
def baseline(
    sdata: SpatialData,
    kind: Baseline,
    *,
    train_sections: str | Sequence[str] | None = None,
    sections: str | Sequence[str] | None = None,
    layer_added: str | None = None,
    table_key: str = _keys.PANEL_TABLE,
    embedding_key: str = _keys.HISTOLOGY,
    layer: str | None = _keys.COUNTS_LAYER,
    n_components: int = 256,
    alphas: Sequence[float] = tuple(np.logspace(-1, 5, 13)),
    hidden: Sequence[int] = (256,),
    random_state: int = 0,
    overwrite: bool = False,
) -> None:
    """Fit a baseline on the training sections and write its predicted counts for the sections asked for.

    ``'ridge'``: standardise the histology features, reduce them to ``n_components`` principal components, and fit a
    ridge regression with an intercept (penalty chosen by efficient leave-one-out over ``alphas``) to log1p counts;
    predictions are ``expm1`` of the fit, at least 0. ``'hest_ridge'`` is the HEST-Benchmark protocol exactly: the
    same standardisation and PCA, then ``Ridge(alpha=100 / (n_components * n_genes), solver='lsqr',
    fit_intercept=False)``. Its penalty hardly regularises and, without an intercept on centred components, it
    predicts log counts centred on 0: its correlations are comparable, its errors are not (HEST reports Pearson
    only). ``'ridge'`` is the stronger linear probe of the two.
    ``'mlp'``: the same standardisation and PCA, then a multilayer perceptron (``hidden`` ReLU layers, Adam,
    early stopping on 10% of the training spots, seeded) to log1p counts of all genes at once.
    ``'mean'`` predicts every spot with the mean count of the training spots (its correlations are undefined).

    Parameters
    ----------
    sdata
        SpatialData after :func:`genar.pp.embed_patches`.
    kind
        ``'ridge'``, ``'hest_ridge'``, ``'mlp'`` or ``'mean'``.
    {train_sections}
    sections
        Sections to predict (default: all).
    layer_added
        Layer for the integer counts (default ``f'{kind}_counts'``); the float estimate goes to
        ``f'{layer_added}_estimate'``, as :func:`genar.tl.predict` writes them.
    {table_key}
    {embedding_key}
    {layer}
    n_components, alphas
        PCA size (``'ridge'``, ``'mlp'``) and ridge penalties.
    hidden
        Hidden layer sizes of ``'mlp'``.
    {random_state}
        It seeds ``'mlp'``; ridge and the mean do not depend on it.
    {overwrite}

    Returns
    -------
    Nothing (or the copy); sets in ``sdata.tables[table_key]`` ``layers[f'{layer_added}_estimate']`` (float32: the
    fit's ``expm1``, at least 0, so that its log1p is the fitted value), ``layers[layer_added]`` (int32: the count
    nearest it in log space), ``obs[f'{layer_added}_predicted']`` (which spots hold predictions) and
    ``uns['genar_predictions'][layer_added]`` (the baseline's settings). Both forms are scored like GenAR's.

    Examples
    --------
    >>> genar.tl.baseline(sdata, "ridge", train_sections=["C2", "C3"], sections=["C4"])  # doctest: +SKIP
    >>> genar.tl.evaluate(sdata, predicted_layer="ridge_counts_estimate", sections=["C4"])  # doctest: +SKIP
    """
    if kind not in KINDS:
        msg = f"`kind` must be one of {list(KINDS)}; got {kind!r}."
        raise ValueError(msg)
    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    keys = PredictionKeys(layer_added or f"{kind}_counts")
    available = sections_of(table)
    if train_sections is None:
        train_sections = _keys.panel_params(table).get("train_sections")
    train = check_sections(train_sections, available, argument="train_sections")
    targets = check_sections(sections, available)
    is_train, is_target = section_mask(table, train), section_mask(table, targets)
    check_free(table, keys, is_target, overwrite=overwrite, sampled=False)
    log_counts = np.log1p(to_dense(get_counts(table, layer)[is_train], float))
    if kind == "mean":
        pred = np.broadcast_to(np.expm1(log_counts).mean(axis=0), (int(is_target.sum()), table.n_vars))
    else:
        features = histology_features(table, embedding_key)
        n = min(n_components, features.shape[1], int(is_train.sum()) - 1)
        regressor = {
            "ridge": lambda: _ridge(alphas),
            "hest_ridge": lambda: _hest_ridge(n, table.n_vars, random_state),
            "mlp": lambda: _mlp(hidden, random_state),
        }[kind]()
        pred = _fit_log_counts(regressor, n, features[is_train], log_counts, features[is_target])
    estimate = np.asarray(pred, dtype=np.float32)
    layers = {keys.layer: nearest_count_in_log_space(estimate), keys.estimate: estimate}
    record = {
        "baseline": kind,
        "random_state": random_state,
        "train_sections": list(train),
        "sections": list(targets),
        "layers": list(layers),
    }
    columns = np.arange(table.n_vars)
    write_prediction(table, keys, is_target, columns, layers, samples=None, sampled=False, record=record)
    logger.info("added `layers[%r]`: %s baseline trained on %s", keys.layer, kind, train)


def _ridge(alphas: Sequence[float]):
    from sklearn.linear_model import RidgeCV

    return RidgeCV(alphas=list(alphas))


def _hest_ridge(n_components: int, n_genes: int, random_state: int):
    from sklearn.linear_model import Ridge

    alpha = 100 / (n_components * n_genes)
    return Ridge(alpha=alpha, solver="lsqr", fit_intercept=False, max_iter=1000, random_state=random_state)


def _mlp(hidden: Sequence[int], random_state: int):
    from sklearn.neural_network import MLPRegressor

    return MLPRegressor(
        hidden_layer_sizes=tuple(hidden), alpha=1e-3, early_stopping=True, max_iter=500, random_state=random_state
    )


def _fit_log_counts(regressor, n_components: int, X_train, log_counts, X_predict) -> np.ndarray:
    """Standardise, reduce to ``n_components`` principal components, fit ``log1p`` counts; expected counts ≥ 0."""
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), PCA(n_components, random_state=0), regressor)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)  # the MLP's early stopping decides
        model.fit(X_train, log_counts)
    return np.maximum(np.expm1(model.predict(X_predict).reshape(len(X_predict), -1)), 0.0)
