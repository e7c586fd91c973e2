"""genar.tl.predict: decode raw counts for spots and write them into layers of the panel table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .. import _keys
from .._copy import supports_copy
from .._docs import doc_params
from .._keys import PredictionKeys, as_quantiles
from .._logging import logger
from .._settings import settings
from .._tables import section_mask
from .._validate import check_sections, get_table, sections_of
from .._version import __version__
from ._arrays import histology_features, normalised_coords
from ._checks import check_encoder, check_genes
from ._distributed import decode_distributed
from ._point import point_prediction
from ._write import check_free, write_prediction

if TYPE_CHECKING:
    import torch
    from anndata import AnnData
    from spatialdata import SpatialData

    from ..model import GenAR


@supports_copy
@doc_params
def predict(
    sdata: SpatialData,
    model: GenAR,
    *,
    sections: str | Sequence[str] | None = None,
    layer_added: str = _keys.PREDICTED_LAYER,
    point: Literal["estimate", "mode"] = "estimate",
    n_paths: int = 1,
    n_samples: int = 1,
    temperature: float | None = None,
    top_k: int | None = None,
    random_state: int = 0,
    quantiles: Sequence[float] = _keys.DEFAULT_QUANTILES,
    keep_samples: bool = True,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    table_key: str = _keys.PANEL_TABLE,
    embedding_key: str = _keys.HISTOLOGY,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
    **trainer_kwargs: Any,
) -> None:
    """Predict raw counts of the model's genes for the spots of ``sections`` and write them into layers.

    No ground truth is needed: only the histology features (``obsm[embedding_key]``, from the same encoder as
    the model's) and spot coordinates. Two forms of the prediction are written:

    - the *estimate* for log-space metrics, ``2 ** E[log2(1 + X)] - 1`` (float): given a path through the coarser
      scales, the finest scale's expectation is exact; it is averaged over ``n_paths`` coarse paths (the greedy
      path by default) and over the networks of an ensemble (see :meth:`genar.GenAR.iter_estimates`). It is the
      prediction that minimises the expected squared error in log2(x + 1) under the model;
    - integer raw counts: by default the count nearest the estimate in log space (``point="estimate"``), or the
      most likely count at every scale (``point="mode"``, greedy decoding, the paper's top-1; for a gene that is 0
      in most spots it is 0 everywhere).

    With ``n_samples`` > 1, GenAR's predictive distribution is sampled as well: every spot is decoded ``n_samples``
    times, coarse to fine, each scale drawn given the drawn coarser ones (ancestral sampling, seeded), and the
    samples are summarised batch by batch into a mean and quantiles — predictive uncertainty per spot and gene that
    :func:`genar.tl.evaluate` checks against held-out truth.

    Parameters
    ----------
    sdata
        SpatialData with the panel table.
    model
        A trained :class:`~genar.GenAR`.
    sections
        Sections to predict (default: all).
    layer_added
        Layer that receives the integer counts; the estimate and the uncertainty layers are named after it.
    point
        How the integer counts are chosen: ``"estimate"`` (the count nearest the estimate in log space) or
        ``"mode"`` (greedy decoding; a single network only).
    n_paths
        Coarse paths the estimate averages: 1 (default) follows the greedy path; more sample paths from the model's
        distribution (seeded), at ``n_paths`` times the cost.
    n_samples
        Samples of the predictive distribution per spot (1: none). ``n_samples=100`` on a section of a few
        hundred spots takes about as long as 100 point predictions.
    temperature
        Sampling temperature. Default: the one :func:`genar.tl.calibrate` stored in the model, else 1 (the model's
        own distribution).
    top_k
        Sample only among the ``top_k`` most likely counts at every position (default: all).
    {random_state}
        It drives a dedicated :class:`torch.Generator`.
    quantiles
        Quantiles of the samples to write (default: the 5% and 95% of a 90% interval). They are recorded in the
        provenance, where :func:`genar.tl.evaluate` and :func:`genar.pl.uncertainty` find them.
    keep_samples
        Keep the samples themselves in ``obsm`` (``n_spots × n_samples × n_genes`` counts); needed for the
        ranked probability score in :func:`genar.tl.evaluate`. Turn off for very large slides.
    batch_size
        Spots per decoding batch.
    {device}
    {table_key}
    {embedding_key}
    {overwrite}
    {show_progress_bar}

    Returns
    -------
    Nothing (or the copy); sets in ``sdata.tables[table_key]``

    ``layers[layer_added]``
        int32 counts ``(n_spots, n_genes)`` in the model's gene order; rows of other sections are 0 unless
        predicted before. A table without genes (from :func:`genar.pp.make_spots`) first gets the model's genes
        (``var['genar_measured']`` False), and its ``X`` holds the prediction too, ready for ``scanpy``.
    ``layers[f'{layer_added}_estimate']``
        float32 estimate ``2 ** E[log2(1 + X)] - 1``: score it with
        ``genar.tl.evaluate(sdata, predicted_layer=f'{layer_added}_estimate')``.
    ``layers[f'{layer_added}_mean']``, ``layers[f'{layer_added}_q05']``, ``layers[f'{layer_added}_q95']``
        With ``n_samples`` > 1: the mean of the samples (float32) and their quantiles (int32; one layer per
        entry of ``quantiles``, named by its percentage).
    ``obsm[f'{layer_added}_samples']``
        With ``n_samples`` > 1 and ``keep_samples``: the samples, uint16 (int32 if the cap needs it); a call with
        another ``n_samples`` starts the array anew.
    ``obs[f'{layer_added}_predicted']``, ``obs[f'{layer_added}_sampled']``, ``obs[f'{layer_added}_samples_kept']``
        Which spots hold predictions, which were sampled (their quantile layers are valid), and whose samples are
        kept; :func:`genar.tl.evaluate` uses only what is valid for every spot of a section.
    ``uns['genar_predictions'][layer_added]``
        Provenance: model config hash, genar version, encoder, decoding settings, the quantiles, the layers written.
    """
    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` (or `genar.pp.make_spots`) first.")
    check_encoder(table, model, embedding_key)
    if table.n_vars == 0:  # spots without measurements (genar.pp.make_spots): the model's panel becomes the genes
        table = _add_model_genes(sdata, table_key, model)
    check_genes(table, model)
    chosen = check_sections(sections, sections_of(table))
    if point not in ("estimate", "mode"):
        msg = f"`point` must be 'estimate' or 'mode'; got {point!r}."
        raise ValueError(msg)
    sampled = n_samples > 1
    keys = PredictionKeys(layer_added, as_quantiles(quantiles) if sampled else ())
    rows = section_mask(table, chosen)
    check_free(table, keys, rows, overwrite=overwrite, sampled=sampled)

    calibrated = model.calibration.get("temperature")
    source = "given" if temperature is not None else ("calibrated" if calibrated is not None else "default")
    temperature = float(temperature if temperature is not None else (calibrated or 1.0))
    features, coords = histology_features(table, embedding_key)[rows], normalised_coords(table)[rows]
    if trainer_kwargs:
        precision = trainer_kwargs.get("precision")
        if precision is not None and str(precision) not in ("32", "32-true"):
            msg = (
                f"`precision={precision!r}`: genar.tl.predict decodes in float32 (bfloat16 decoding measured no faster "
                "on the CPU and can flip the argmax of near-tied coarse tokens); leave `precision` out. Mixed "
                "precision is for training: `genar.tl.fit(..., precision='bf16-mixed')`."
            )
            raise ValueError(msg)
        if n_paths != 1 or sampled or device is not None:
            msg = (
                f"Decoding in several processes (Trainer arguments {sorted(trainer_kwargs)}) gives the deterministic "
                f"estimate and counts: `n_paths` and `n_samples` must be 1 and `device` unset (got n_paths={n_paths}, "
                f"n_samples={n_samples}, device={device!r}); choose the hardware with `accelerator=`."
            )
            raise ValueError(msg)
        estimate, counts = decode_distributed(
            model,
            features,
            coords,
            point=point,
            batch_size=batch_size,
            show_progress_bar=settings.progress(show_progress_bar),
            trainer_kwargs=trainer_kwargs,
        )
        decoded, samples = {keys.layer: counts, keys.estimate: estimate}, None
    else:
        decoded, samples = decode(
            model,
            features,
            coords,
            keys=keys,
            point=point,
            n_paths=n_paths,
            n_samples=n_samples,
            keep_samples=keep_samples,
            sampling={"temperature": temperature, "top_k": top_k},
            random_state=random_state,
            batch_size=batch_size,
            device=device,
            show_progress_bar=show_progress_bar,
        )
    record = {
        "model_config_hash": model.config.hash(),
        "genar_version": __version__,
        "encoder": model.encoder.get("name"),
        "cap": model.cap,
        "sections": list(chosen),
        "point": point,
        "n_paths": n_paths,
        "n_models": len(model.members),
        "n_samples": n_samples,
        "temperature": temperature,
        "temperature_source": source,
        "top_k": top_k,
        "random_state": random_state,
        "layers": list(decoded),
        "quantiles": list(keys.quantiles),
        "samples_key": keys.samples if samples is not None else "",
        "trainer": {k: str(v) for k, v in trainer_kwargs.items()},
    }
    columns = table.var_names.get_indexer(model.genes)
    write_prediction(table, keys, rows, columns, decoded, samples=samples, sampled=sampled, record=record)
    if _keys.panel_params(table).get("predicted_only"):
        table.X = table.layers[layer_added].copy()  # nothing was measured: X holds the counts scanpy should use
    logger.info("added layers %s for %d spots of %s", list(decoded), int(rows.sum()), chosen)


def decode(
    model: GenAR,
    features: np.ndarray,
    coords: np.ndarray,
    *,
    keys: PredictionKeys,
    point: Literal["estimate", "mode"],
    n_paths: int,
    n_samples: int,
    keep_samples: bool,
    sampling: dict[str, Any],
    **common: Any,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The layers of a prediction (name → ``(spots, model genes)``) and, when kept, the samples.

    The estimate and the integer counts always; with ``n_samples`` > 1 the samples are summarised batch by batch
    into their mean and the quantiles of ``keys``, so memory holds one batch of samples besides the kept ones.
    """
    estimate, counts = point_prediction(model, features, coords, point=point, n_paths=n_paths, **common)
    layers = {keys.layer: counts, keys.estimate: estimate}
    if n_samples == 1:
        return layers, None
    n_spots, n_genes = len(features), len(model.genes)
    mean = np.empty((n_spots, n_genes), dtype=np.float32)
    quantiles = {q: np.empty((n_spots, n_genes), dtype=np.int32) for q in keys.quantiles}
    dtype = np.uint16 if model.cap < 2**16 else np.int32
    samples = np.empty((n_spots, n_samples, n_genes), dtype=dtype) if keep_samples else None
    for batch, tokens in model.iter_predictions(
        features, coords, n_samples=n_samples, greedy=False, **sampling, **common
    ):
        mean[batch] = tokens.mean(axis=0)
        for q, values in quantiles.items():
            values[batch] = np.quantile(tokens, q, axis=0, method="inverted_cdf")
        if samples is not None:
            samples[batch] = np.moveaxis(tokens, 0, 1)
    layers[keys.mean] = mean
    layers.update({keys.quantile(q): values for q, values in quantiles.items()})
    return layers, samples


def _add_model_genes(sdata: SpatialData, table_key: str, model: GenAR) -> AnnData:
    """Replace a table without genes by one with the model's panel as (unmeasured) genes, keeping every spot slot."""
    import anndata as ad
    import pandas as pd
    from scipy import sparse
    from spatialdata.models import TableModel

    old = sdata.tables[table_key]
    var = pd.DataFrame(index=pd.Index(model.genes))
    var[_keys.MEASURED] = False
    new = ad.AnnData(
        X=sparse.csr_matrix((old.n_obs, len(model.genes)), dtype=np.int32),
        obs=old.obs.copy(),
        var=var,
        obsm=dict(old.obsm.items()),
        uns=dict(old.uns.items()),
    )
    params = {"n_genes": len(model.genes), "genes_from": "model", "predicted_only": True, "unmeasured_genes": []}
    new.uns[_keys.PANEL] = {**old.uns.get(_keys.PANEL, {}), "params": params}
    new = TableModel.parse(new)  # the annotation (spatialdata_attrs) came with uns
    del sdata.tables[table_key]
    sdata.tables[table_key] = new
    logger.info("table %r had no genes: added the model's %d genes (predicted, not measured)", table_key, new.n_vars)
    return new
