"""GenAR: next-scale autoregressive prediction of count tokens, conditioned on histology (pure torch)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from ._argmax import argmax_rows
from ._attention import KVCache
from ._blocks import AdaLNBlock, Condition
from ._output_layer import padded_output_layer
from ._scales import level_index, pooling_matrix, transfer_matrix
from ._streams import choose_streams, run_in_streams

#: Logits decoded at once, shared by the decoding streams: about 4 MB of float32, so each chunk's logits stay in
#: cache between the product that writes them and the argmax and softmax that read them (16 MB chunks took ~1.6x as
#: long on 2 CPU cores).
DECODE_CHUNK_ELEMENTS = 1024 * 1024


class GenARModule(nn.Module):
    """The GenAR network.

    The sequence holds one position per gene group of every scale, coarse to fine (``L = sum(scales)``). The
    input at scale 0 is a start token made from the condition; the input at scale ``k > 0`` is the embedding of
    the (teacher-forced or decoded) count tokens of scale ``k - 1`` broadcast to the groups of scale ``k``, plus
    scale and position embeddings. A block-causal mask lets every position see its own and all coarser scales.

    Parameters
    ----------
    scales
        Gene groups per scale, coarse to fine; the last equals ``n_genes``.
    n_genes
        Panel size.
    vocab
        Number of count tokens (``cap + 1``): token ``t`` *is* the count ``t``.
    feature_dim
        Dimension of the histology embedding.
    width, depth, heads, mlp_ratio
        Transformer size.
    drop_path, cond_dropout
        Stochastic depth, and the probability of replacing the condition by a learned null vector (training).
    n_freqs
        Octaves of the sinusoidal coordinate encoding.
    gene_film
        Gene-identity FiLM before the output layer (``False``: the paper's ablation without it).
    head
        ``"tokens"``: logits over the count tokens ``0..vocab-1``. ``"regression"`` (an ablation): one number per
        position, read as ``log(1 + count)``; decoding rounds ``exp(output) - 1`` into ``0..vocab-1``.
    """

    def __init__(
        self,
        *,
        scales: Sequence[int],
        n_genes: int,
        vocab: int,
        feature_dim: int,
        width: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
        drop_path: float = 0.0,
        cond_dropout: float = 0.0,
        n_freqs: int = 8,
        gene_film: bool = True,
        head: Literal["tokens", "regression"] = "tokens",
    ) -> None:
        super().__init__()
        if head not in ("tokens", "regression"):
            msg = f"`head` must be 'tokens' or 'regression'; got {head!r}."
            raise ValueError(msg)
        self.gene_film = gene_film
        self.head_kind = head
        self.scales = tuple(int(s) for s in scales)
        self.n_genes, self.vocab, self.width, self.depth, self.heads = n_genes, vocab, width, depth, heads
        L = sum(self.scales)
        self.condition = Condition(feature_dim, width, n_freqs, cond_dropout)
        self.start = nn.Linear(width, width)
        self.token_embed = nn.Embedding(vocab, width)
        self.level_embed = nn.Embedding(len(self.scales), width)
        self.pos_embed = nn.Parameter(torch.zeros(L, width))
        self.gene_embed = nn.Parameter(torch.zeros(n_genes, width))
        self.film = nn.Linear(width, 2 * width)
        self.blocks = nn.ModuleList(
            AdaLNBlock(width, heads, mlp_ratio, drop_path * i / max(depth - 1, 1)) for i in range(depth)
        )
        self.head_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.head_ada = nn.Linear(width, 2 * width)
        self.head = nn.Linear(width, vocab if head == "tokens" else 1)
        # standardisation of the histology features (set from the training spots)
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_std", torch.ones(feature_dim))
        # fixed structure, rebuilt from the scales (not saved)
        self.register_buffer("level_L", level_index(self.scales), persistent=False)
        pool = torch.cat([pooling_matrix(n, n_genes) for n in self.scales])  # (L, n_genes)
        self.register_buffer("pool_LG", pool, persistent=False)
        self.register_buffer("up_in_out", self._upsampling(), persistent=False)
        self.init_weights()

    def _upsampling(self) -> torch.Tensor:
        """``(L - scales[0], L - scales[-1])``: broadcasts tokens of scales ``0..K-2`` to positions of ``1..K-1``."""
        s = self.scales
        up = torch.zeros(sum(s) - s[0], sum(s) - s[-1])
        row = col = 0
        for k in range(1, len(s)):
            up[row : row + s[k], col : col + s[k - 1]] = transfer_matrix(s[k - 1], s[k], self.n_genes)
            row, col = row + s[k], col + s[k - 1]
        return up

    def init_weights(self) -> None:
        """Initialise every weight: truncated normal (std 0.02), zero biases, zero adaLN and FiLM gates."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.gene_embed, std=0.02)
        for block in self.blocks:  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(block.ada.weight)
            nn.init.zeros_(block.ada.bias)
        for m in (self.head_ada, self.film):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    # -- pieces -------------------------------------------------------------------------------------------------
    def cond(self, features_BD: torch.Tensor, coords_B2: torch.Tensor) -> torch.Tensor:
        """Condition vector ``(B, width)`` from raw histology features and coordinates in ``[0, 1]``."""
        features_BD = (features_BD - self.feature_mean) / self.feature_std
        return self.condition(features_BD, coords_B2)

    def _embed_positions(self, x_BNC: torch.Tensor, start: int, end: int) -> torch.Tensor:
        return x_BNC + self.level_embed(self.level_L[start:end]) + self.pos_embed[start:end]

    def _start_tokens(self, cond_BC: torch.Tensor) -> torch.Tensor:
        x = self.start(cond_BC)[:, None, :].expand(-1, self.scales[0], -1)
        return self._embed_positions(x, 0, self.scales[0])

    def _head_input(self, h_BNC: torch.Tensor, cond_BC: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """AdaLN from the condition, then FiLM from the pooled gene embeddings of positions ``start:end``."""
        shift, scale = self.head_ada(F.silu(cond_BC)).unsqueeze(1).chunk(2, dim=-1)
        h = torch.addcmul(shift, self.head_norm(h_BNC), 1 + scale)
        if not self.gene_film:  # ablation: no gene identity before the output layer
            return h
        genes_NC = self.pool_LG[start:end] @ self.gene_embed
        gamma, beta = self.film(genes_NC).chunk(2, dim=-1)
        return torch.addcmul(beta, h, 1 + gamma)

    # -- teacher-forced pass ----------------------------------------------------------------------------------
    def forward(
        self,
        features_BD: torch.Tensor,
        coords_B2: torch.Tensor,
        tokens_BL: torch.Tensor,
        n_scales: int | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, L', vocab)`` for every position of the first ``n_scales`` scales, in one pass.

        ``tokens_BL`` holds the teacher-forced tokens of every scale, concatenated coarse to fine (at least the
        scales before the last one used); the tokens of the finest scale are not read.
        """
        return self.head(self.hidden(features_BD, coords_B2, tokens_BL, n_scales))

    def hidden(
        self,
        features_BD: torch.Tensor,
        coords_B2: torch.Tensor,
        tokens_BL: torch.Tensor,
        n_scales: int | None = None,
    ) -> torch.Tensor:
        """The input of the output layer ``self.head``, ``(B, L', width)``: :meth:`forward` without the head.

        Training feeds it to :func:`~genar.module.head_scale_kl`, which never materialises the logits.
        """
        K = len(self.scales) if n_scales is None else n_scales
        L = sum(self.scales[:K])
        cond_BC = self.cond(features_BD, coords_B2)
        x_BLC = self._teacher_inputs(cond_BC, tokens_BL, K)
        act_BC = F.silu(cond_BC)
        ends = list(itertools.accumulate(self.scales[:K]))  # block-causal: every scale sees itself and the coarser
        for block in self.blocks:
            x_BLC = block(x_BLC, act_BC, scale_ends=ends)
        return self._head_input(x_BLC, cond_BC, 0, L)

    def _teacher_inputs(self, cond_BC: torch.Tensor, tokens_BL: torch.Tensor, n_scales: int) -> torch.Tensor:
        s0 = self.scales[0]
        L = sum(self.scales[:n_scales])
        start = self._start_tokens(cond_BC)
        if n_scales == 1:
            return start
        n_in = L - self.scales[n_scales - 1]  # tokens of scales 0..n_scales-2
        emb_BNC = self.token_embed(tokens_BL[:, :n_in])
        up = self.up_in_out[: L - s0, :n_in]
        rest = self._embed_positions(torch.matmul(up, emb_BNC), s0, L)
        return torch.cat([start, rest], dim=1)

    # -- decoding ---------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(
        self,
        features_BD: torch.Tensor,
        coords_B2: torch.Tensor,
        *,
        greedy: bool = True,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        return_all_scales: bool = False,
        cache: KVCache | None = None,
        micro_batch: int = 64,
        streams: int | None = None,
    ) -> torch.Tensor:
        """Decode coarse to fine with a KV cache; returns count tokens ``(B, n_genes)`` (or ``(B, L)``).

        ``greedy`` takes the most likely token at every position (deterministic); otherwise tokens are sampled
        from ``softmax(logits / temperature)``, restricted to the ``top_k`` most likely when given, with
        ``generator`` as the only source of randomness. Spots are decoded ``micro_batch`` at a time (each
        intermediate then stays small enough to be reused from the heap rather than freshly mapped); pass a
        ``cache`` from :meth:`new_cache` to reuse its buffers across calls (it grows to ``micro_batch`` rows per
        stream if it holds fewer).

        ``streams``: micro-batches decoded at once by that many CPU threads, each running PyTorch on an equal share
        of its threads with its own rows of the KV cache. ``None`` (automatic) takes, for greedy decoding on the CPU,
        as many as PyTorch has threads, at most one per micro-batch and within
        :data:`~genar.module._streams.STREAM_CACHE_BUDGET_BYTES` of caches; one otherwise (sampling decodes in one
        stream, so that its draws from ``generator`` keep their order). The tokens do not depend on it.
        """
        tokens, _ = self._decode(
            features_BD,
            coords_B2,
            greedy=greedy,
            temperature=temperature,
            top_k=top_k,
            generator=generator,
            return_all_scales=return_all_scales,
            cache=cache,
            micro_batch=micro_batch,
            streams=streams,
            final_values=None,
        )
        return tokens

    @torch.inference_mode()
    def decode_expectation(
        self,
        features_BD: torch.Tensor,
        coords_B2: torch.Tensor,
        values_V: torch.Tensor,
        *,
        greedy: bool = True,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        cache: KVCache | None = None,
        micro_batch: int = 64,
        streams: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode as :meth:`generate`, and at the finest scale also the expectation of ``values_V[token]``.

        Returns ``(tokens_BG, expected_BG)``: the finest scale's tokens, chosen as the coarser ones are (argmax or a
        sample), and ``E[values[X]]`` under the finest scale's distribution given the decoded coarser scales (the
        model's own distribution: neither ``temperature`` nor ``top_k`` applies to it). With
        ``values_V = log2(1 + arange(vocab))`` and averaged over coarse paths, this is the Rao–Blackwellised estimate
        of ``E[log2(1 + X)]``: the finest scale is summed over exactly instead of sampled. ``streams``: as in
        :meth:`generate`.
        """
        return self._decode(
            features_BD,
            coords_B2,
            greedy=greedy,
            temperature=temperature,
            top_k=top_k,
            generator=generator,
            return_all_scales=False,
            cache=cache,
            micro_batch=micro_batch,
            streams=streams,
            final_values=values_V.to(device=features_BD.device, dtype=torch.float32),
        )

    def _decode(
        self,
        features_BD: torch.Tensor,
        coords_B2: torch.Tensor,
        *,
        cache: KVCache | None,
        micro_batch: int,
        streams: int | None,
        **decoding,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, device = features_BD.shape[0], features_BD.device
        micro = max(1, min(micro_batch, B))
        starts = range(0, B, micro)
        n_streams = choose_streams(
            streams,
            device=device,
            n_tasks=len(starts),
            bytes_per_stream=self.cache_bytes(micro),
            ordered_randomness=not decoding["greedy"],
        )
        if cache is None:
            cache = self.new_cache(micro * n_streams, device=device, dtype=torch.float32)
        cache.reserve(micro * n_streams)  # kept by the caller for the next call
        stream_caches = [cache.rows(i * micro, (i + 1) * micro) for i in range(n_streams)]
        # the output layer padded once per call, not once per scale and micro-batch
        output_layer = (
            padded_output_layer(self.head.weight, self.head.bias, bias_fill=float("-inf"))
            if self.head_kind == "tokens"
            else None
        )

        def micro_batch_task(s: int):
            rows = slice(s, s + micro)
            return lambda cache: self._decode_batch(
                features_BD[rows],
                coords_B2[rows],
                cache,
                output_layer=output_layer,
                chunk_elements=DECODE_CHUNK_ELEMENTS // n_streams,
                **decoding,
            )

        parts = run_in_streams([micro_batch_task(s) for s in starts], stream_caches)
        tokens = torch.cat([t for t, _ in parts]) if len(parts) > 1 else parts[0][0]
        if parts[0][1] is None:
            return tokens, None
        return tokens, (torch.cat([e for _, e in parts]) if len(parts) > 1 else parts[0][1])

    def _decode_batch(
        self,
        features_BD: torch.Tensor,
        coords_B2: torch.Tensor,
        cache: KVCache,
        *,
        greedy: bool,
        temperature: float,
        top_k: int | None,
        generator: torch.Generator | None,
        return_all_scales: bool,
        final_values: torch.Tensor | None,
        output_layer: tuple[torch.Tensor, torch.Tensor] | None,
        chunk_elements: int,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B = features_BD.shape[0]
        cond_BC = self.cond(features_BD, coords_B2)
        act_BC = F.silu(cond_BC)
        cache.reset(B)
        x_BNC = self._start_tokens(cond_BC)
        start, out, expected = 0, [], None
        for k, n in enumerate(self.scales):
            h = x_BNC
            for i, block in enumerate(self.blocks):
                h = block(h, act_BC, None, cache, i)
            head_in = self._head_input(h, cond_BC, start, start + n).reshape(B * n, -1)
            finest = final_values if k + 1 == len(self.scales) else None
            tokens_BN, expected = self._choose(
                head_in,
                greedy=greedy,
                temperature=temperature,
                top_k=top_k,
                generator=generator,
                values_V=finest,
                output_layer=output_layer,
                chunk_elements=chunk_elements,
            )
            tokens_BN = tokens_BN.view(B, n)
            out.append(tokens_BN)
            if k + 1 < len(self.scales):
                nxt = self.scales[k + 1]
                up = self.up_in_out[start + n - self.scales[0] : start + n - self.scales[0] + nxt, start : start + n]
                x_BNC = self._embed_positions(torch.matmul(up, self.token_embed(tokens_BN)), start + n, start + n + nxt)
            start += n
        tokens = torch.cat(out, dim=1) if return_all_scales else out[-1]
        return tokens, (None if expected is None else expected.view(B, -1))

    def _choose(
        self,
        head_in_NC: torch.Tensor,
        *,
        greedy: bool,
        temperature: float,
        top_k: int | None,
        generator: torch.Generator | None,
        values_V: torch.Tensor | None,
        output_layer: tuple[torch.Tensor, torch.Tensor] | None,
        chunk_elements: int,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens of positions ``(N,)`` and, with ``values_V``, ``E[values[X]]`` under each position's distribution.

        ``output_layer``: the token head's ``(weight, bias)`` from :func:`padded_output_layer` with ``bias_fill=-inf``
        (None for regression). The logits are computed ``chunk_elements`` at a time into one reused buffer.
        """
        if self.head_kind == "regression":  # a point mass at the rounded output
            tokens = self.head(head_in_NC).squeeze(-1).expm1().round().clamp(0, self.vocab - 1).long()
            return tokens, (None if values_V is None else values_V[tokens])
        weight_PC, bias_P = output_layer  # padded rows: the extra logits are -inf, never chosen, probability 0
        N, P = head_in_NC.shape[0], weight_PC.shape[0]
        rows = min(N, max(1, chunk_elements // P))
        logits_buf = head_in_NC.new_empty(rows, P)  # reused by every chunk: it stays in cache
        probs_buf = None if values_V is None else head_in_NC.new_empty(rows, P, dtype=torch.float32)
        values_P = None if values_V is None else F.pad(values_V, (0, P - values_V.shape[0]))
        tokens = torch.empty(N, dtype=torch.long, device=head_in_NC.device)
        expected = None if values_V is None else head_in_NC.new_empty(N, dtype=torch.float32)
        for r in range(0, N, rows):
            n = min(rows, N - r)
            logits = torch.addmm(bias_P, head_in_NC[r : r + n], weight_PC.t(), out=logits_buf[:n])
            if greedy:  # the whole padded rows, contiguous: the -inf columns never win
                tokens[r : r + n] = argmax_rows(logits)
            else:
                tokens[r : r + n] = choose_tokens(
                    logits[:, : self.vocab], greedy=False, temperature=temperature, top_k=top_k, generator=generator
                )
            if values_V is not None:
                probs = torch.softmax(logits, dim=-1, dtype=torch.float32, out=probs_buf[:n])
                torch.mv(probs, values_P, out=expected[r : r + n])
        return tokens, expected

    def new_cache(self, batch: int, *, device=None, dtype=None) -> KVCache:
        """An empty KV cache for decoding batches of up to ``batch`` spots."""
        return KVCache(
            self.depth, batch, self.heads, sum(self.scales), self.width // self.heads, device=device, dtype=dtype
        )

    def cache_bytes(self, batch: int) -> int:
        """Bytes of a float32 :meth:`new_cache` for ``batch`` spots: keys and values of every block."""
        return 2 * self.depth * batch * sum(self.scales) * self.width * 4


def choose_tokens(
    logits_BNV: torch.Tensor,
    *,
    greedy: bool,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick one token per position: argmax, or a sample under temperature and top-k.

    The argmax is :func:`~genar.module._argmax.argmax_rows`, the one greedy decoding takes.
    """
    if greedy:
        return argmax_rows(logits_BNV.reshape(-1, logits_BNV.shape[-1])).view(logits_BNV.shape[:-1])
    logits = logits_BNV.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(dim=-1).flatten(0, -2)
    return torch.multinomial(probs, 1, generator=generator).view(logits.shape[:-1])
