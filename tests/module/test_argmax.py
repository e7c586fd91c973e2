from __future__ import annotations

import pytest
import torch

from genar.module._argmax import argmax_rows


def _cases() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ties = torch.randint(0, 3, (64, 37), generator=g).float()  # several maxima a row: the first one counts
    padded = torch.randn(16, 64, generator=g)
    padded[:, 50:] = float("-inf")  # decoding's padded columns
    near = torch.full((4, 8), 1.0)
    near[:, 5] = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0))  # one ulp above the rest
    tiny = torch.zeros(3, 6)
    tiny[:, 4] = torch.finfo(torch.float32).tiny  # the smallest normal number beats zeros
    return {"random": torch.randn(50, 2016, generator=g), "ties": ties, "padded": padded, "near": near, "tiny": tiny}


@pytest.mark.parametrize("case", list(_cases()))
@pytest.mark.parametrize("with_work", [False, True])
def test_argmax_rows_equals_torch_argmax(case, with_work):
    x = _cases()[case]
    work = torch.full_like(x, 7.0) if with_work else None  # stale contents must not matter
    assert torch.equal(argmax_rows(x, work), x.argmax(dim=-1))


@pytest.mark.parametrize("special", [float("nan"), float("inf")])
def test_argmax_rows_follows_torch_on_non_finite_maxima(special):
    x = torch.randn(6, 40, generator=torch.Generator().manual_seed(1))
    x[2, 17] = special
    assert torch.equal(argmax_rows(x), x.argmax(dim=-1))


def test_argmax_rows_falls_back_for_other_layouts_and_dtypes():
    x = torch.randn(8, 30, generator=torch.Generator().manual_seed(2))
    assert torch.equal(argmax_rows(x.t()), x.t().argmax(dim=-1))  # not contiguous
    assert torch.equal(argmax_rows(x.double()), x.argmax(dim=-1))
    assert torch.equal(argmax_rows(x.to(torch.bfloat16)), x.to(torch.bfloat16).argmax(dim=-1))
