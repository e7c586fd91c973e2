"""The training plan's loss: every scale's KL (or cross-entropy, or squared error) from one teacher-forced pass."""

from __future__ import annotations

import pytest
import torch

from genar.module import banded_kl, floor_ceil_target, gaussian_band_width, gaussian_target, group_means
from genar.train import scale_losses


def test_training_loss_per_scale_is_the_mean_kl_of_that_scale(make_module, module_inputs):

    module = make_module()
    feats, coords, _ = module_inputs(B=4)
    counts = torch.randint(0, 29, (4, 12))
    losses = scale_losses(module, feats, coords, counts, cap=29, alpha=0.01, beta=1.0)
    means = group_means(counts.float(), module.scales)
    teacher = torch.cat([m.round().long() for m in means[:-1]] + [torch.zeros_like(counts)], dim=1)
    logits = module(feats, coords, teacher)
    start = 0
    for k, n in enumerate(module.scales):
        if k + 1 < len(module.scales):
            idx, w = floor_ceil_target(means[k], 29)
        else:
            idx, w = gaussian_target(counts, 29, alpha=0.01, beta=1.0, half_width=gaussian_band_width(29, 0.01, 1.0))
        expected = banded_kl(logits[:, start : start + n], idx, w).mean()
        torch.testing.assert_close(losses[k], expected, rtol=1e-5, atol=1e-6)
        start += n


def test_cross_entropy_ablation_scores_the_exact_count_at_the_last_scale(make_module, module_inputs):

    module = make_module()
    feats, coords, _ = module_inputs(B=4)
    counts = torch.randint(0, 29, (4, 12))
    gaussian = scale_losses(module, feats, coords, counts, cap=29, alpha=0.01, beta=1.0)
    ce = scale_losses(module, feats, coords, counts, cap=29, alpha=0.01, beta=1.0, final_loss="ce")
    torch.testing.assert_close(ce[:-1], gaussian[:-1])  # the coarse scales are unchanged
    means = group_means(counts.float(), module.scales)
    teacher = torch.cat([m.round().long() for m in means[:-1]] + [torch.zeros_like(counts)], dim=1)
    logits = module(feats, coords, teacher)[:, -module.scales[-1] :]
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), counts.reshape(-1))
    torch.testing.assert_close(ce[-1], expected, rtol=1e-5, atol=1e-6)


def test_regression_head_is_trained_on_log_counts_and_decodes_their_rounded_inverse(make_module, module_inputs):

    module = make_module(head="regression")
    assert module.head.out_features == 1
    feats, coords, _ = module_inputs(B=4)
    counts = torch.randint(0, 29, (4, 12))
    losses = scale_losses(module, feats, coords, counts, cap=29, alpha=0.01, beta=1.0)
    means = group_means(counts.float(), module.scales)
    teacher = torch.cat([m.round().long() for m in means[:-1]] + [torch.zeros_like(counts)], dim=1)
    out = module(feats, coords, teacher).squeeze(-1)  # (B, L)
    start = 0
    for k, n in enumerate(module.scales):
        expected = (out[:, start : start + n] - means[k].log1p()).square().mean()
        torch.testing.assert_close(losses[k], expected, rtol=1e-5, atol=1e-6)
        start += n
    # decoding: every scale's output rounded back to counts within 0..vocab-1, fed to the next scale
    all_scales = module.generate(feats, coords, return_all_scales=True).clone()
    expected_tokens = module(feats, coords, all_scales.clone()).squeeze(-1).expm1().round().clamp(0, 29).long()
    torch.testing.assert_close(all_scales, expected_tokens)
    with pytest.raises(ValueError, match="`head` must be 'tokens' or 'regression'; got 'mse'"):
        make_module(head="mse")
