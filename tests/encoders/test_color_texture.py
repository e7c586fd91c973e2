"""The colour/texture statistics, vectorised, equal their definition written out the plain way."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from genar.encoders import get_encoder
from genar.encoders._color_texture import (
    _HED_FROM_RGB,
    N_FEATURES,
    order_statistics,
    order_statistics_by_passes,
    quantiles,
)


def definition(x_BCHW: torch.Tensor) -> torch.Tensor:
    """The 46 features as first written (genar-1): full sorts for the quantiles, one-hot histogram, sqrt energy."""
    qs = torch.tensor([0.1, 0.5, 0.9])

    def stats(x_BCN):
        q_QBC = torch.quantile(x_BCN, qs, dim=2)
        return torch.cat([x_BCN.mean(2), x_BCN.std(2), q_QBC.permute(1, 0, 2).flatten(1)], dim=1)

    rgb = x_BCHW.clamp(0, 1).flatten(2)
    od = -torch.log(rgb.clamp_min(1 / 255))
    hed = torch.einsum("sc,bcn->bsn", _HED_FROM_RGB.T, od)
    grey = x_BCHW.mean(1)
    texture, g = [], grey.unsqueeze(1)
    for _ in range(3):
        dx = g[..., :, 1:] - g[..., :, :-1]
        dy = g[..., 1:, :] - g[..., :-1, :]
        energy = (dx[..., :-1, :] ** 2 + dy[..., :, :-1] ** 2).sqrt().flatten(1)
        texture += [energy.mean(1), energy.std(1)]
        g = F.avg_pool2d(g, 2)
    grey_BN = grey.flatten(1)
    fractions = [(grey_BN > 0.85).float().mean(1), (hed[:, 0] > 0.5).float().mean(1)]
    bins = torch.bucketize(grey_BN.contiguous(), torch.linspace(0, 1, 9)[1:-1])
    hist = F.one_hot(bins, 8).float().mean(1)
    return torch.cat([stats(rgb), stats(hed), torch.stack(texture + fractions, 1), hist], dim=1)


def test_features_equal_their_definition_on_real_looking_patches():
    rng = np.random.default_rng(0)
    # H&E-like: pink/purple stroma and nuclei, white background, and a flat patch (ties in every quantile)
    patches = rng.integers(0, 256, (5, 224, 224, 3), dtype=np.uint8)
    patches[1] = np.clip(rng.normal([200, 120, 180], 25, (224, 224, 3)), 0, 255).astype(np.uint8)
    patches[2] = 245
    patches[3, :112] = 250
    encoder = get_encoder("color_texture")
    with torch.inference_mode():
        x = encoder.preprocess(torch.from_numpy(patches))
        got, expected = encoder.net(x), definition(x)
    assert got.shape == (5, N_FEATURES)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [1, 2, 7, 12544])
def test_quantiles_by_counting_equal_torch_quantile(n):
    x = torch.from_numpy(np.random.default_rng(n).normal(size=(3, 2, n)).astype(np.float32))
    q = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    torch.testing.assert_close(quantiles(x, q), torch.quantile(x, q, dim=-1).permute(1, 2, 0))


BOTH_WAYS = pytest.mark.parametrize(
    "order_statistics", [order_statistics, order_statistics_by_passes], ids=["compiled loops", "tensor passes"]
)


@BOTH_WAYS
def test_order_statistics_equal_sorting_with_ties_flat_rows_and_ranks_in_any_order(order_statistics):
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(6, 5000)).astype(np.float32))
    x[1] = 0.25  # one value throughout: every rank ties
    x[2] = torch.from_numpy(rng.integers(0, 4, 5000).astype(np.float32))  # four values, heavy ties across bins
    x[3, :4990] = 1.0  # one crowded bin, the rest spread
    x[4] = torch.from_numpy(rng.lognormal(0, 3, 5000).astype(np.float32))  # long tail: most values in one bin
    ranks = torch.tensor([4999, 0, 2500, 499, 500, 4500, 2500])
    expected = torch.sort(x, dim=1).values[:, ranks]
    assert torch.equal(order_statistics(x, ranks), expected)
    assert torch.equal(order_statistics(x, ranks, n_bins=3), expected)
    assert torch.equal(order_statistics(x, ranks, n_bins=1), expected)  # one bin: the rows sorted whole
    assert torch.equal(order_statistics(x, ranks, n_bins=70_000), expected)  # bin indices past 16 bits


@BOTH_WAYS
def test_order_statistics_of_patch_channels_with_many_ties_equal_sorting(order_statistics):
    x = torch.from_numpy(np.random.default_rng(4).uniform(0, 1, (12, 112 * 112)).astype(np.float32)).round(decimals=3)
    ranks = torch.tensor([1254, 6271, 11288, 1255, 6272, 11289])
    expected = torch.sort(x, dim=1).values[:, ranks]
    assert torch.equal(order_statistics(x, ranks), expected)


@BOTH_WAYS
def test_order_statistics_of_a_strided_view_equal_those_of_its_copy(order_statistics):
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(300, 8)).astype(np.float32)).T  # (8, 300), strided
    ranks = torch.tensor([0, 29, 150, 299])
    assert torch.equal(order_statistics(x, ranks), torch.sort(x.contiguous(), dim=1).values[:, ranks])


def test_encoder_runs_on_the_threads_its_network_asks_for_and_restores_the_setting():
    encoder = get_encoder("color_texture")
    seen = []
    encoder.net.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    patches = torch.zeros((2, 224, 224, 3), dtype=torch.uint8)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        encoder(patches)
        assert seen == [1] and torch.get_num_threads() == 2
        with pytest.raises(TypeError, match="must be uint8"):
            encoder(patches.float())  # an error inside restores the setting too
        assert torch.get_num_threads() == 2
        # Beside a network that takes every thread, the light part does too: a limit belongs to the whole run.
        default = get_encoder("default")
        default.encoders[1].net.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
        assert default.cpu_threads is None
        default(patches)
        pair = get_encoder("color_texture+color_texture")
        pair.encoders[0].net.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
        pair(patches)
        assert seen == [1, 2, 1] and torch.get_num_threads() == 2
        torch.set_num_threads(4)  # a share, not a count: half of four
        encoder(patches)
        assert seen[-1] == 2 and torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)
