"""Shared parameter docstrings: the meaning of a parameter that several functions take is written once, here.

A docstring line holding only ``{name}`` (indented like a parameter) is replaced by the entry of ``name``, in the
scanpy/squidpy manner; every other brace in a docstring is left alone.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

PARAMS = {
    "table_key": """
        table_key
            The panel table (default ``'genar'``: from :func:`genar.pp.select_genes` or :func:`genar.pp.make_spots`).
        """,
    "layer": """
        layer
            Layer of the panel table with the *measured* raw counts (``None``: ``X``).
        """,
    "predicted_layer": """
        predicted_layer
            Layer with the predictions to read: the ``layer_added`` of :func:`genar.tl.predict` or
            :func:`genar.tl.baseline` (its companion layers are found through its provenance record).
        """,
    "train_sections": """
        train_sections
            Training sections (``obs['section']``): what this call learns from. Default: the sections the panel was
            chosen on (:func:`genar.pp.select_genes`).
        """,
    "embedding_key": """
        embedding_key
            ``obsm`` key of the histology features (from :func:`genar.pp.embed_patches`).
        """,
    "gene_group_key": """
        gene_group_key
            ``varm``/``uns`` key of the gene hierarchy (from :func:`genar.pp.cluster_genes`).
        """,
    "patches_key": """
        patches_key
            ``obsm``/``uns`` key of the patch geometry (from :func:`genar.pp.extract_patches`).
        """,
    "evaluation_key": """
        evaluation_key
            ``uns`` key of the scores (from :func:`genar.tl.evaluate`).
        """,
    "random_state": """
        random_state
            Seed of every random choice of this call: the same seed gives the same result.
        """,
    "overwrite": """
        overwrite
            Replace outputs that exist already. Without it, an existing output is an error and nothing is changed.
        """,
    "show_progress_bar": """
        show_progress_bar
            Show a progress bar (default: ``genar.settings.show_progress_bar``).
        """,
    "device": """
        device
            Torch device (default: ``genar.settings.device``, else CUDA when available, else the CPU).
        """,
    "ax": """
        ax
            Axes to draw into (default: a new figure).
        """,
}

_PLACEHOLDER = re.compile(r"^([ \t]*)\{(\w+)\}[ \t]*$", flags=re.M)


def _entry(name: str, indent: str) -> str:
    return textwrap.indent(textwrap.dedent(PARAMS[name]).strip("\n"), indent)


def doc_params(func: F) -> F:
    """Fill the ``{name}`` placeholder lines of ``func``'s docstring with the shared entries of :data:`PARAMS`."""

    def replace(match: re.Match) -> str:
        indent, name = match.groups()
        if name not in PARAMS:
            msg = f"{func.__qualname__}: no shared docstring entry {name!r}; known: {sorted(PARAMS)}."
            raise KeyError(msg)
        return _entry(name, indent)

    func.__doc__ = _PLACEHOLDER.sub(replace, func.__doc__ or "")
    return func
