"""Scale schedule: which gene group each position stands for, the block-causal mask, coarse-to-fine transfer."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._scales import gene_windows


def level_index(scales: Sequence[int]) -> torch.Tensor:
    """Scale index of every position of the flattened sequence, shape ``(L,)`` with ``L = sum(scales)``."""
    return torch.cat([torch.full((n,), k, dtype=torch.long) for k, n in enumerate(scales)])


def block_causal_mask(scales: Sequence[int]) -> torch.Tensor:
    """Boolean ``(L, L)`` mask, ``True`` = may attend: a position sees its own scale and every coarser scale."""
    lvl = level_index(scales)
    return lvl[:, None] >= lvl[None, :]


def pooling_matrix(n_groups: int, n_genes: int) -> torch.Tensor:
    """``(n_groups, n_genes)`` matrix averaging contiguous, equal-width windows of genes (the scale's groups)."""
    group = torch.from_numpy(gene_windows(n_groups, n_genes))
    return (group[None, :] == torch.arange(n_groups)[:, None]).float() / (n_genes // n_groups)


def transfer_matrix(coarse: int, fine: int, n_genes: int) -> torch.Tensor:
    """``(fine, coarse)``: how much of each fine group's genes lies in each coarse group (rows sum to 1).

    Broadcasting a coarse scale to its child groups is ``transfer @ coarse_values``; when the fine groups nest in
    the coarse ones this copies the parent's value, otherwise it averages the parents under the fine group.
    """
    up = pooling_matrix(coarse, n_genes).T * (n_genes // coarse)  # (genes, coarse): 1 where gene in group
    return pooling_matrix(fine, n_genes) @ up


def group_means(counts_BG: torch.Tensor, scales: Sequence[int]) -> list[torch.Tensor]:
    """Mean count of every gene group at every scale: a list of ``(B, n_k)`` float tensors."""
    n_genes = counts_BG.shape[-1]
    x = counts_BG.float()
    return [x.view(*x.shape[:-1], n, n_genes // n).mean(-1) for n in scales]
