"""genar.tl.fit: train a GenAR model on the panel table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _keys
from .._docs import doc_params
from .._logging import logger
from .._scales import check_scales
from .._tables import section_mask, to_dense
from .._validate import check_key, check_sections, get_counts, get_table, sections_of
from ..model import GenAR, GenARConfig, checkpoint_file, choose_cap, clip_counts
from ..train import check_trainer_kwargs
from ._arrays import histology_features, normalised_coords

if TYPE_CHECKING:
    from spatialdata import SpatialData


@doc_params
def fit(
    sdata: SpatialData,
    *,
    train_sections: str | Sequence[str] | None = None,
    val_sections: str | Sequence[str] | None = None,
    config: GenARConfig | None = None,
    max_epochs: int = 50,
    random_state: int = 0,
    accelerator: str = "auto",
    table_key: str = _keys.PANEL_TABLE,
    embedding_key: str = _keys.HISTOLOGY,
    layer: str | None = _keys.COUNTS_LAYER,
    gene_group_key: str = _keys.GENE_GROUPS,
    early_stopping_patience: int | None = 10,
    show_progress_bar: bool | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume_from: str | os.PathLike | None = None,
    **trainer_kwargs: Any,
) -> GenAR:
    """Train a GenAR model to predict the panel's raw counts from histology features and spot coordinates.

    Parameters
    ----------
    sdata
        SpatialData after :func:`genar.pp.select_genes`, :func:`~genar.pp.cluster_genes` and
        :func:`~genar.pp.embed_patches`.
    train_sections
        Training sections. Default: the sections the panel was chosen on, less ``val_sections``.
    val_sections
        Validation sections: their loss is logged every epoch, training stops early when it stops improving, and
        the weights of the best epoch are kept.
    config
        Model and training settings (default :class:`~genar.GenARConfig`; :meth:`GenARConfig.paper` for the
        paper's). Its scales, when set, must match :func:`~genar.pp.cluster_genes`.
    max_epochs
        Upper bound on the epochs.
    {random_state}
        It seeds initialisation, shuffling and dropout; on the CPU the same seed gives the same model.
    accelerator
        Lightning accelerator (``'auto'``, ``'cpu'``, ``'gpu'`` ...).
    {table_key}
    {embedding_key}
    {layer}
    {gene_group_key}
    early_stopping_patience
        Epochs without improvement on ``val_sections`` before stopping; ``None`` never stops early.
    {show_progress_bar}
    checkpoint_dir
        Folder for a Lightning checkpoint after every epoch (``last.ckpt`` is the newest): weights, optimiser
        state, epoch, loss history, best weights so far and the random state.
    resume_from
        Continue an interrupted run from a checkpoint file or a ``checkpoint_dir``; call with the same data,
        ``config``, ``random_state`` and ``max_epochs`` as the interrupted run. On the CPU the result equals the
        uninterrupted run's. The checkpoint is loaded with ``weights_only=True``, so it cannot execute code.
    **trainer_kwargs
        Further arguments of :class:`lightning.Trainer`: ``devices=2, strategy="ddp"`` trains data-parallel in
        several processes (``accelerator="cpu"`` uses the gloo backend; GPUs use NCCL; add ``num_nodes`` on a
        cluster); ``logger=`` a Lightning logger (e.g. ``CSVLogger``) records the per-epoch losses too.
        ``gradient_clip_val`` and ``accumulate_grad_batches`` are refused with the genar setting to use
        (``GenARConfig(grad_clip=...)``, ``GenARConfig(batch_size=...)``): genar's step clips and accumulates
        itself. See the "Scaling out" section of the usage guide.

    Returns
    -------
    The trained :class:`~genar.GenAR`; nothing is written to ``sdata``. ``model.history`` has the per-scale and
    total loss of every epoch.

    Examples
    --------
    >>> model = genar.tl.fit(sdata, train_sections=["C2", "C3"], val_sections=["C4"])  # doctest: +SKIP
    """
    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    if resume_from is not None:
        checkpoint_file(resume_from)  # fail before any work when the checkpoint is not there
    config = GenARConfig() if config is None else config
    check_key(table.varm, gene_group_key, where="table.varm", hint="Run `genar.pp.cluster_genes` first.")
    scales = tuple(table.uns[gene_group_key]["scales"])
    check_scales(scales, table.n_vars)
    if config.scales is not None and tuple(config.scales) != scales:
        msg = (
            f"config.scales {tuple(config.scales)} differ from the gene hierarchy's {scales}. Re-run "
            f"`genar.pp.cluster_genes(sdata, scales={tuple(config.scales)})` or leave config.scales unset."
        )
        raise ValueError(msg)
    check_trainer_kwargs(trainer_kwargs)  # before any work: a refused argument is an error at once
    available = sections_of(table)
    val = [] if val_sections is None else check_sections(val_sections, available, argument="val_sections")
    if train_sections is None:
        default = _keys.panel_params(table).get("train_sections") or available
        train_sections = [s for s in default if s not in val]
    train = check_sections(train_sections, available, argument="train_sections")
    if overlap := sorted(set(train) & set(val)):
        msg = f"Sections {overlap} are in both `train_sections` and `val_sections`; a section can only be one of them."
        raise ValueError(msg)

    if _keys.MEASURED in table.var and not table.var[_keys.MEASURED].all():
        unmeasured = table.var_names[~table.var[_keys.MEASURED].to_numpy(bool)].tolist()
        msg = (
            f"The panel holds {len(unmeasured)} unmeasured genes ({unmeasured[:10]}): their counts are not data, and "
            "a model must not learn them. Train on sections that measure every panel gene, or choose the panel "
            "with `genar.pp.select_genes(sdata, genes=...)` from genes the table has."
        )
        raise ValueError(msg)
    counts_all = get_counts(table, layer)
    features = histology_features(table, embedding_key)
    coords = normalised_coords(table)
    is_train = section_mask(table, train)
    counts = to_dense(counts_all[is_train], np.int64)
    cap = choose_cap(counts, config)
    counts = clip_counts(counts, cap, what="training")
    validation = None
    if val:
        is_val = section_mask(table, val)
        val_counts = clip_counts(to_dense(counts_all[is_val], np.int64), cap, what="validation")
        validation = (features[is_val], coords[is_val], val_counts)
    if len(counts) < 2:
        msg = f"The training sections {train} hold {len(counts)} spots; training needs more."
        raise ValueError(msg)

    encoder = table.uns.get(embedding_key, {}).get("encoder", {"name": embedding_key, "dim": features.shape[1]})
    model = GenAR(
        config.replace(scales=scales), genes=table.var_names, cap=cap, feature_dim=features.shape[1], encoder=encoder
    )
    logger.info("training on %d spots of %s (validation: %s), cap %d", len(counts), train, val or "none", cap)
    model.train(
        features[is_train],
        coords[is_train],
        counts,
        validation=validation,
        max_epochs=max_epochs,
        random_state=random_state,
        accelerator=accelerator,
        early_stopping_patience=early_stopping_patience,
        show_progress_bar=show_progress_bar,
        checkpoint_dir=checkpoint_dir,
        resume_from=resume_from,
        **trainer_kwargs,
    )
    model.train_info.update(
        {
            "train_sections": list(train),
            "val_sections": list(val),
            "embedding_key": embedding_key,
            "spot_diameter_um": _spot_diameter(table, train),
        }
    )
    return model


def _spot_diameter(table, sections: list[str]) -> float | None:
    """The spots' true diameter (µm) in the training sections when they all record the same one, else None."""
    values = {table.uns.get("spatial", {}).get(s, {}).get("scalefactors", {}).get("spot_diameter_um") for s in sections}
    return float(values.pop()) if len(values) == 1 and None not in values else None
