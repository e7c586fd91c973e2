"""Resizing uint8 patches to the encoder's input: the integer halving equals PyTorch's antialiased bilinear."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from genar.encoders import get_encoder
from genar.encoders._color_texture import N_FEATURES
from genar.encoders._resize import halve_antialiased, resize_patches


def interpolated(patches_BHWC: torch.Tensor, size: int) -> torch.Tensor:
    x = patches_BHWC.permute(0, 3, 1, 2).float() / 255
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def random_patches(n: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize(("height", "width"), [(2, 2), (4, 2), (6, 10), (224, 224)])
def test_halving_equals_antialiased_bilinear_interpolation(height, width, layout):
    patches = random_patches(3, height, width)
    patches[0] = 255  # the largest sums
    got = halve_antialiased(patches, layout)
    x = patches.permute(0, 3, 1, 2).float() / 255
    expected = F.interpolate(x, size=(height // 2, width // 2), mode="bilinear", antialias=True, align_corners=False)
    assert got.is_contiguous(memory_format=layout)
    torch.testing.assert_close(got, expected, rtol=0, atol=2.5e-7)
    assert torch.equal(got[0], torch.ones_like(got[0]))  # rounds once: full white stays exactly 1


@pytest.mark.parametrize(("height", "width"), [(2, 2), (4, 2), (6, 10), (224, 224)])
def test_halving_on_one_thread_runs_compiled_and_gives_the_same_floats(height, width, monkeypatch):
    from genar.encoders import _halve_cpu

    compiled = _halve_cpu.halve_into_planes
    calls = []
    monkeypatch.setattr(_halve_cpu, "halve_into_planes", lambda *a: calls.append(1) or compiled(*a))
    patches = random_patches(3, height, width, seed=height + width)
    patches[0] = 255
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one_thread = halve_antialiased(patches, torch.contiguous_format)
        channels_last = halve_antialiased(patches, torch.channels_last)  # PyTorch's passes: planar output only
        assert len(calls) == 1
        torch.set_num_threads(2)
        two_threads = halve_antialiased(patches, torch.contiguous_format)  # PyTorch's passes
        assert len(calls) == 1
    finally:
        torch.set_num_threads(threads)
    assert one_thread.is_contiguous() and channels_last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(one_thread, two_threads) and torch.equal(one_thread, channels_last)


def test_resize_takes_the_integer_path_only_for_exact_halving_and_keeps_sizes_it_need_not_change():
    for height, size in [(224, 112), (200, 112), (112, 112), (50, 112)]:
        patches = random_patches(2, height, height, seed=height)
        got = resize_patches(patches, size, torch.contiguous_format)
        assert got.shape == (2, 3, size, size)
        torch.testing.assert_close(got, interpolated(patches, size), rtol=0, atol=2.5e-7)
    same = random_patches(1, 112, 112)
    assert torch.equal(resize_patches(same, 112, torch.channels_last), same.permute(0, 3, 1, 2).float() / 255)


def test_color_texture_features_of_224_px_patches_are_unchanged_by_the_integer_halving():
    patches = random_patches(4, 224, 224, seed=3)
    patches[1] = torch.from_numpy(
        np.clip(np.random.default_rng(4).normal([200, 120, 180], 25, (224, 224, 3)), 0, 255).astype(np.uint8)
    )
    encoder = get_encoder("color_texture")
    with torch.inference_mode():
        got = encoder(patches)
        expected = encoder.net(interpolated(patches, 112))
    # Continuous statistics within float tolerance. The two fractions and the grey histogram count pixels against
    # thresholds: a grey value exactly on a bin edge, which one rounding keeps there, may fall on the other side in
    # PyTorch's float path, moving a feature by one pixel's share (1 / 112²).
    counted = slice(N_FEATURES - 10, N_FEATURES)
    continuous = torch.ones(N_FEATURES, dtype=torch.bool)
    continuous[counted] = False
    torch.testing.assert_close(got[:, continuous], expected[:, continuous], rtol=1e-5, atol=1e-5)
    assert (got[:, counted] - expected[:, counted]).abs().max() <= 2 / 112**2
