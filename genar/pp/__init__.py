"""Preprocessing: gene panel, gene hierarchy, histology patches and embeddings."""

from .._scales import PAPER_SCALES, check_scales, group_ids
from ._embed import embed_patches
from ._gene_groups import cluster_genes
from ._patches import extract_patches, iter_patches, read_patches
from ._select import select_genes
from ._spots import TECHNOLOGIES, make_spots

__all__ = [
    "PAPER_SCALES",
    "TECHNOLOGIES",
    "check_scales",
    "cluster_genes",
    "embed_patches",
    "extract_patches",
    "group_ids",
    "iter_patches",
    "make_spots",
    "read_patches",
    "select_genes",
]
