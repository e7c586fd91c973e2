"""Turn patches into histology features with an encoder from :mod:`genar.encoders`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .. import _keys
from .._copy import supports_copy
from .._device import accelerator_device_type, page_locked_uint8, resolve_device
from .._docs import doc_params
from .._logging import logger
from .._settings import settings
from .._validate import check_key, check_overwrite, get_table
from ._embed_distributed import embed_distributed
from ._patch_reader import default_threads
from ._patches import iter_patches

if TYPE_CHECKING:
    import torch
    from spatialdata import SpatialData


@supports_copy
@doc_params
def embed_patches(
    sdata: SpatialData,
    *,
    encoder: str = "default",
    batch_size: int = 64,
    device: str | torch.device | None = None,
    precision: Literal["auto", "32"] = "auto",
    table_key: str = _keys.PANEL_TABLE,
    patches_key: str = _keys.PATCHES,
    key_added: str = _keys.HISTOLOGY,
    overwrite: bool = False,
    show_progress_bar: bool | None = None,
    **trainer_kwargs: Any,
) -> None:
    """Embed every spot's H&E patch with a histology encoder.

    Patches are read lazily, batch by batch, from the image pyramids (see :func:`extract_patches`), resized
    to the encoder's input size and normalised as the encoder expects.

    Parameters
    ----------
    sdata
        SpatialData after :func:`extract_patches`.
    encoder
        Name in :func:`genar.encoders.available`, ``'default'``, or several names joined by ``'+'``. The default
        (``'efficientnet_lite0_mid+color_texture'``) was chosen by measurement on the her2st sections: see
        ``benchmarks/encoder_choice.py``.
    batch_size
        Patches per forward pass.
    {device}
    precision
        ``'auto'``: on a CUDA GPU each network runs under autocast in its own reduced precision (float16 for the
        EfficientNets and ResNet-50, bfloat16 for the vision transformers; float32 for the colour/texture statistics),
        and batches are read into page-locked memory and copied to the GPU asynchronously. ``'32'``: float32 on every
        device. On the CPU both run float32. Features from the two differ by the reduced precision's rounding (about
        1e-3 relative in float16), so embed the slides of one analysis with one setting.
    {table_key}
    {patches_key}
    key_added
        Key of the outputs.
    {overwrite}
    {show_progress_bar}
    **trainer_kwargs
        Arguments of :class:`lightning.Trainer` to embed in several processes, GPUs or nodes with
        ``Trainer.predict``, as :func:`genar.tl.fit` trains and :func:`genar.tl.predict` decodes:
        ``accelerator="gpu", devices=4, strategy="ddp"`` (from a script; Lightning launches it once per process).
        Each process reads and embeds its share of the batches; every process gets all features in row order,
        equal to one process's.

    Returns
    -------
    Nothing; sets in ``sdata.tables[table_key]``

    ``obsm[key_added]``
        float32 features, shape ``(n_spots, dim)``.
    ``uns[key_added]``
        ``{'encoder': {...name, dim, version, input size, normalisation...}, 'params': {...}}``.
    """
    import torch
    from tqdm.auto import tqdm

    from ..encoders import describe, get_encoder
    from ..encoders._base import compute_dtypes, use_reduced_precision

    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    check_key(table.obsm, patches_key, where="table.obsm", hint="Run `genar.pp.extract_patches` first.")
    check_overwrite(
        key_added in table.obsm, f"Histology features (obsm[{key_added!r}])", overwrite=overwrite, rename="key_added"
    )
    if batch_size < 1:
        msg = f"`batch_size` must be at least 1; got {batch_size}."
        raise ValueError(msg)
    if precision not in ("auto", "32"):
        msg = (
            f"`precision` must be 'auto' (reduced precision on a GPU) or '32' (float32 everywhere); got {precision!r}."
        )
        raise ValueError(msg)
    info = describe(encoder)
    show = settings.progress(show_progress_bar)
    model = get_encoder(encoder)
    use_reduced_precision(model, enabled=precision == "auto")
    if trainer_kwargs:
        if device is not None:
            msg = f"Pass the hardware of a distributed embedding as `accelerator=`, not `device`={device!r}."
            raise ValueError(msg)
        dev = trainer_kwargs.get("accelerator", "auto")
        device_type = accelerator_device_type(str(dev))
        features = embed_distributed(
            sdata,
            table,
            model,
            info["dim"],
            batch_size=batch_size,
            patches_key=patches_key,
            pin_memory=device_type == "cuda",
            show_progress_bar=show,
            trainer_kwargs=trainer_kwargs,
        )
    else:
        dev = resolve_device(device)
        device_type = dev.type
        model = model.to(dev)
        features = np.empty((table.n_obs, info["dim"]), dtype=np.float32)
        pinned = None
        if dev.type == "cuda":  # the reader writes into page-locked memory, which the GPU copies asynchronously
            px = int(table.uns[patches_key]["params"]["patch_px"])
            pinned = page_locked_uint8(2, (batch_size, px, px, 3))
        buffers = None if pinned is None else [t.numpy() for t in pinned]
        with tqdm(total=table.n_obs, desc=f"embed ({info['name']})", unit="patch", disable=not show) as bar:
            batches = iter_patches(
                sdata,
                batch_size=batch_size,
                table_key=table_key,
                patches_key=patches_key,
                buffers=buffers,
                n_threads=reader_threads(model, dev.type),
            )
            for k, (rows, patches) in enumerate(batches):
                # pinned: the page-locked tensor that `patches` is a view of, so that the copy does not wait
                batch = torch.from_numpy(patches) if pinned is None else pinned[k % 2][: len(rows)]
                batch = batch.to(dev, non_blocking=pinned is not None)
                features[rows] = model(batch).cpu().numpy()  # waits for the GPU: the buffer is free for a later batch
                bar.update(len(rows))
    if not np.isfinite(features).all():
        msg = f"Encoder {info['name']!r} produced non-finite features; check the images and the encoder weights."
        raise FloatingPointError(msg)
    table.obsm[key_added] = features
    table.uns[key_added] = {
        "encoder": info,
        "params": {
            "batch_size": batch_size,
            "device": str(dev),
            "precision": precision,
            "compute_dtypes": compute_dtypes(model, device_type),
            "patches_key": patches_key,
        },
    }
    logger.info("added `obsm[%r]`: %d × %d features from %s", key_added, *features.shape, info["name"])


def reader_threads(model, device_type: str) -> int | None:
    """Threads for reading patches beside ``model`` (None: the reader's default, all cores up to 8).

    An encoder that runs on the CPU with a share of the threads (``cpu_threads``: colour/texture on half) leaves the
    other cores to reading, and the reader takes just those, never more than its default: on 2 cores, one reader
    thread beside colour/texture's one made ``embed_patches`` ~5% faster than two (988–1,015 against 927–969
    patches/s, alternating runs), where the default encoder, on every thread, measured the same either way.
    """
    if device_type != "cpu" or model.cpu_threads is None:
        return None
    return max(1, min(default_threads(), (os.cpu_count() or 1) - model.cpu_threads))
