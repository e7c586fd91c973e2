"""One frozen dataclass holding every setting of a GenAR model and its training."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from .._scales import PAPER_SCALES


@dataclass(frozen=True)
class GenARConfig:
    """Settings of a GenAR model and its training.

    The default is sized so the demo trains in a few minutes on a 2-core CPU; :meth:`paper` gives the paper's
    setting and :meth:`small` the paper's at a quarter of the width.

    Attributes
    ----------
    width, depth, heads, mlp_ratio
        Transformer width, number of blocks, attention heads and MLP expansion.
    drop_path, cond_dropout
        Stochastic depth (largest, in the last block) and the probability of replacing the condition by a learned
        null vector during training.
    n_freqs
        Octaves of the sinusoidal encoding of the spot coordinates (normalised to [0, 1] within each section). Two
        (periods of one and half a section) by default: finer octaves resolve single spots, a code a model uses to
        memorise training spots and that does not carry over to another section (measured on the four her2st
        sections held out in turn: PCC-50 +0.034 and MSE −0.018 from 8 octaves to 2, and no coordinates 0.05
        PCC-50 below 2 octaves; ``docs/benchmarks.md``); 0 drops the coordinates.
    cap
        Largest count token (the vocabulary is ``0..cap``). ``None``: the ``cap_quantile`` quantile of the
        training counts of the panel, at least 1; larger counts are clipped with a warning.
    cap_quantile
        Quantile used when ``cap`` is ``None``.
    alpha, beta
        Width of the final-scale target with ``final_loss="gaussian"``: a discretised Gaussian with
        ``sigma = alpha * count + beta``.
    loss_weighting
        How the loss weighs positions: ``"scale"`` averages the positions of each scale and weighs every scale
        equally (the paper's "mean over scales"); ``"position"`` weighs every position equally, so a scale counts
        in proportion to its groups (the reference implementation's sum over positions: the finest scale of the
        paper's scales carries 57%).
    scale_weights
        Explicit weight of each scale in the loss (overrides ``loss_weighting``).
    lr, weight_decay, batch_size
        Learning rate and decoupled weight decay of AdamW (on matrices only), and the training batch size (spots
        per optimiser step).
    grad_clip
        Largest global norm of the gradient of a step (``None``: not clipped).
    lr_schedule, warmup
        ``"constant"``, or ``"cosine"``: a linear warm-up over the first ``warmup`` share of the steps, then a
        cosine decay to 5% of ``lr`` at ``max_epochs``.
    selection
        What chooses the best epoch and stops training early on the validation sections: ``"loss"`` (the
        teacher-forced loss over all scales), or how well free-running predictions score there — ``"pcc"`` (the
        mean Pearson over genes of the log-space point estimate; higher is better) or ``"mse"`` (its error).
    n_models
        Networks trained with successive seeds and averaged in log space at prediction (a seed ensemble); sampling
        draws from their mixture. Training and prediction cost grow in proportion.
    micro_batch_size
        Spots per forward/backward pass; gradients are accumulated over the batch, so this bounds activation
        memory without changing the optimisation. ``None``: as large as fits about 1.25 GB of activations.
    train_streams
        On the CPU, threads that train on parts of each batch at once, each running PyTorch on its share of the
        cores (~1.15× the spots per second of one on 2 cores); their gradients are added up, with micro-batches of
        ``micro_batch_size / train_streams`` spots. ``None``: one per PyTorch thread, in one process, in float32 or
        bfloat16 mixed precision (one otherwise). A seeded run is reproducible for a given number; set it (``1``:
        the batch in one piece) for runs that draw the same random numbers on machines with other core counts.
    scales
        Gene groups per scale; ``None`` takes them from :func:`genar.pp.cluster_genes`.
    final_loss
        The last scale's loss: ``"ce"`` (default), cross-entropy on the exact count — the likelihood of the counts,
        so the predicted distribution is calibrated and its expectation unbiased — or ``"gaussian"`` (the paper's),
        the KL to a discretised Gaussian with ``sigma = alpha * count + beta``, which smears a true 0 upwards
        (``E[log2(1 + X)]`` ≈ 0.48 at ``beta = 1``).
    gene_film, head
        Ablation switches of the paper: ``gene_film=False`` drops the gene-identity FiLM before the output layer;
        ``head="regression"`` replaces the count tokens by a continuous output per position,
        trained with the mean squared error on ``log(1 + count)`` at every scale (decoded as the rounded
        ``exp(output) - 1``; a point prediction only, so it cannot be sampled). Other ablations are choices
        elsewhere: a single scale or another scale set (``genar.pp.cluster_genes(scales=...)``), random gene
        grouping (``method="random"``).
    """

    width: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 3.0
    drop_path: float = 0.1
    cond_dropout: float = 0.1
    n_freqs: int = 2
    cap: int | None = None
    cap_quantile: float = 0.999
    alpha: float = 0.01
    beta: float = 1.0
    loss_weighting: Literal["scale", "position"] = "scale"
    scale_weights: tuple[float, ...] | None = None
    lr: float = 2e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    grad_clip: float | None = None
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup: float = 0.05
    selection: Literal["loss", "pcc", "mse"] = "loss"
    n_models: int = 1
    micro_batch_size: int | None = None
    train_streams: int | None = None
    scales: tuple[int, ...] | None = None
    gene_film: bool = True
    final_loss: Literal["gaussian", "ce"] = "ce"
    head: Literal["tokens", "regression"] = "tokens"

    def __post_init__(self) -> None:
        checks = {
            "width": self.width >= 1,
            "depth": self.depth >= 1,
            "heads": self.heads >= 1 and self.width % self.heads == 0,
            "mlp_ratio": self.mlp_ratio > 0,
            "drop_path": 0 <= self.drop_path < 1,
            "cond_dropout": 0 <= self.cond_dropout < 1,
            "cap": self.cap is None or self.cap >= 1,
            "cap_quantile": 0 < self.cap_quantile <= 1,
            "alpha": self.alpha >= 0,
            "beta": self.beta > 0,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "batch_size": self.batch_size >= 1,
            "grad_clip": self.grad_clip is None or self.grad_clip > 0,
            "warmup": 0 <= self.warmup < 1,
            "n_models": self.n_models >= 1,
            "loss_weighting": self.loss_weighting in ("scale", "position"),
            "lr_schedule": self.lr_schedule in ("constant", "cosine"),
            "selection": self.selection in ("loss", "pcc", "mse"),
            "micro_batch_size": self.micro_batch_size is None or self.micro_batch_size >= 1,
            "train_streams": self.train_streams is None or self.train_streams >= 1,
            "final_loss": self.final_loss in ("gaussian", "ce"),
            "head": self.head in ("tokens", "regression"),
        }
        for name, ok in checks.items():
            if not ok:
                choices = {
                    "final_loss": "'gaussian' or 'ce'",
                    "head": "'tokens' or 'regression'",
                    "loss_weighting": "'scale' or 'position'",
                    "lr_schedule": "'constant' or 'cosine'",
                    "selection": "'loss', 'pcc' or 'mse'",
                }
                extra = f" (must divide width={self.width})" if name == "heads" else ""
                extra = f" (must be {choices[name]})" if name in choices else extra
                msg = f"GenARConfig: invalid `{name}`={getattr(self, name)!r}{extra}."
                raise ValueError(msg)
        if self.scale_weights is not None:
            object.__setattr__(self, "scale_weights", tuple(float(w) for w in self.scale_weights))
        if self.scales is not None:
            object.__setattr__(self, "scales", tuple(int(s) for s in self.scales))

    @classmethod
    def paper(cls, **overrides: Any) -> GenARConfig:
        """The paper's setting: 200 genes over scales 1/4/8/40/100/200, cap 2000, width 512, 8 layers, 8 heads.

        Its last scale is trained on the discretised Gaussian with the paper's ``alpha = 0.01`` and ``beta = 1``.
        """
        base = {
            "width": 512,
            "depth": 8,
            "heads": 8,
            "mlp_ratio": 3.0,
            "drop_path": 0.1,
            "cond_dropout": 0.1,
            "cap": 2000,
            "alpha": 0.01,
            "beta": 1.0,
            "lr": 1e-4,
            "batch_size": 64,
            "scales": PAPER_SCALES,
            "final_loss": "gaussian",
            "n_freqs": 8,
        }
        return cls(**{**base, **overrides})

    @classmethod
    def small(cls, **overrides: Any) -> GenARConfig:
        """The paper's setting at width 128, 4 layers and 4 heads (the benchmarks' ``small``)."""
        return cls.paper(**{"width": 128, "depth": 4, "heads": 4, **overrides})

    def replace(self, **changes: Any) -> GenARConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        d = dataclasses.asdict(self)
        for key in ("scale_weights", "scales"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenARConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            msg = f"Unknown GenARConfig fields {unknown}; known: {sorted(names)}."
            raise ValueError(msg)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def hash(self) -> str:
        """Short stable hash of the settings (recorded with predictions)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]
