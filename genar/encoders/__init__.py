"""Histology encoders: a registry of networks that turn H&E patches into feature vectors."""

from ._base import ConcatEncoder, Encoder, EncoderSpec
from ._foundation import timm_folder_spec
from ._hub import WEIGHTS_DIR_ENV, fetch_weights
from ._registry import DEFAULT_ENCODER, available, describe, get_encoder, get_spec, register

__all__ = [
    "DEFAULT_ENCODER",
    "WEIGHTS_DIR_ENV",
    "ConcatEncoder",
    "Encoder",
    "EncoderSpec",
    "available",
    "describe",
    "fetch_weights",
    "get_encoder",
    "get_spec",
    "register",
    "timm_folder_spec",
]
