"""Write tiny randomly initialised *timm* ViTs and their outputs, the references of tests/encoders/test_foundation.py.

Run by hand (not by the tests) where timm is installed:  python tests/encoders/data/make_timm_reference.py
Each folder is what timm's ``save_for_hf`` writes (config.json + model.safetensors), plus ``reference.npz`` with an
input batch and timm's own output for it. genar's plain-torch ViT must load the folder and reproduce the output.

timm imports torchvision. Where only a CUDA build of torchvision exists next to a CPU torch, its compiled operators
fail to register; pass --stub-torchvision-ops to declare the two operators torchvision's import checks for
(non-maximum suppression, which no ViT uses) so that the real timm code runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
#: timm architectures (tiny sizes) covering every option genar's ViT implements.
MODELS = {
    "tiny_vit_gelu_layerscale": {
        "architecture": "vit_tiny_patch16_224",
        "model_args": {
            "img_size": 32,
            "patch_size": 8,
            "embed_dim": 24,
            "depth": 2,
            "num_heads": 3,
            "init_values": 1e-1,
        },
        "global_pool": "token",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    },
    "tiny_vit_swiglu_reg_noembedclass": {  # UNI2-h / H-optimus style
        "architecture": "vit_giant_patch14_reg4_dinov2",
        "model_args": {
            "img_size": 28,
            "patch_size": 7,
            "embed_dim": 24,
            "depth": 2,
            "num_heads": 2,
            "mlp_ratio": 2.66667 * 2,
            "init_values": 1e-1,
            "reg_tokens": 4,
            "no_embed_class": True,
            "mlp_layer": "swiglu_packed",
            "act_layer": "silu",
        },
        "global_pool": "token",
        "mean": [0.707223, 0.578729, 0.703617],
        "std": [0.211883, 0.230117, 0.177517],
    },
    "tiny_vit_virchow_pool": {  # Virchow2 style: registers with class-token positions, class + mean patch token
        "architecture": "vit_huge_patch14_224",
        "model_args": {
            "img_size": 28,
            "patch_size": 7,
            "embed_dim": 32,
            "depth": 2,
            "num_heads": 2,
            "mlp_ratio": 5.3375,
            "init_values": 1e-1,
            "reg_tokens": 4,
            "mlp_layer": "swiglu_packed",
            "act_layer": "silu",
        },
        "global_pool": "",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stub-torchvision-ops", action="store_true")
    args = parser.parse_args()
    if args.stub_torchvision_ops:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import timm
    from timm.layers import SwiGLUPacked
    from timm.models import VisionTransformer

    for name, spec in MODELS.items():
        kwargs = dict(spec["model_args"])
        if kwargs.get("mlp_layer") == "swiglu_packed":
            kwargs["mlp_layer"], kwargs["act_layer"] = SwiGLUPacked, torch.nn.SiLU
        torch.manual_seed(0)
        model = VisionTransformer(num_classes=0, global_pool=spec["global_pool"], **kwargs).eval()
        with torch.no_grad():  # timm initialises class/register tokens near zero: make every parameter matter
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        size = kwargs["img_size"]
        model.pretrained_cfg = {
            "architecture": spec["architecture"],
            "input_size": [3, size, size],
            "mean": spec["mean"],
            "std": spec["std"],
        }
        out = HERE / name
        out.mkdir(exist_ok=True)
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            tokens = model.forward_features(x)
            if spec["global_pool"] == "":  # how Virchow2's card pools: class token and mean patch token
                y = torch.cat([tokens[:, 0], tokens[:, model.num_prefix_tokens :].mean(1)], dim=-1)
            else:
                y = model.forward_head(tokens)
        timm.models.save_for_hf(model, out, model_args=spec["model_args"], safe_serialization=True)
        np.savez(out / "reference.npz", input=x.numpy(), output=y.numpy())
        sys.stderr.write(f"{name} {tuple(y.shape)} timm {timm.__version__}\n")


if __name__ == "__main__":
    main()
