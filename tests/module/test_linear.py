from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from genar.module import _linear
from genar.module._linear import linear, uses_onednn


@pytest.mark.parametrize("gelu", [False, True])
@pytest.mark.parametrize("shape", [(7, 16), (3, 5, 16)])
def test_inference_linear_equals_the_layer(shape, gelu):
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 24)
    x = torch.randn(*shape)
    expected = F.gelu(layer(x)) if gelu else layer(x)
    with torch.inference_mode():
        assert uses_onednn(x, layer) == (torch.backends.mkldnn.is_available() and _linear._ONEDNN_LINEAR is not None)
        got = linear(x, layer, gelu=gelu)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected.detach(), rtol=1e-5, atol=1e-6)


def test_training_linear_stays_on_autograd(monkeypatch):
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 24)
    x = torch.randn(4, 16, requires_grad=True)
    assert not uses_onednn(x, layer)  # gradients wanted: F.linear
    linear(x, layer, gelu=True).sum().backward()
    expected = torch.autograd.grad(F.gelu(layer(x)).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert not uses_onednn(x, layer)  # autocast picks its own dtype
    with torch.no_grad():
        assert not uses_onednn(x.double(), copy.deepcopy(layer).double())  # float32 only
        assert uses_onednn(x.detach(), layer) == torch.backends.mkldnn.is_available()
        monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)  # switched off by the user
        assert not uses_onednn(x.detach(), layer)
