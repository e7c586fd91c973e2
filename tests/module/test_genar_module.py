from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from genar.module import (
    banded_kl,
    block_causal_mask,
    choose_tokens,
    floor_ceil_target,
    gaussian_band_width,
    gaussian_target,
    group_means,
    transfer_matrix,
)


def test_block_causal_mask():
    mask = block_causal_mask((1, 2, 3))
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(mask, expected)


def test_transfer_matrix_broadcasts_parents():
    nested = transfer_matrix(2, 4, 8)
    assert torch.equal(nested, torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]]))
    t = transfer_matrix(4, 6, 12)  # groups of 3 genes vs groups of 2 genes
    torch.testing.assert_close(t.sum(1), torch.ones(6))
    torch.testing.assert_close(t[1], torch.tensor([0.5, 0.5, 0, 0]))  # genes 2,3 straddle groups 0 and 1


def test_group_means():
    counts = torch.arange(12.0).view(1, 12)
    means = group_means(counts, (1, 4, 12))
    torch.testing.assert_close(means[0], torch.tensor([[5.5]]))
    torch.testing.assert_close(means[1], torch.tensor([[1.0, 4, 7, 10]]))
    torch.testing.assert_close(means[2], counts)


def test_one_pass_logits_equal_per_scale_logits(make_module, module_inputs):
    module = make_module()
    feats, coords, tokens = module_inputs()
    full = module(feats, coords, tokens)
    assert full.shape == (3, sum(module.scales), 30)
    start = 0
    for k, n in enumerate(module.scales):
        prefix = module(feats, coords, tokens, n_scales=k + 1)  # sees only scales 0..k
        torch.testing.assert_close(full[:, start : start + n], prefix[:, start : start + n], rtol=1e-5, atol=1e-5)
        start += n


def test_later_tokens_do_not_leak_into_coarser_logits(make_module, module_inputs):
    module = make_module()
    feats, coords, tokens = module_inputs()
    changed = tokens.clone()
    changed[:, 3:] = (changed[:, 3:] + 7) % 30  # tokens of scales >= 2 change
    a, b = module(feats, coords, tokens), module(feats, coords, changed)
    torch.testing.assert_close(a[:, :7], b[:, :7])  # scales 0..2 read only tokens of scales 0..1
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def _uncached_generate(module, feats, coords, **kw):
    tokens = torch.zeros(feats.shape[0], sum(module.scales), dtype=torch.long)
    start = 0
    for k, n in enumerate(module.scales):
        logits = module(feats, coords, tokens, n_scales=k + 1)[:, start : start + n]
        tokens[:, start : start + n] = choose_tokens(logits, **kw)
        start += n
    return tokens


@pytest.mark.parametrize(
    ("few_queries", "threads", "by_products"),
    [(0, 2, False), (128, 2, True), (128, 1, False)],  # the flash kernel, batched products, the kernel on 1 thread
)
def test_cached_decoding_equals_uncached(few_queries, threads, by_products, make_module, module_inputs, monkeypatch):
    from genar.module import _attention

    monkeypatch.setattr(_attention, "FEW_QUERIES", few_queries)
    calls = []
    attend_by_products = _attention._attend_by_products
    monkeypatch.setattr(_attention, "_attend_by_products", lambda *a: calls.append(1) or attend_by_products(*a))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        module = make_module()
        feats, coords, _ = module_inputs(B=4)
        cached = module.generate(feats, coords, return_all_scales=True)
    finally:
        torch.set_num_threads(before)
    assert bool(calls) == by_products
    assert torch.equal(cached, _uncached_generate(module, feats, coords, greedy=True))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    sampled = module.generate(
        feats, coords, greedy=False, temperature=1.5, top_k=10, generator=g1, return_all_scales=True
    )
    assert torch.equal(
        sampled, _uncached_generate(module, feats, coords, greedy=False, temperature=1.5, top_k=10, generator=g2)
    )


def test_sampling_is_seeded_and_top1_is_greedy(make_module, module_inputs):
    module = make_module()
    feats, coords, _ = module_inputs(B=8)
    draw = lambda seed: module.generate(  # noqa: E731
        feats, coords, greedy=False, temperature=2.0, generator=torch.Generator().manual_seed(seed)
    )
    torch.manual_seed(0)
    a = draw(1)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(a, draw(1))
    assert not torch.equal(a, draw(2))
    top1 = module.generate(feats, coords, greedy=False, top_k=1, generator=torch.Generator().manual_seed(3))
    assert torch.equal(top1, module.generate(feats, coords))
    assert a.shape == (8, 12) and a.dtype == torch.long and a.min() >= 0 and a.max() < 30


def test_floor_ceil_target_expectation_is_the_mean():
    mean = torch.tensor([[0.0, 2.25, 7.5, 9.0]])
    idx, w = floor_ceil_target(mean, cap=9)
    torch.testing.assert_close((idx * w).sum(-1), mean)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 4))
    assert idx.max() <= 9


def test_gaussian_target():
    counts = torch.tensor([[0.0, 5.0, 40.0, 100.0]])
    half = gaussian_band_width(100, 0.01, 1.0)
    idx, w = gaussian_target(counts, 100, alpha=0.01, beta=1.0, half_width=half)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 4))
    mean = (idx * w).sum(-1)
    assert abs(mean[0, 2] - 40) < 1e-4  # symmetric in the interior
    assert mean[0, 0] > 0 and mean[0, 3] < 100  # truncated at 0 and at the cap
    assert torch.argmax(w[0, 1]) == half and idx[0, 1, half] == 5
    sd = ((idx[0, 2] - 40.0) ** 2 * w[0, 2]).sum().sqrt()
    assert abs(sd - (0.01 * 40 + 1)) < 0.05


def test_banded_kl_equals_dense_kl_and_is_minimal_at_the_target():
    torch.manual_seed(0)
    V = 50
    counts = torch.tensor([[3.0, 17.0, 49.0]])
    idx, w = gaussian_target(counts, V - 1, alpha=0.05, beta=1.0, half_width=gaussian_band_width(V - 1, 0.05, 1.0))
    dense = torch.zeros(1, 3, V).scatter_add_(-1, idx, w)
    logits = torch.randn(1, 3, V)
    expected = (dense * (dense.clamp_min(1e-12).log() - logits.log_softmax(-1))).sum(-1)
    torch.testing.assert_close(banded_kl(logits, idx, w), expected, rtol=1e-5, atol=1e-5)
    perfect = dense.clamp_min(1e-30).log()
    assert banded_kl(perfect, idx, w).abs().max() < 1e-4
    assert (banded_kl(perfect + 0.1 * torch.randn_like(perfect), idx, w) > banded_kl(perfect, idx, w)).all()


@pytest.mark.parametrize("score_elements", [1, 5 * 9 * 2, 1 << 20])  # one pair, 2 pairs, every pair at a time
def test_attention_by_products_equals_the_kernel(score_elements, monkeypatch):
    from genar.module import _attention

    monkeypatch.setattr(_attention, "SCORE_ELEMENTS", score_elements)
    torch.manual_seed(0)
    q = torch.randn(3, 5, 2, 4, 8).permute(0, 2, 3, 1, 4)[:, 0]  # (3, 4, 5, 8), strided as in the fused qkv
    cache = torch.randn(3, 4, 12, 8), torch.randn(3, 4, 12, 8)
    k, v = cache[0][:, :, :9], cache[1][:, :, :9]  # the first 9 positions of a cache buffer
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(_attention._attend_by_products(q, k, v), expected, rtol=1e-5, atol=1e-6)


def test_attention_scale_by_scale_equals_the_block_causal_mask():
    from genar.module import SelfAttention

    torch.manual_seed(0)
    scales = (1, 2, 4, 9)
    attn = SelfAttention(16, 4)
    x = torch.randn(3, sum(scales), 16)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    masked = attn(xa, block_causal_mask(scales))
    by_scale = attn(xb, scale_ends=[1, 3, 7, 16])
    torch.testing.assert_close(by_scale, masked, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(masked)
    (masked * g).sum().backward()
    (by_scale * g).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(attn(x), masked)  # the mask matters


@pytest.mark.parametrize("heads", [3, 5])
def test_heads_must_divide_width(heads, make_module):
    with pytest.raises(ValueError, match="must divide `width`"):
        make_module(heads=heads)


def _scale_targets(V, scales, B=2, seed=0):
    """Bands of every scale: floor/ceil for the coarser ones, a Gaussian for the last (one row a point mass)."""
    g = torch.Generator().manual_seed(seed)
    targets = [floor_ceil_target(torch.rand(B, n, generator=g) * (V - 1), V - 1) for n in scales[:-1]]
    counts = torch.randint(0, V, (B, scales[-1]), generator=g).float()
    idx, w = gaussian_target(counts, V - 1, alpha=0.1, beta=1.0, half_width=gaussian_band_width(V - 1, 0.1, 1.0))
    w[:, 0] = 0.0  # a row with its mass on one token
    w[:, 0, 0] = 1.0
    return [*targets, (idx, w)]


def _reference_scale_kl(h, head, targets, scales):
    """The same loss through autograd on the dense logits."""
    logits, out, start = head(h), [], 0
    for n, (idx, w) in zip(scales, targets, strict=True):
        out.append(banded_kl(logits[:, start : start + n], idx, w).mean())
        start += n
    return torch.stack(out)


def test_head_scale_kl_matches_autograd(monkeypatch):
    from genar.module import _targets, head_scale_kl

    monkeypatch.setattr(_targets, "CHUNK_ELEMENTS", 3 * 40)  # several chunks of 3 rows within a scale
    torch.manual_seed(0)
    V, C, scales = 40, 8, (1, 2, 5)
    targets = _scale_targets(V, scales)
    head_a, head_b = torch.nn.Linear(C, V), torch.nn.Linear(C, V)
    head_b.load_state_dict(head_a.state_dict())
    h = torch.randn(2, sum(scales), C)
    ha, hb = h.clone().requires_grad_(True), h.clone().requires_grad_(True)
    ref = _reference_scale_kl(ha, head_a, targets, scales)
    fused = head_scale_kl(hb, head_b, targets, scales)
    torch.testing.assert_close(fused, ref, rtol=1e-5, atol=1e-6)
    g = torch.randn(len(scales))  # any upstream gradient of the per-scale losses
    (ref * g).sum().backward()
    (fused * g).sum().backward()
    torch.testing.assert_close(hb.grad, ha.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(head_b.weight.grad, head_a.weight.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(head_b.bias.grad, head_a.bias.grad, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # validation: the same losses, no gradient work
        torch.testing.assert_close(head_scale_kl(h, head_b, targets, scales), ref.detach(), rtol=1e-5, atol=1e-6)


def test_head_scale_kl_under_bfloat16_autocast_is_float32_and_close_to_full_precision():
    from genar.module import head_scale_kl

    torch.manual_seed(0)
    V, C, scales = 300, 64, (1, 4, 16)
    targets = _scale_targets(V, scales, B=8)
    head = torch.nn.Linear(C, V)
    h = torch.randn(8, sum(scales), C, requires_grad=True)
    full = head_scale_kl(h, head, targets, scales)
    (g_full,) = torch.autograd.grad(full.sum(), h)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = head_scale_kl(h, head, targets, scales)
    assert low.dtype == torch.float32
    (g_low,) = torch.autograd.grad(low.sum(), h)
    assert g_low.dtype == h.dtype
    torch.testing.assert_close(low, full, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(g_low, g_full, rtol=5e-2, atol=5e-3)
    assert not torch.equal(low, full)  # the multiplies did run in bfloat16


def test_without_gene_film_the_output_ignores_gene_identity(make_module, module_inputs):
    feats, coords, tokens = module_inputs(B=2)
    module = make_module(gene_film=False)
    before = module(feats, coords, tokens)
    with torch.no_grad():
        module.gene_embed.normal_()
    torch.testing.assert_close(module(feats, coords, tokens), before)
    with_film = make_module()
    reference = with_film(feats, coords, tokens)
    with torch.no_grad():
        with_film.gene_embed.normal_()
    assert not torch.allclose(with_film(feats, coords, tokens), reference)


@pytest.mark.parametrize("chunk_rows", [3, None])  # chunks of 3 rows of logits (the last one short), or one chunk
def test_expectation_at_the_finest_scale_is_exact_given_the_decoded_coarse_scales(
    chunk_rows, make_module, module_inputs, monkeypatch
):
    from genar.module import _genar

    if chunk_rows is not None:  # 32 padded tokens a row
        monkeypatch.setattr(_genar, "DECODE_CHUNK_ELEMENTS", chunk_rows * 32)
    module = make_module()
    feats, coords, _ = module_inputs(B=5)
    values = torch.log2(1 + torch.arange(30.0))
    tokens, expected = module.decode_expectation(feats, coords, values)
    assert torch.equal(tokens, module.generate(feats, coords))  # the same greedy path and final tokens
    path = module.generate(feats, coords, return_all_scales=True).clone()  # out of inference mode
    assert torch.equal(path, _uncached_generate(module, feats, coords, greedy=True))  # argmax over padded chunks
    with torch.no_grad():
        logits = module(feats, coords, path)[:, -module.scales[-1] :]  # the finest scale given the decoded coarse ones
    torch.testing.assert_close(expected, logits.softmax(-1) @ values, rtol=1e-5, atol=1e-6)
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    sampled, _ = module.decode_expectation(feats, coords, values, greedy=False, generator=g1)
    assert torch.equal(sampled, module.generate(feats, coords, greedy=False, generator=g2))
    regression = make_module(head="regression")
    tokens, expected = regression.decode_expectation(feats, coords, values)
    torch.testing.assert_close(expected, values[tokens])  # a point mass at the decoded count


def test_head_scale_kl_passes_gradcheck_in_float64(monkeypatch):
    from genar.module import _targets, head_scale_kl

    monkeypatch.setattr(_targets, "CHUNK_ELEMENTS", 2 * 12)  # chunks of 2 rows
    torch.manual_seed(0)
    V, C, scales = 12, 4, (1, 3)
    targets = [(i, w.double()) for i, w in _scale_targets(V, scales)]
    head = torch.nn.Linear(C, V).double()
    h = torch.randn(2, sum(scales), C, dtype=torch.float64, requires_grad=True)

    def loss(h, weight, bias):  # the layer's weights as inputs of their own, for gradcheck to vary
        return head_scale_kl(h, SimpleNamespace(weight=weight, bias=bias), targets, scales)

    weight, bias = head.weight.detach().requires_grad_(), head.bias.detach().requires_grad_()
    assert loss(h, weight, bias).dtype == torch.float64
    assert torch.autograd.gradcheck(loss, (h, weight, bias))


@pytest.mark.parametrize("vocab", [30, 64])
def test_padded_output_layer_gives_the_layers_logits(vocab):
    from genar.module._output_layer import ROW_MULTIPLE, output_logits, padded_output_layer

    torch.manual_seed(0)
    layer = torch.nn.Linear(8, vocab)
    weight, bias = padded_output_layer(layer.weight, layer.bias)
    assert weight.shape[0] % ROW_MULTIPLE == 0 and weight.shape[0] - vocab < ROW_MULTIPLE
    assert torch.equal(weight[:vocab], layer.weight) and not weight[vocab:].any() and not bias[vocab:].any()
    h = torch.randn(5, 8)
    logits = output_logits(h, weight, bias, vocab)
    assert logits.shape == (5, vocab)
    torch.testing.assert_close(logits, layer(h))
    low, _ = padded_output_layer(layer.weight, layer.bias, torch.bfloat16)
    assert low.dtype == torch.bfloat16
    _, masked = padded_output_layer(layer.weight, layer.bias, bias_fill=float("-inf"))  # what decoding uses
    assert torch.equal(masked[:vocab], layer.bias) and bool((masked[vocab:] == float("-inf")).all())


def test_block_causal_attention_on_the_cpu_kernel_passes_gradcheck_in_float64():
    from genar.module._attention import _BlockCausalFlashCPU

    torch.manual_seed(0)
    qkv = torch.randn(2, 7, 3, 2, 3, dtype=torch.float64, requires_grad=True)  # (B, L, q/k/v, heads, head dim)
    assert torch.autograd.gradcheck(lambda x: _BlockCausalFlashCPU.apply(x, (1, 3, 7)), (qkv,))
    q, k, v = qkv.detach().permute(2, 0, 3, 1, 4).unbind(0)
    mask = block_causal_mask((1, 2, 4))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2)
    torch.testing.assert_close(_BlockCausalFlashCPU.apply(qkv.detach(), (1, 3, 7)), expected)
