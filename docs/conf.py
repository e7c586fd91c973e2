"""Sphinx configuration: MyST pages, numpydoc docstrings (napoleon), autosummary, notebooks rendered as stored."""

from __future__ import annotations

import shutil
from importlib.metadata import version as _version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

project = "genar"
author = "the genar developers"
copyright = "2026, the genar developers"
release = _version("genar")
version = release

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

# Notebooks are rendered as they are, never executed by the build: the tutorials need the her2st data and several
# minutes. The repository holds them without outputs (the data's licence forbids committing anything derived from
# them); ``python tutorials/execute.py`` runs them into tutorials/_executed/, and the build prefers those copies.
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_param = True
napoleon_custom_sections = [("Writes", "params_style")]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
html_theme = "furo"
html_title = f"genar {release}"
suppress_warnings = ["mystnb.unknown_mime_type"]
nitpicky = False


def _copy_tutorials() -> None:
    """Put the tutorials under docs/tutorials/: the executed copy when there is one, otherwise the stored one."""
    target = HERE / "tutorials"
    target.mkdir(exist_ok=True)
    for stored in sorted((ROOT / "tutorials").glob("*.ipynb")):
        executed = ROOT / "tutorials" / "_executed" / stored.name
        source = executed if executed.exists() else stored
        destination = target / stored.name
        if not destination.exists() or destination.read_bytes() != source.read_bytes():
            shutil.copyfile(source, destination)


_copy_tutorials()
