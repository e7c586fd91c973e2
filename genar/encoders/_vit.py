"""Vision transformers and ResNet-50 in plain torch, with timm's parameter names, for pathology foundation models.

The public pathology encoders (UNI, UNI2-h, H-optimus, Virchow2, Prov-GigaPath) publish timm checkpoints. Where timm
imports, genar builds them with it (:mod:`._timm`); timm needs torchvision, whose CPU build is not always installable
next to a given torch, so these modules hold the same parameters under the same names, the published state dicts load
as they are, and only torch is needed (checked against timm itself by ``tests/encoders/test_timm_parity.py`` and the
references of ``tests/encoders/data/make_timm_reference.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ViTArgs:
    """Architecture of a timm ``VisionTransformer`` (the arguments genar supports; timm's names).

    ``mlp_layer`` is ``"mlp"`` (fc1 → GELU → fc2) or ``"swiglu_packed"`` (timm's ``SwiGLUPacked``: fc1 to twice
    the gate width, ``silu(a) * b``, fc2). ``global_pool`` is ``"token"`` (the class token) or
    ``"token+mean"`` (class token and mean patch token concatenated, as Virchow2 is used).
    """

    img_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    init_values: float | None = None
    class_token: bool = True
    reg_tokens: int = 0
    no_embed_class: bool = False
    mlp_layer: str = "mlp"
    global_pool: str = "token"

    @classmethod
    def from_timm(cls, model_args: dict[str, Any]) -> ViTArgs:
        """From the ``model_args`` of a timm ``config.json``; arguments genar does not implement are an error."""
        known = {f.name for f in fields(cls)}
        args = {k: v for k, v in model_args.items() if k not in ("num_classes", "dynamic_img_size")}
        if args.get("in_chans", 3) != 3:
            msg = f"Only RGB ViTs are supported; this one takes {args['in_chans']} channels."
            raise ValueError(msg)
        args.pop("in_chans", None)
        if args.get("mlp_layer") in ("SwiGLUPacked", "timm.layers.SwiGLUPacked", "swiglu_packed"):
            args["mlp_layer"] = "swiglu_packed"
            if args.pop("act_layer", "silu") not in ("silu", "SiLU", "torch.nn.SiLU"):
                msg = "A packed SwiGLU MLP must use SiLU (`act_layer`)."
                raise ValueError(msg)
        elif args.pop("act_layer", "gelu") not in ("gelu", "GELU", "torch.nn.GELU"):
            msg = "genar's ViT MLP uses GELU; another `act_layer` is not supported."
            raise ValueError(msg)
        unknown = sorted(set(args) - known)
        if unknown:
            msg = f"timm model arguments {unknown} are not supported by genar's ViT; supported: {sorted(known)}."
            raise ValueError(msg)
        if args.get("global_pool") == "":
            args["global_pool"] = "token+mean"
        return cls(**args)

    @property
    def num_prefix_tokens(self) -> int:
        """Class and register tokens before the patch tokens."""
        return int(self.class_token) + self.reg_tokens

    @property
    def dim(self) -> int:
        """Feature dimension of the pooled output."""
        return self.embed_dim * (2 if self.global_pool == "token+mean" else 1)


class _LayerScale(nn.Module):
    def __init__(self, dim: int, init_values: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, *, qkv_bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x_BNC: torch.Tensor) -> torch.Tensor:
        B, N, C = x_BNC.shape
        q, k, v = self.qkv(x_BNC).view(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, *, packed_swiglu: bool) -> None:
        super().__init__()
        self.packed_swiglu = packed_swiglu
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden // 2 if packed_swiglu else hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x)
        if self.packed_swiglu:
            gate, value = x.chunk(2, dim=-1)
            x = F.silu(gate) * value
        else:
            x = F.gelu(x)
        return self.fc2(x)


class _Block(nn.Module):
    def __init__(self, a: ViTArgs) -> None:
        super().__init__()
        d = a.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = _Attention(d, a.num_heads, qkv_bias=a.qkv_bias)
        self.ls1 = _LayerScale(d, a.init_values) if a.init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = _Mlp(d, int(d * a.mlp_ratio), packed_swiglu=a.mlp_layer == "swiglu_packed")
        self.ls2 = _LayerScale(d, a.init_values) if a.init_values else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class _PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    """A timm-compatible ViT that returns pooled features ``(B, args.dim)`` for ``(B, 3, img_size, img_size)``."""

    def __init__(self, args: ViTArgs) -> None:
        super().__init__()
        if args.mlp_layer not in ("mlp", "swiglu_packed") or args.global_pool not in ("token", "token+mean"):
            msg = f"Unsupported ViT options: mlp_layer={args.mlp_layer!r}, global_pool={args.global_pool!r}."
            raise ValueError(msg)
        if not args.class_token:
            msg = "genar's ViT pools the class token; a model without one is not supported."
            raise ValueError(msg)
        self.args = args
        d = args.embed_dim
        grid = args.img_size // args.patch_size
        self.patch_embed = _PatchEmbed(args.patch_size, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        if args.reg_tokens:
            self.reg_token = nn.Parameter(torch.zeros(1, args.reg_tokens, d))
        n_pos = grid * grid + (0 if args.no_embed_class else args.num_prefix_tokens)
        self.pos_embed = nn.Parameter(torch.zeros(1, n_pos, d))
        self.blocks = nn.Sequential(*(_Block(args) for _ in range(args.depth)))
        self.norm = nn.LayerNorm(d, eps=1e-6)

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x_BCHW)
        B = x.shape[0]
        prefix = [self.cls_token.expand(B, -1, -1)]
        if self.args.reg_tokens:
            prefix.append(self.reg_token.expand(B, -1, -1))
        if self.args.no_embed_class:  # position embeddings for the patches only
            x = torch.cat([*prefix, x + self.pos_embed], dim=1)
        else:
            x = torch.cat([*prefix, x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        if self.args.global_pool == "token+mean":
            return torch.cat([x[:, 0], x[:, self.args.num_prefix_tokens :].mean(dim=1)], dim=-1)
        return x[:, 0]


class _Bottleneck(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    """ResNet-50 with torchvision's (and timm's ``resnet50``) parameter names; returns pooled ``(B, 2048)``."""

    def __init__(self, layers: tuple[int, ...] = (3, 4, 6, 3)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inplanes = 64
        for i, (n, planes) in enumerate(zip(layers, (64, 128, 256, 512), strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(_Bottleneck(inplanes, planes, 2 if (j == 0 and i > 0) else 1))
                inplanes = planes * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))
