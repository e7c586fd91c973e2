"""Foundation ViTs built by ``timm.create_model`` equal genar's plain-torch port, weight for weight, output for output.

Where timm imports, genar builds the foundation encoders with it (genar/encoders/_timm.py); elsewhere, with the port.
The parity tests run where timm imports. Where timm is installed but its torchvision's compiled operators do not load
next to this torch (a CPU torch beside PyPI's CUDA torchvision), run them by hand:

    python tests/encoders/data/run_timm_parity.py --stub-torchvision-ops
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from genar.encoders._foundation import TIMM_ARCHITECTURES, VIT_ARGS
from genar.encoders._hub import read_state_dict
from genar.encoders._timm import PooledTimmViT, build_vit, timm_or_none
from genar.encoders._vit import VisionTransformer, ViTArgs

DATA = Path(__file__).parent / "data"
REFERENCES = sorted(p for p in DATA.iterdir() if (p / "config.json").is_file())
needs_timm = pytest.mark.skipif(timm_or_none() is None, reason="timm cannot be imported here (see the module's doc)")


@needs_timm
@pytest.mark.parametrize("folder", REFERENCES, ids=lambda p: p.name)
def test_timm_and_the_port_reproduce_timms_stored_output(folder):
    config = json.loads((folder / "config.json").read_text())
    args = ViTArgs.from_timm({"global_pool": config.get("global_pool", "token"), **config["model_args"]})
    state = read_state_dict(folder / "model.safetensors")
    reference = np.load(folder / "reference.npz")
    x = torch.from_numpy(reference["input"])
    built = {
        use_timm: build_vit(args, state, architecture=config["architecture"], source=folder.name, use_timm=use_timm)
        for use_timm in (True, False)
    }
    assert isinstance(built[True], PooledTimmViT) and isinstance(built[False], VisionTransformer)
    with torch.no_grad():
        for net in built.values():
            np.testing.assert_allclose(net(x).numpy(), reference["output"], rtol=1e-4, atol=1e-5)


def _tiny(args: ViTArgs) -> ViTArgs:
    """The same architecture (MLP, registers, position embedding, pooling, layer scale) at a tiny size."""
    patch = 7 if args.patch_size == 14 else 8
    return dataclasses.replace(args, img_size=4 * patch, patch_size=patch, embed_dim=24, depth=2, num_heads=2)


@needs_timm
@pytest.mark.parametrize("name", sorted(TIMM_ARCHITECTURES))
def test_each_model_cards_timm_architecture_holds_the_ports_weights(name):
    args = _tiny(VIT_ARGS[name])
    torch.manual_seed(0)
    port = VisionTransformer(args).eval()
    with torch.no_grad():  # tokens start at zero: make every parameter matter
        for p in port.parameters():
            p.add_(0.05 * torch.randn_like(p))
    net = build_vit(args, port.state_dict(), architecture=TIMM_ARCHITECTURES[name], source=name, use_timm=True)
    x = torch.randn(3, 3, args.img_size, args.img_size)
    with torch.no_grad():
        torch.testing.assert_close(net(x), port(x), rtol=1e-4, atol=1e-5)
    assert net(x).shape == (3, args.dim)


def test_without_timm_the_port_is_built_and_asking_for_timm_says_how(monkeypatch):
    from genar.encoders import _timm

    monkeypatch.setattr(_timm, "timm_or_none", lambda: None)  # as where timm is not installed
    args = _tiny(VIT_ARGS["uni"])
    state = VisionTransformer(args).state_dict()
    assert isinstance(build_vit(args, state, architecture="vit_large_patch16_224", source="uni"), VisionTransformer)
    with pytest.raises(ImportError, match=r"`use_timm=True` but timm cannot be imported: `pip install timm`"):
        build_vit(args, state, architecture="vit_large_patch16_224", source="uni", use_timm=True)
