"""Foundation-model encoders: timm checkpoints load into genar's plain-torch ViT and reproduce timm's output.

The references in data/ were written by timm itself (data/make_timm_reference.py): tiny randomly initialised
models covering layer scale, packed SwiGLU, register tokens, position embeddings without the prefix tokens, and
Virchow2's class + mean-patch pooling. No test touches the network.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import genar
from genar.encoders import get_encoder, get_spec, register, timm_folder_spec
from genar.encoders._foundation import VIT_ARGS, dinov2_from_transformers
from genar.encoders._vit import ResNet50, VisionTransformer

DATA = Path(__file__).parent / "data"
REFERENCES = sorted(p for p in DATA.iterdir() if (p / "config.json").is_file())


@pytest.mark.parametrize("folder", REFERENCES, ids=lambda p: p.name)
def test_timm_checkpoints_reproduce_timm_output(folder):
    spec = timm_folder_spec(f"test_{folder.name}", folder)
    reference = np.load(folder / "reference.npz")
    net = spec.build()
    with torch.no_grad():
        out = net(torch.from_numpy(reference["input"]))
    assert out.shape[1] == spec.dim
    np.testing.assert_allclose(out.numpy(), reference["output"], rtol=1e-4, atol=1e-5)


def test_a_local_timm_folder_embeds_patches_through_the_registry(prepared):
    folder = DATA / "tiny_vit_swiglu_reg_noembedclass"
    register(timm_folder_spec("tiny_local_vit", folder), overwrite=True)
    spec = get_spec("tiny_local_vit")
    assert spec.mean == pytest.approx((0.707223, 0.578729, 0.703617)) and spec.input_size == 28
    genar.pp.embed_patches(prepared, encoder="tiny_local_vit", key_added="X_tiny", show_progress_bar=False)
    table = prepared.tables["genar"]
    assert table.obsm["X_tiny"].shape == (table.n_obs, 24)
    # the same patches through the encoder by hand: resize, the card's normalisation, the network
    encoder = get_encoder("tiny_local_vit")
    patches = torch.from_numpy(genar.pp.read_patches(prepared, [0, 1, 2]))
    np.testing.assert_allclose(table.obsm["X_tiny"][:3], encoder(patches).numpy(), rtol=1e-4, atol=1e-5)
    assert table.uns["X_tiny"]["encoder"]["name"] == "tiny_local_vit"


def test_registry_lists_the_foundation_models_with_their_preprocessing():
    table = genar.encoders.available()
    for name, dim in {
        "uni": 1024,
        "uni2_h": 1536,
        "h_optimus_0": 1536,
        "h_optimus_1": 1536,
        "virchow2": 2560,
        "phikon_v2": 1024,
        "prov_gigapath": 1536,
        "conch": 512,
        "resnet50_imagenet": 2048,
    }.items():
        assert table.loc[name, "dim"] == dim, name
    assert get_spec("h_optimus_0").mean == pytest.approx((0.707223, 0.578729, 0.703617))
    assert get_spec("uni").microns_per_pixel == 0.5


def test_weights_come_from_the_local_folder_and_a_wrong_checkpoint_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(genar.encoders.WEIGHTS_DIR_ENV, str(tmp_path))
    folder = tmp_path / "MahmoodLab--UNI"
    folder.mkdir()
    shutil.copy(DATA / "tiny_vit_gelu_layerscale" / "model.safetensors", folder / "model.safetensors")
    assert genar.encoders.fetch_weights("MahmoodLab/UNI") == folder / "model.safetensors"
    with pytest.raises(ValueError, match=r"do not fit the architecture: .*shape mismatches \['cls_token: \(1, 1, 24\)"):
        get_encoder("uni")


@pytest.mark.slow
def test_a_checkpoint_in_a_local_folder_loads_into_the_registry_architecture(tmp_path, monkeypatch):
    # a UNI-shaped ViT, randomly initialised, saved where GENAR_WEIGHTS_DIR points: the real loading path end to end
    monkeypatch.setenv(genar.encoders.WEIGHTS_DIR_ENV, str(tmp_path))
    torch.manual_seed(0)
    reference = VisionTransformer(VIT_ARGS["uni"]).eval()
    (tmp_path / "MahmoodLab--UNI").mkdir()
    torch.save(reference.state_dict(), tmp_path / "MahmoodLab--UNI" / "pytorch_model.bin")
    encoder = get_encoder("uni")
    x = torch.randint(0, 256, (1, 224, 224, 3), dtype=torch.uint8)
    with torch.no_grad():
        expected = reference(encoder.preprocess(x))
    torch.testing.assert_close(encoder(x), expected)


def test_offline_and_gated_models_fail_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(genar.encoders.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError, match=r"MahmoodLab/UNI2-h could not be fetched.*set GENAR_WEIGHTS_DIR=DIR"):
        get_encoder("uni2_h")


def test_gated_encoder_weights_say_how_to_get_access(hub, monkeypatch):
    monkeypatch.delenv(genar.encoders.WEIGHTS_DIR_ENV, raising=False)
    hub.create("MahmoodLab/UNI2-h", gated=True)
    hub.commit("MahmoodLab/UNI2-h", "main", {"pytorch_model.bin": b"weights"})
    with pytest.raises(RuntimeError, match=r"gated repository: accept its terms at https://huggingface.co/MahmoodLab"):
        genar.encoders.fetch_weights("MahmoodLab/UNI2-h")
    hub.repos["MahmoodLab/UNI2-h"].gated = False
    assert genar.encoders.fetch_weights("MahmoodLab/UNI2-h").read_bytes() == b"weights"  # the second file name
    with pytest.raises(RuntimeError, match=r"MahmoodLab/absent was not found on the Hugging Face Hub"):
        genar.encoders.fetch_weights("MahmoodLab/absent")


def test_phikon_v2_transformers_names_map_onto_the_vit():
    # a Dinov2Model state dict (Hugging Face names), built from a ViT's own weights, must map back to them exactly
    args = VIT_ARGS["phikon_v2"].__class__(
        patch_size=8, embed_dim=16, depth=2, num_heads=2, init_values=0.1, img_size=16
    )
    vit = VisionTransformer(args)
    own = vit.state_dict()
    hf = {
        "embeddings.cls_token": own["cls_token"],
        "embeddings.mask_token": torch.zeros(1, 16),
        "embeddings.position_embeddings": own["pos_embed"],
        "embeddings.patch_embeddings.projection.weight": own["patch_embed.proj.weight"],
        "embeddings.patch_embeddings.projection.bias": own["patch_embed.proj.bias"],
        "layernorm.weight": own["norm.weight"],
        "layernorm.bias": own["norm.bias"],
    }
    for i in range(2):
        b, h = f"blocks.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            q, k, v = own[b + f"attn.qkv.{kind}"].chunk(3)
            hf.update(
                {
                    h + f"attention.attention.{n}.{kind}": t
                    for n, t in zip(("query", "key", "value"), (q, k, v), strict=True)
                }
            )
            hf[h + f"attention.output.dense.{kind}"] = own[b + f"attn.proj.{kind}"]
            for n in ("norm1", "norm2"):
                hf[h + f"{n}.{kind}"] = own[b + f"{n}.{kind}"]
            for n in ("fc1", "fc2"):
                hf[h + f"mlp.{n}.{kind}"] = own[b + f"mlp.{n}.{kind}"]
        hf[h + "layer_scale1.lambda1"] = own[b + "ls1.gamma"]
        hf[h + "layer_scale2.lambda1"] = own[b + "ls2.gamma"]
    mapped = dinov2_from_transformers(hf)
    assert mapped.keys() == own.keys()
    for key in own:
        torch.testing.assert_close(mapped[key], own[key])


def test_resnet50_has_torchvision_parameter_names():
    names = set(ResNet50().state_dict())
    assert "layer4.2.bn3.running_var" in names and "layer1.0.downsample.0.weight" in names
    assert len([n for n in names if n.endswith("num_batches_tracked")]) == 53  # every BatchNorm of ResNet-50
    out = ResNet50().eval()(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 2048)


def test_safetensors_round_trip_of_a_reference(tmp_path):
    folder = DATA / "tiny_vit_gelu_layerscale"
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(folder / "config.json", copy / "config.json")
    save_file(load_file(str(folder / "model.safetensors")), str(copy / "model.safetensors"))
    assert timm_folder_spec("copy", copy).dim == 24
    (copy / "config.json").write_text('{"architecture": "resnet50", "model_args": {}}')
    with pytest.raises(ValueError, match="architecture 'resnet50' is not a ViT"):
        timm_folder_spec("copy", copy)
