import pytest
import torch

from genar.module._blocks import AdaLNBlock, DropPath
from genar.module._random import drawing_from


def test_drop_path_drops_whole_samples_and_rescales_the_kept():
    drop = DropPath(0.5).train()
    x = torch.ones(400, 3, 2)
    with drawing_from(torch.Generator().manual_seed(0)):
        y = drop(x)
    per_sample = y.flatten(1)
    assert torch.all(per_sample == per_sample[:, :1])  # one draw per sample
    kept = per_sample[:, 0] > 0
    assert torch.allclose(per_sample[kept], torch.full_like(per_sample[kept], 2.0))
    assert 0.35 < kept.float().mean() < 0.65
    assert drop.eval()(x) is x


def test_drop_path_gate_is_the_same_draw_folded_into_the_gate():
    drop = DropPath(0.3).train()
    gate, branch = torch.randn(8, 1, 5), torch.randn(8, 7, 5)
    with drawing_from(torch.Generator().manual_seed(1)):
        expected = drop(gate * branch)
    with drawing_from(torch.Generator().manual_seed(1)):
        folded = drop.gate(gate) * branch
    torch.testing.assert_close(folded, expected)
    assert drop.eval().gate(gate) is gate


@pytest.mark.parametrize("training", [False, True])
def test_block_matches_the_unfused_residuals(training):
    torch.manual_seed(0)
    block = AdaLNBlock(16, 2, 2.0, drop_path=0.4).train(training)
    with torch.no_grad():  # adaLN-Zero starts with zero gates: give them something to carry
        block.ada.weight.normal_(std=0.2)
        block.ada.bias.normal_(std=0.2)
    x, cond = torch.randn(6, 9, 16), torch.randn(6, 16)

    def unfused():
        shift1, scale1, gate1, shift2, scale2, gate2 = block.ada(cond).unsqueeze(1).chunk(6, dim=-1)
        h = x + block.drop_path(gate1 * block.attn(block.norm1(x) * (1 + scale1) + shift1))
        return h + block.drop_path(gate2 * block._mlp(block.norm2(h) * (1 + scale2) + shift2))

    with drawing_from(torch.Generator().manual_seed(2)):
        expected = unfused()
    with drawing_from(torch.Generator().manual_seed(2)):
        got = block(x, cond)
    torch.testing.assert_close(got, expected)
    if training:  # some samples lost a branch: the draws took effect
        with drawing_from(torch.Generator().manual_seed(2)), torch.no_grad():
            assert not torch.allclose(block.eval()(x, cond), got)
