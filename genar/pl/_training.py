"""Loss curves of a fitted model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._docs import doc_params
from ._utils import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..model import GenAR


@doc_params
def training(model: GenAR, *, per_scale: bool = True, member: int = 0, ax: Axes | None = None) -> Axes:
    """Plot the learning curves: the training (and validation) loss per epoch, total and per scale.

    When the model was selected on free-running predictions (``GenARConfig(selection="pcc")`` or ``"mse"``), the
    validation Pearson of the point estimate is drawn too, on a second axis, with the chosen epoch marked.

    Parameters
    ----------
    model
        A model trained with :func:`genar.tl.fit` (or loaded with its history).
    per_scale
        Also draw the loss of every scale (thin lines).
    member
        The network of an ensemble whose curves to draw.
    {ax}

    Returns
    -------
    The Axes of the losses; solid lines are training losses, dashed lines validation losses.
    """
    frame = model.history_frame(member=member)
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
    ax.set_ylabel("loss")
    if "val/pcc" in frame:
        twin = ax.twinx()
        twin.plot(epochs, frame["val/pcc"], ":", color="tab:purple", lw=2, label="val Pearson (free-running)")
        twin.set_ylabel("validation Pearson, log2(x+1)")
        best = model.train_info.get("members", [model.train_info])[member].get("best_epoch")
        if best is not None:
            ax.axvline(best, color="0.5", lw=1, ls="-.", label=f"chosen epoch {best}")
        twin.legend(fontsize="small", loc="center right")
    ax.legend(fontsize="small", ncol=2)
    return ax
