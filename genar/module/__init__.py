"""Pure-torch model code (no AnnData): attention, blocks, scales, targets and the GenAR network."""

from ._attention import KVCache, SelfAttention
from ._blocks import AdaLNBlock, Condition, sinusoidal
from ._genar import GenARModule, choose_tokens
from ._random import current_generator, drawing_from
from ._scales import block_causal_mask, group_means, level_index, pooling_matrix, transfer_matrix
from ._streams import check_streams, choose_streams, run_in_streams
from ._targets import banded_kl, floor_ceil_target, gaussian_band_width, gaussian_target, head_scale_kl

__all__ = [
    "AdaLNBlock",
    "Condition",
    "GenARModule",
    "KVCache",
    "SelfAttention",
    "banded_kl",
    "block_causal_mask",
    "check_streams",
    "choose_streams",
    "choose_tokens",
    "current_generator",
    "drawing_from",
    "floor_ceil_target",
    "gaussian_band_width",
    "gaussian_target",
    "group_means",
    "head_scale_kl",
    "level_index",
    "pooling_matrix",
    "run_in_streams",
    "sinusoidal",
    "transfer_matrix",
]
