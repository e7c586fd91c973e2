"""Training streams: parts of a batch trained on at once by CPU threads give the batch's gradient, reproducibly."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from genar.module import drawing_from
from genar.train import GenARTrainingPlan


def _plan(module, **kw):
    return GenARTrainingPlan(module, cap=29, alpha=0.01, beta=1.0, lr=1e-3, **kw)


def _batch(B=6, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 5, generator=g), torch.rand(B, 2, generator=g), torch.randint(0, 29, (B, 12), generator=g)


def _gradients(plan, batch, seed=0):
    plan.module.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    losses = plan.accumulate_gradients(batch)
    return losses, [p.grad.clone() for p in plan.module.parameters() if p.grad is not None]


def test_streams_give_the_batchs_gradient(make_module):
    module = make_module().train()  # no stochastic depth nor condition dropout: the gradient is deterministic
    batch = _batch()
    one_losses, one = _gradients(_plan(module, streams=1), batch)
    three_losses, three = _gradients(_plan(module, streams=3, micro_batch_size=2), batch)
    assert len(one) == len(three)
    torch.testing.assert_close(three_losses, one_losses, rtol=1e-5, atol=1e-6)
    for a, b in zip(three, one, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_streams_draw_from_their_own_seeded_generators(make_module):
    module = make_module(drop_path=0.5, cond_dropout=0.5).train()
    plan = _plan(module, streams=2)
    batch = _batch()
    losses, grads = _gradients(plan, batch, seed=7)
    again_losses, again = _gradients(plan, batch, seed=7)
    assert torch.equal(losses, again_losses) and all(torch.equal(a, b) for a, b in zip(grads, again, strict=True))
    _, other = _gradients(plan, batch, seed=8)
    assert not all(torch.equal(a, b) for a, b in zip(grads, other, strict=True))
    # the same gradient, part by part on this thread, each part drawing from the generator its seed makes
    torch.manual_seed(7)
    seeds = torch.randint(2**62, (2,)).tolist()
    module.zero_grad(set_to_none=True)
    for (a, b), seed in zip([(0, 3), (3, 6)], seeds, strict=True):
        with drawing_from(torch.Generator().manual_seed(seed)):
            per_scale = plan._losses(*(t[a:b] for t in batch))
        ((per_scale * plan.scale_weights).sum() * (b - a) / 6).backward()
    expected = [p.grad for p in module.parameters() if p.grad is not None]
    for a, b in zip(grads, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_automatic_streams_only_where_gradients_can_be_added_up(make_module, monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    plan = _plan(make_module())
    cpu = torch.zeros(6, 5)
    assert plan.training_streams(cpu) == 4
    assert plan.training_streams(cpu[:3]) == 3  # at most one per spot
    assert plan.training_streams(torch.zeros(6, 5, device="meta")) == 1
    plan._trainer = SimpleNamespace(world_size=2, precision="32-true")
    assert plan.training_streams(cpu) == 1
    plan._trainer = SimpleNamespace(world_size=1, precision="16-mixed")
    assert plan.training_streams(cpu) == 1
    plan._trainer = SimpleNamespace(world_size=1, precision="bf16-mixed")
    assert plan.training_streams(cpu) == 4


@pytest.mark.parametrize(
    ("trainer", "device", "match"),
    [
        (None, "meta", "not training on meta"),
        (SimpleNamespace(world_size=2, precision="32-true"), "cpu", "not distributed training"),
        (SimpleNamespace(world_size=1, precision="16-mixed"), "cpu", "not precision '16-mixed'"),
    ],
)
def test_explicit_streams_where_they_cannot_run_are_refused(trainer, device, match, make_module):
    plan = _plan(make_module(), streams=2)
    plan._trainer = trainer
    with pytest.raises(ValueError, match=match):
        plan.training_streams(torch.zeros(6, 5, device=device))


@pytest.mark.parametrize("streams", [0, -2, 1.5, True])
def test_streams_must_be_a_positive_integer(streams, make_module):
    with pytest.raises(ValueError, match=r"`streams` must be a positive integer or None"):
        _plan(make_module(), streams=streams)
