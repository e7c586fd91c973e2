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
    greedy: bool | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    table_key: str = _keys.PANEL_TABLE,
    embedding_key: str = _keys.HISTOLOGY,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
) -> None:
    """Predict raw counts of the model's genes for the spots of ``sections`` and write them into a layer.

    No ground truth is needed: only the histology features (``obsm[embedding_key]``, from the same encoder as
    the model's) and spot coordinates.

    Parameters
    ----------
    sdata
        SpatialData with the panel table.
    model
        A trained :class:`~genar.GenAR`.
    sections
        Sections to predict (default: all).
    layer_added
        Layer that receives the counts.
    n_samples
        Decoding runs per spot. With more than one, tokens are sampled and the layer holds the rounded mean.
    greedy
        Most likely token at every scale (deterministic). Default: ``True`` for one sample, else ``False``.
    temperature, top_k, seed
        Sampling settings; the seed drives a dedicated :class:`torch.Generator`.
    batch_size, device
        Spots per decoding batch, and the torch device.
    table_key, embedding_key
        Where the spots and their features are.
    overwrite
        Allow replacing predictions already in ``layer_added`` for these spots.
    show_progress_bar
        Progress bar (default ``genar.settings.show_progress_bar``).

    copy
        Return a modified copy of ``sdata`` instead of changing it in place (as scanpy's ``copy=``). The copy
        holds copies of the tables and shapes; image elements are shared, since genar never writes to them.

    Returns
    -------
    Nothing; sets in ``sdata.tables[table_key]``

    ``layers[layer_added]``
        int32 counts ``(n_spots, n_genes)`` in the model's gene order; rows of other sections are 0 unless
        predicted before.
    ``obs[f'{layer_added}_predicted']``
        Which spots hold predictions.
    ``uns['genar']['predict'][layer_added]``
        Provenance: model config hash, genar version, encoder, decoding settings.
    """
    from .. import __version__

    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` (or `genar.pp.make_spots`) first.")
    _check_genes(table, model)
    _check_encoder(table, model, embedding_key)
    chosen = check_sections(sections, sections_of(table))
    rows = section_mask(table, chosen)
    flag = f"{layer_added}_predicted"
    already = table.obs[flag].to_numpy(bool) if flag in table.obs else np.zeros(table.n_obs, bool)
    if layer_added in table.layers and (already & rows).any() and not overwrite:
        msg = (
            f"table.layers[{layer_added!r}] already holds predictions for sections "
            f"{sorted(set(table.obs.loc[already & rows, _keys.SECTION].astype(str)))}. Pass `overwrite=True` to "
            "replace them, or another `layer_added`."
        )
        raise ValueError(msg)

    features = histology_features(table, embedding_key)[rows]
    coords = normalised_coords(table)[rows]
    samples = model.predict_counts(
        features,
        coords,
        n_samples=n_samples,
        greedy=greedy,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
        batch_size=batch_size,
        device=device,
        show_progress_bar=show_progress_bar,
    )
    counts = samples[0] if n_samples == 1 else np.rint(samples.mean(axis=0)).astype(np.int32)
    order = table.var_names.get_indexer(model.genes)
    layer = np.zeros(table.shape, dtype=np.int32)
    if layer_added in table.layers:
        old = table.layers[layer_added]
        layer[:] = np.asarray(old.toarray() if hasattr(old, "toarray") else old)
    block = layer[rows]
    block[:, order] = counts
    layer[rows] = block
    table.layers[layer_added] = layer
    table.obs[flag] = already | rows
    greedy_used = n_samples == 1 if greedy is None else greedy
    record = {
        "model_config_hash": model.config.hash(),
        "genar_version": __version__,
        "encoder": model.encoder.get("name"),
        "cap": model.cap,
        "sections": list(chosen),
        "n_samples": n_samples,
        "greedy": bool(greedy_used),
        "temperature": float(temperature),
        "top_k": top_k,
        "seed": seed,
        "aggregate": "single" if n_samples == 1 else "rounded mean of samples",
    }
    table.uns.setdefault(_keys.PANEL_TABLE, {}).setdefault("predict", {})[layer_added] = record
    logger.info("added `layers[%r]` for %d spots of %s", layer_added, int(rows.sum()), chosen)


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
