"""genar.tl.predict: decode raw counts for spots and write them into a layer of the panel table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import _keys
from .._copy import supports_copy
from .._logging import logger
from .._validate import check_sections, get_table, sections_of
from ._arrays import histology_features, normalised_coords, section_mask

if TYPE_CHECKING:
    import torch
    from anndata import AnnData
    from spatialdata import SpatialData

    from ..model import GenAR


@supports_copy
def predict(
    sdata: SpatialData,
    model: GenAR,
    *,
    sections: str | Sequence[str] | None = None,
    layer_added: str = "genar_counts",
    n_samples: int = 1,
    greedy: bool = True,
    temperature: float | None = None,
    top_k: int | None = None,
    seed: int = 0,
    quantiles: Sequence[float] = (0.05, 0.95),
    keep_samples: bool = True,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    table_key: str = _keys.PANEL_TABLE,
    embedding_key: str = _keys.HISTOLOGY,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
) -> None:
    """Predict raw counts of the model's genes for the spots of ``sections`` and write them into layers.

    No ground truth is needed: only the histology features (``obsm[embedding_key]``, from the same encoder as
    the model's) and spot coordinates. The point prediction is the most likely count at every scale (greedy
    decoding). With ``n_samples`` > 1, GenAR's predictive distribution is sampled as well: every spot is decoded
    ``n_samples`` times, coarse to fine, each scale drawn given the drawn coarser ones (ancestral sampling, seeded),
    and the samples are summarised batch by batch into a mean and quantiles — predictive uncertainty per spot and
    gene that :func:`genar.tl.evaluate` checks against held-out truth.

    Parameters
    ----------
    sdata
        SpatialData with the panel table.
    model
        A trained :class:`~genar.GenAR`.
    sections
        Sections to predict (default: all).
    layer_added
        Layer that receives the point prediction; the uncertainty layers are named after it.
    n_samples
        Samples of the predictive distribution per spot (1: none). ``n_samples=100`` on a section of a few
        hundred spots takes about as long as 100 point predictions.
    greedy
        Point prediction by greedy decoding (default). ``False``: with one sample, the point prediction is a
        sample; with several, it is their mean rounded to counts.
    temperature
        Sampling temperature. Default: the one :func:`genar.tl.calibrate` stored in the model, else 1 (the model's
        own distribution).
    top_k, seed
        Sampling settings; the seed drives a dedicated :class:`torch.Generator`, so results are reproducible.
    quantiles
        Quantiles of the samples to write (default: the 5% and 95% of a 90% interval).
    keep_samples
        Keep the samples themselves in ``obsm`` (``n_spots × n_samples × n_genes`` counts); needed for the
        ranked probability score in :func:`genar.tl.evaluate`. Turn off for very large slides.
    batch_size, device
        Spots per decoding batch, and the torch device.
    table_key, embedding_key
        Where the spots and their features are.
    overwrite
        Allow replacing predictions already in these layers for these spots.
    show_progress_bar
        Progress bar (default ``genar.settings.show_progress_bar``).

    Returns
    -------
    Nothing (or the copy); sets in ``sdata.tables[table_key]``

    ``layers[layer_added]``
        int32 counts ``(n_spots, n_genes)`` in the model's gene order; rows of other sections are 0 unless
        predicted before. A table without genes (from :func:`genar.pp.make_spots`) first gets the model's genes
        (``var['genar_measured']`` False), and its ``X`` holds the prediction too, ready for ``scanpy``.
    ``layers[f'{layer_added}_mean']``, ``layers[f'{layer_added}_q05']``, ``layers[f'{layer_added}_q95']``
        With ``n_samples`` > 1: the mean of the samples (float32) and their quantiles (int32; one layer per
        entry of ``quantiles``, named by its percentage).
    ``obsm[f'{layer_added}_samples']``
        With ``n_samples`` > 1 and ``keep_samples``: the samples, uint16 (int32 if the cap needs it); a call with
        another ``n_samples`` starts the array anew.
    ``obs[f'{layer_added}_predicted']``, ``obs[f'{layer_added}_sampled']``, ``obs[f'{layer_added}_samples_kept']``
        Which spots hold predictions, which were sampled (their quantile layers are valid), and whose samples are
        kept; :func:`genar.tl.evaluate` uses only what is valid for every spot of a section.
    ``uns['genar']['predict'][layer_added]``
        Provenance: model config hash, genar version, encoder, decoding settings, the layers written.
    """
    from .. import __version__

    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` (or `genar.pp.make_spots`) first.")
    _check_encoder(table, model, embedding_key)
    if table.n_vars == 0:  # spots without measurements (genar.pp.make_spots): the model's panel becomes the genes
        table = _add_model_genes(sdata, table_key, model)
    _check_genes(table, model)
    chosen = check_sections(sections, sections_of(table))
    quantiles = [float(q) for q in quantiles]
    if n_samples > 1 and not all(0 <= q <= 1 for q in quantiles):
        msg = f"`quantiles` must lie in [0, 1]; got {quantiles}."
        raise ValueError(msg)
    names = {"point": layer_added}
    if n_samples > 1:
        names["mean"] = f"{layer_added}_mean"
        names.update({q: quantile_layer(layer_added, q) for q in quantiles})
    rows = section_mask(table, chosen)
    flag = f"{layer_added}_predicted"
    already = table.obs[flag].to_numpy(bool) if flag in table.obs else np.zeros(table.n_obs, bool)
    clash = [name for name in names.values() if name in table.layers]
    if clash and (already & rows).any() and not overwrite:
        msg = (
            f"table.layers {clash} already hold predictions for sections "
            f"{sorted(set(table.obs.loc[already & rows, _keys.SECTION].astype(str)))}. Pass `overwrite=True` to "
            "replace them, or another `layer_added`."
        )
        raise ValueError(msg)

    calibrated = model.calibration.get("temperature")
    source = "given" if temperature is not None else ("calibrated" if calibrated is not None else "default")
    temperature = float(temperature if temperature is not None else (calibrated or 1.0))
    features = histology_features(table, embedding_key)[rows]
    coords = normalised_coords(table)[rows]
    common = {"seed": seed, "batch_size": batch_size, "device": device, "show_progress_bar": show_progress_bar}
    sampling = {"temperature": temperature, "top_k": top_k}
    n_rows, n_genes = int(rows.sum()), len(model.genes)
    outputs: dict[str | float, np.ndarray] = {}
    if n_samples == 1 or greedy:
        point = model.predict_counts(features, coords, n_samples=1, greedy=greedy, **sampling, **common)[0]
        outputs["point"] = point
    samples = None
    if n_samples > 1:
        outputs["mean"] = np.empty((n_rows, n_genes), dtype=np.float32)
        for q in quantiles:
            outputs[q] = np.empty((n_rows, n_genes), dtype=np.int32)
        if keep_samples:
            samples = np.empty((n_rows, n_samples, n_genes), dtype=np.uint16 if model.cap < 2**16 else np.int32)
        for batch, tokens in model.iter_predictions(
            features, coords, n_samples=n_samples, greedy=False, **sampling, **common
        ):
            outputs["mean"][batch] = tokens.mean(axis=0)
            for q in quantiles:
                outputs[q][batch] = np.quantile(tokens, q, axis=0, method="inverted_cdf")
            if samples is not None:
                samples[batch] = np.moveaxis(tokens, 0, 1)
        if not greedy:
            outputs["point"] = np.rint(outputs["mean"]).astype(np.int32)

    order = table.var_names.get_indexer(model.genes)
    for key, values in outputs.items():
        _write_rows(table, names[key], rows, order, values)
    if table.uns.get(_keys.PANEL_TABLE, {}).get("params", {}).get("predicted_only"):
        table.X = table.layers[layer_added].copy()  # nothing was measured: X holds the counts scanpy should use
    samples_key = f"{layer_added}_samples"
    kept = table.obs[f"{samples_key}_kept"].to_numpy(bool) if f"{samples_key}_kept" in table.obs else None
    if samples is not None:
        stored = table.obsm.get(samples_key)
        if stored is None or stored.shape[1:] != (n_samples, table.n_vars) or stored.dtype != samples.dtype:
            stored, kept = np.zeros((table.n_obs, n_samples, table.n_vars), dtype=samples.dtype), None
        stored[np.ix_(np.flatnonzero(rows), np.arange(n_samples), order)] = samples
        table.obsm[samples_key] = stored
    if samples is not None or kept is not None:
        kept = np.zeros(table.n_obs, bool) if kept is None else kept
        kept[rows] = samples is not None
        table.obs[f"{samples_key}_kept"] = kept
    sampled = table.obs[f"{layer_added}_sampled"].to_numpy(bool) if f"{layer_added}_sampled" in table.obs else None
    if n_samples > 1 or sampled is not None:
        sampled = np.zeros(table.n_obs, bool) if sampled is None else sampled
        sampled[rows] = n_samples > 1
        table.obs[f"{layer_added}_sampled"] = sampled
    table.obs[flag] = already | rows
    record = {
        "model_config_hash": model.config.hash(),
        "genar_version": __version__,
        "encoder": model.encoder.get("name"),
        "cap": model.cap,
        "sections": list(chosen),
        "n_samples": n_samples,
        "greedy": bool(greedy),
        "temperature": temperature,
        "temperature_source": source,
        "top_k": top_k,
        "seed": seed,
        "point": "greedy" if greedy else ("sample" if n_samples == 1 else "rounded mean of samples"),
        "layers": [str(v) for v in names.values()],
        "quantiles": quantiles if n_samples > 1 else [],
        "samples_key": samples_key if samples is not None else "",
    }
    table.uns.setdefault(_keys.PANEL_TABLE, {}).setdefault("predict", {})[layer_added] = record
    logger.info("added layers %s for %d spots of %s", list(names.values()), n_rows, chosen)


def quantile_layer(layer: str, q: float) -> str:
    """Name of the layer holding quantile ``q`` of the samples of ``layer`` (e.g. ``genar_counts_q05``)."""
    percent = q * 100
    label = f"{int(round(percent)):02d}" if abs(percent - round(percent)) < 1e-9 else f"{percent:g}".replace(".", "p")
    return f"{layer}_q{label}"


def _write_rows(table: AnnData, name: str, rows: np.ndarray, order: np.ndarray, values: np.ndarray) -> None:
    """Put ``values`` (rows × model genes) into ``layers[name]`` at ``rows`` and the model genes' columns."""
    layer = np.zeros(table.shape, dtype=values.dtype)
    if name in table.layers:
        old = table.layers[name]
        layer[:] = np.asarray(old.toarray() if hasattr(old, "toarray") else old)
    block = layer[rows]
    block[:, order] = values
    layer[rows] = block
    table.layers[name] = layer


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
    new.uns[_keys.PANEL_TABLE] = {**old.uns.get(_keys.PANEL_TABLE, {}), "params": params}
    new = TableModel.parse(new)  # the annotation (spatialdata_attrs) came with uns
    del sdata.tables[table_key]
    sdata.tables[table_key] = new
    logger.info("table %r had no genes: added the model's %d genes (predicted, not measured)", table_key, new.n_vars)
    return new


def _check_genes(table: AnnData, model: GenAR) -> None:
    missing = [g for g in model.genes if g not in table.var_names]
    if missing:
        msg = (
            f"The table lacks {len(missing)} of the model's {len(model.genes)} genes: {missing[:20]}. Predict into a "
            "table with the model's panel (e.g. `genar.pp.select_genes(sdata, genes=model.genes)`)."
        )
        raise KeyError(msg)


def _check_encoder(table: AnnData, model: GenAR, embedding_key: str) -> None:
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
