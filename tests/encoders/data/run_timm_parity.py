"""Run tests/encoders/test_timm_parity.py by hand where timm is installed but its torchvision does not import.

PyPI's torchvision for Linux is built against CUDA torch; next to a CPU torch its compiled operators fail to load and
``import torchvision`` (so timm, and torchmetrics with Lightning) fails on the operators its meta registrations
expect. ``--stub-torchvision-ops`` declares those two (non-maximum suppression, which no ViT uses) before anything
imports torchvision, so the real timm code builds the ViTs:

    pip install timm torchvision==<the release for this torch>
    python tests/encoders/data/run_timm_parity.py --stub-torchvision-ops
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

if __name__ == "__main__":
    if "--stub-torchvision-ops" in sys.argv:
        sys.argv.remove("--stub-torchvision-ops")
        ops = torch.library.Library("torchvision", "DEF")
        ops.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        ops.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    test = Path(__file__).resolve().parents[1] / "test_timm_parity.py"
    sys.exit(pytest.main([str(test), "-v", "-p", "no:cacheprovider", "-rs", *sys.argv[1:]]))
