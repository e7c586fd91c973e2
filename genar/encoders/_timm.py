"""Vision transformers built by ``timm.create_model`` when timm can be imported, by genar's plain-torch port otherwise.

The published pathology encoders are timm models, so timm is the reference: where it imports, genar builds them with
``timm.create_model`` (the architecture named on the model card, with the card's arguments) and loads the published
weights into it. timm needs torchvision, whose compiled operators do not always load next to a given torch build
(e.g. a CPU torch with a CUDA torchvision); then, or without timm, genar's port in :mod:`._vit` is used: the same
parameters under the same names, checked equal to timm by ``tests/encoders/test_timm_parity.py``.
"""

from __future__ import annotations

import functools
from dataclasses import fields
from types import ModuleType
from typing import Any

import torch
from torch import nn

from .._logging import logger
from ._hub import load_into
from ._vit import VisionTransformer, ViTArgs


@functools.cache
def timm_or_none() -> ModuleType | None:
    """The timm module, or None when it is not installed or cannot be imported (logged at debug level)."""
    try:
        import timm
    except Exception as err:  # noqa: BLE001 - any import failure (e.g. torchvision's operators) means: use the port
        logger.debug("timm cannot be imported (%s: %s); ViTs use genar's plain-torch port", type(err).__name__, err)
        return None
    return timm


def timm_kwargs(args: ViTArgs) -> dict[str, Any]:
    """``timm.create_model`` arguments of a :class:`ViTArgs` (pooling is done outside timm)."""
    from timm.layers import Mlp, SwiGLUPacked

    kwargs = {f.name: getattr(args, f.name) for f in fields(args) if f.name not in ("mlp_layer", "global_pool")}
    # always explicit: an architecture's defaults (e.g. the DINOv2 giant's SwiGLU) must not stand in silently
    packed = args.mlp_layer == "swiglu_packed"
    kwargs["mlp_layer"], kwargs["act_layer"] = (SwiGLUPacked, nn.SiLU) if packed else (Mlp, nn.GELU)
    return kwargs


class PooledTimmViT(nn.Module):
    """A timm ViT (no head, no pooling) whose tokens are pooled as :class:`ViTArgs.global_pool` says."""

    def __init__(self, vit: nn.Module, args: ViTArgs) -> None:
        super().__init__()
        self.vit = vit
        self.args = args

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        x = self.vit.forward_features(x_BCHW)  # final norm included
        if self.args.global_pool == "token+mean":
            return torch.cat([x[:, 0], x[:, self.args.num_prefix_tokens :].mean(dim=1)], dim=-1)
        return x[:, 0]


def build_vit(
    args: ViTArgs, state: dict[str, torch.Tensor], *, architecture: str, source: str, use_timm: bool | None = None
) -> nn.Module:
    """A ViT with ``state`` loaded: through ``timm.create_model(architecture, ...)`` when timm imports, else the port.

    ``use_timm`` forces one way (``True`` raises when timm cannot be imported); the default takes timm when it can.
    """
    timm = timm_or_none() if use_timm is not False else None
    if use_timm and timm is None:
        msg = "`use_timm=True` but timm cannot be imported: `pip install timm` (with a torchvision that fits torch)."
        raise ImportError(msg)
    if timm is None:
        return load_into(VisionTransformer(args), state, source=source)
    vit = timm.create_model(architecture, pretrained=False, num_classes=0, global_pool="", **timm_kwargs(args))
    load_into(vit, state, source=source)
    return PooledTimmViT(vit, args).eval()
