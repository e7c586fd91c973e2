"""Loss curves of a fitted model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._docs import doc_params
from ._utils import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..model import GenAR


@doc_params
def training(model: GenAR, *, per_scale: bool = True, ax: Axes | None = None) -> Axes:
    """Plot the training (and validation) loss per epoch, total and per scale.

    Parameters
    ----------
    model
        A model trained with :func:`genar.tl.fit` (or loaded with its history).
    per_scale
        Also draw the loss of every scale (thin lines).
    {ax}

    Returns
    -------
    The Axes; solid lines are training losses, dashed lines validation losses.
    """
    frame = model.history_frame()
    if frame.empty:
        msg = "The model has no training history: run `genar.tl.fit` first."
        raise ValueError(msg)
    ax = new_axes(ax)
    epochs = frame.index.to_numpy()
    for stage, style in (("train", "-"), ("val", "--")):
        if f"{stage}/loss" not in frame:
            continue
        ax.plot(epochs, frame[f"{stage}/loss"], style, color="black", lw=2, label=f"{stage} total")
        if per_scale:
            for k, n in enumerate(model.scales):
                col = f"{stage}/loss_scale{k}"
                if col in frame:
                    ax.plot(epochs, frame[col], style, color=f"C{k}", lw=1, label=f"{stage} scale {k} ({n} groups)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("KL loss")
    ax.legend(fontsize="small", ncol=2)
    return ax
