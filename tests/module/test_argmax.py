from __future__ import annotations

import pytest
import torch

from genar.module._argmax import argmax_rows, block_width


def _cases() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ties = torch.randint(0, 3, (64, 37), generator=g).float()  # several maxima a row: the first one counts
    ties_in_blocks = torch.randint(0, 3, (64, 192), generator=g).float()  # ... in every block of 96, and across
    across = torch.zeros(5, 2016)
    across[:, [100, 1500]] = 3.0  # the same maximum in two blocks: the first block's
    across[1, [95, 96]] = 3.0  # at the end of a block and the start of the next
    padded = torch.randn(16, 64, generator=g)
    padded[:, 50:] = float("-inf")  # decoding's padded columns
    last = torch.randn(7, 2016, generator=g)
    last[:, 2000] = 100.0  # the maximum in the last block
    near = torch.full((4, 32), 1.0)
    near[:, 5] = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0))  # one ulp above the rest
    tiny = torch.zeros(3, 64)
    tiny[:, 40] = torch.finfo(torch.float32).tiny  # the smallest normal number beats zeros
    return {
        "random": torch.randn(50, 2016, generator=g),
        "ties": ties,
        "ties_in_blocks": ties_in_blocks,
        "across": across,
        "padded": padded,
        "last": last,
        "near": near,
        "tiny": tiny,
        "all_minus_inf": torch.full((3, 96), float("-inf")),
        "no_rows": torch.empty(0, 96),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_argmax_rows_equals_torch_argmax(case):
    x = _cases()[case]
    assert torch.equal(argmax_rows(x), x.argmax(dim=-1))


@pytest.mark.parametrize("special", [float("nan"), float("inf")])
@pytest.mark.parametrize("width", [40, 2016])
def test_argmax_rows_follows_torch_on_non_finite_values(special, width):
    x = torch.randn(6, width, generator=torch.Generator().manual_seed(1))
    x[2, 17] = special
    x[3, [5, width - 3]] = special  # two of them: the first
    x[4, width - 1] = special
    assert torch.equal(argmax_rows(x), x.argmax(dim=-1))


def test_argmax_rows_falls_back_for_other_layouts_and_dtypes():
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(2))
    assert torch.equal(argmax_rows(x.t()), x.t().argmax(dim=-1))  # not contiguous
    assert torch.equal(argmax_rows(x.double()), x.argmax(dim=-1))
    assert torch.equal(argmax_rows(x.to(torch.bfloat16)), x.to(torch.bfloat16).argmax(dim=-1))


def test_block_width_divides_rows_in_vector_multiples():
    assert block_width(2016) == 96  # the paper's 2,001 tokens, padded
    assert block_width(2048) == 128
    assert block_width(64) == 64
    assert block_width(37) is None
    assert block_width(16) is None
