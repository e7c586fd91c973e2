"""Pathology foundation models (and ImageNet ResNet-50) as registry entries, with their documented preprocessing."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import nn

from ._base import CNN_GPU_DTYPE, IMAGENET_MEAN, IMAGENET_STD, VIT_GPU_DTYPE, EncoderSpec
from ._hub import fetch_weights, load_into, read_state_dict
from ._timm import build_vit
from ._vit import ResNet50, ViTArgs

#: H-optimus-0/1 normalisation (bioptimus model cards).
HOPTIMUS_MEAN = (0.707223, 0.578729, 0.703617)
HOPTIMUS_STD = (0.211883, 0.230117, 0.177517)
#: OpenAI CLIP normalisation, used by CONCH.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_SWIGLU = {"mlp_layer": "swiglu_packed", "init_values": 1e-5}
#: Architectures from the model cards (timm arguments).
VIT_ARGS = {
    "uni": ViTArgs(patch_size=16, embed_dim=1024, depth=24, num_heads=16, init_values=1e-5),
    "uni2_h": ViTArgs(
        patch_size=14,
        embed_dim=1536,
        depth=24,
        num_heads=24,
        mlp_ratio=2.66667 * 2,
        reg_tokens=8,
        no_embed_class=True,
        **_SWIGLU,
    ),
    "h_optimus_0": ViTArgs(
        patch_size=14,
        embed_dim=1536,
        depth=40,
        num_heads=24,
        mlp_ratio=2.66667 * 2,
        reg_tokens=4,
        no_embed_class=True,
        **_SWIGLU,
    ),
    "virchow2": ViTArgs(
        patch_size=14,
        embed_dim=1280,
        depth=32,
        num_heads=16,
        mlp_ratio=5.3375,
        reg_tokens=4,
        global_pool="token+mean",
        **_SWIGLU,
    ),
    "phikon_v2": ViTArgs(patch_size=16, embed_dim=1024, depth=24, num_heads=16, init_values=1e-5),
    # the published config.json of the tile encoder: timm's vit_giant_patch14_dinov2 (a packed SwiGLU MLP, which the
    # config does not override) with patch 16 and ratio 5.33334; genar's port had a GELU MLP here, which timm's own
    # build of the architecture showed (tests/encoders/test_timm_parity.py)
    "prov_gigapath": ViTArgs(patch_size=16, embed_dim=1536, depth=40, num_heads=24, mlp_ratio=5.33334, **_SWIGLU),
}
VIT_ARGS["h_optimus_1"] = VIT_ARGS["h_optimus_0"]
#: The timm architecture each model card builds with ``timm.create_model`` (its arguments are ``VIT_ARGS``).
TIMM_ARCHITECTURES = {
    "uni": "vit_large_patch16_224",
    "uni2_h": "vit_giant_patch14_224",
    "h_optimus_0": "vit_giant_patch14_reg4_dinov2",
    "h_optimus_1": "vit_giant_patch14_reg4_dinov2",
    "virchow2": "vit_huge_patch14_224",
    "phikon_v2": "vit_large_patch16_224",
    "prov_gigapath": "vit_giant_patch14_dinov2",
}


def vit_from_weights(args: ViTArgs, repo_id: str, *, architecture: str, convert: Callable | None = None) -> nn.Module:
    """Build the ViT (with timm when it imports) and load the published weights of ``repo_id``.

    See :func:`fetch_weights` for where the weights come from, and :func:`build_vit` for timm and its fallback.
    """
    path = fetch_weights(repo_id)
    state = read_state_dict(path)
    if convert is not None:
        state = convert(state)
    return build_vit(args, state, architecture=architecture, source=f"{repo_id} ({path})")


def dinov2_from_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hugging Face ``Dinov2Model`` parameter names (Phikon-v2) to timm's ViT names."""
    out = {
        "cls_token": state["embeddings.cls_token"],
        "pos_embed": state["embeddings.position_embeddings"],
        "patch_embed.proj.weight": state["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": state["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": state["layernorm.weight"],
        "norm.bias": state["layernorm.bias"],
    }
    depth = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    for i in range(depth):
        src, dst = f"encoder.layer.{i}.", f"blocks.{i}."
        attn = src + "attention."
        for kind in ("weight", "bias"):
            out[dst + f"attn.qkv.{kind}"] = torch.cat(
                [state[attn + f"attention.{p}.{kind}"] for p in ("query", "key", "value")]
            )
            out[dst + f"attn.proj.{kind}"] = state[attn + f"output.dense.{kind}"]
            for norm in ("norm1", "norm2"):
                out[dst + f"{norm}.{kind}"] = state[src + f"{norm}.{kind}"]
            for fc in ("fc1", "fc2"):
                out[dst + f"mlp.{fc}.{kind}"] = state[src + f"mlp.{fc}.{kind}"]
        out[dst + "ls1.gamma"] = state[src + "layer_scale1.lambda1"]
        out[dst + "ls2.gamma"] = state[src + "layer_scale2.lambda1"]
    return out


def resnet50_imagenet() -> nn.Module:
    """ResNet-50 with torchvision's ImageNet weights, as published by timm (``timm/resnet50.tv_in1k``)."""
    path = fetch_weights("timm/resnet50.tv_in1k")
    return load_into(ResNet50(), read_state_dict(path), source=f"timm/resnet50.tv_in1k ({path})")


class _Conch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        try:
            from conch.open_clip_custom import create_model_from_pretrained
        except ImportError as err:
            msg = (
                "CONCH is loaded by its own package: `pip install git+https://github.com/Mahmoodlab/CONCH.git`, "
                "then accept the model's terms at https://huggingface.co/MahmoodLab/conch and log in (`hf auth login`)."
            )
            raise ImportError(msg) from err
        self.model, _ = create_model_from_pretrained("conch_ViT-B-16", "hf_hub:MahmoodLab/conch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x, proj_contrast=False, normalize=False)


def timm_folder_spec(name: str, folder: str | Path, *, description: str = "") -> EncoderSpec:
    """An encoder from a local timm model folder: ``config.json`` (timm's hub format) and its weights.

    ``config.json`` holds ``architecture``, ``model_args`` (timm's arguments of a ``VisionTransformer``) and
    ``pretrained_cfg`` (``input_size``, ``mean``, ``std``), as ``timm`` writes it with ``push_to_hf_hub`` or
    ``save_for_hf``; the weights are ``model.safetensors`` or ``pytorch_model.bin``. Built with
    ``timm.create_model(architecture, **model_args)`` when timm imports, else with genar's plain-torch port.
    """
    folder = Path(folder)
    config_file = folder / "config.json"
    if not config_file.is_file():
        msg = f"{folder} is not a timm model folder: config.json is missing."
        raise FileNotFoundError(msg)
    config = json.loads(config_file.read_text())
    if "vit" not in str(config.get("architecture", "")):
        msg = f"{folder}: architecture {config.get('architecture')!r} is not a ViT; genar loads timm ViTs."
        raise ValueError(msg)
    model_args = dict(config.get("model_args", {}))
    if "global_pool" in config and "global_pool" not in model_args:
        model_args["global_pool"] = config["global_pool"]
    args = ViTArgs.from_timm(model_args)
    cfg = config.get("pretrained_cfg", {})
    size = int(cfg.get("input_size", [3, args.img_size, args.img_size])[-1])
    if size != args.img_size:
        msg = f"{folder}: pretrained_cfg input_size {size} differs from the model's img_size {args.img_size}."
        raise ValueError(msg)
    weights = next((folder / f for f in ("model.safetensors", "pytorch_model.bin") if (folder / f).is_file()), None)
    if weights is None:
        msg = f"{folder} holds no model.safetensors or pytorch_model.bin."
        raise FileNotFoundError(msg)
    return EncoderSpec(
        name=name,
        build=lambda: build_vit(
            args, read_state_dict(weights), architecture=str(config["architecture"]), source=str(weights)
        ),
        dim=args.dim,
        input_size=args.img_size,
        mean=tuple(cfg.get("mean", IMAGENET_MEAN)),
        std=tuple(cfg.get("std", IMAGENET_STD)),
        version=f"local:{folder.name}",
        description=description or f"timm {config['architecture']} from {folder}",
        gpu_dtype=VIT_GPU_DTYPE,
    )


def foundation_specs() -> list[EncoderSpec]:
    """Registry entries of the public pathology foundation models and ImageNet ResNet-50."""
    hub = {
        "uni": ("MahmoodLab/UNI", "UNI (ViT-L/16, MahmoodLab), gated", IMAGENET_MEAN, IMAGENET_STD, None),
        "uni2_h": ("MahmoodLab/UNI2-h", "UNI2-h (ViT-H/14, MahmoodLab), gated", IMAGENET_MEAN, IMAGENET_STD, None),
        "h_optimus_0": (
            "bioptimus/H-optimus-0",
            "H-optimus-0 (ViT-g/14, bioptimus)",
            HOPTIMUS_MEAN,
            HOPTIMUS_STD,
            None,
        ),
        "h_optimus_1": (
            "bioptimus/H-optimus-1",
            "H-optimus-1 (ViT-g/14, bioptimus), gated",
            HOPTIMUS_MEAN,
            HOPTIMUS_STD,
            None,
        ),
        "virchow2": (
            "paige-ai/Virchow2",
            "Virchow2 (ViT-H/14, Paige; class + mean patch token), gated",
            IMAGENET_MEAN,
            IMAGENET_STD,
            None,
        ),
        "phikon_v2": (
            "owkin/phikon-v2",
            "Phikon-v2 (ViT-L/16 DINOv2, Owkin)",
            IMAGENET_MEAN,
            IMAGENET_STD,
            dinov2_from_transformers,
        ),
        "prov_gigapath": (
            "prov-gigapath/prov-gigapath",
            "Prov-GigaPath tile encoder (ViT-g/14), gated",
            IMAGENET_MEAN,
            IMAGENET_STD,
            None,
        ),
    }
    specs = [
        EncoderSpec(
            name=name,
            build=partial(
                vit_from_weights, VIT_ARGS[name], repo, architecture=TIMM_ARCHITECTURES[name], convert=convert
            ),
            dim=VIT_ARGS[name].dim,
            input_size=VIT_ARGS[name].img_size,
            mean=mean,
            std=std,
            version=f"hf:{repo}",
            description=f"{text}; 224 px at 0.5 µm/px. Weights from the Hugging Face hub or $GENAR_WEIGHTS_DIR.",
            microns_per_pixel=0.5,
            gpu_dtype=VIT_GPU_DTYPE,
        )
        for name, (repo, text, mean, std, convert) in hub.items()
    ]
    specs.append(
        EncoderSpec(
            name="conch",
            build=_Conch,
            dim=512,
            input_size=448,
            mean=CLIP_MEAN,
            std=CLIP_STD,
            version="hf:MahmoodLab/conch",
            description="CONCH vision encoder (ViT-B/16, MahmoodLab), gated; needs the `conch` package.",
            microns_per_pixel=0.5,
            gpu_dtype=VIT_GPU_DTYPE,
        )
    )
    specs.append(
        EncoderSpec(
            name="resnet50_imagenet",
            build=resnet50_imagenet,
            dim=2048,
            input_size=224,
            version="hf:timm/resnet50.tv_in1k",
            description="ResNet-50, torchvision ImageNet weights (via timm on the hub), pooled last layer.",
            gpu_dtype=CNN_GPU_DTYPE,
        )
    )
    return specs
