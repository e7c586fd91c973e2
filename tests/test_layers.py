"""The package's layers: which folder may import which, checked on the source (so a stray import fails a test)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "genar"

#: folder -> the genar folders and third-party packages it must not import
FORBIDDEN = {
    "module": {"pp", "tl", "pl", "model", "train", "datasets", "encoders", "anndata", "spatialdata", "scanpy"},
    "train": {"pp", "tl", "pl", "model", "datasets", "encoders", "anndata", "spatialdata", "scanpy"},
    "model": {"pp", "tl", "pl", "datasets", "encoders", "anndata", "spatialdata", "scanpy"},
    "pl": {"pp", "tl", "model", "train", "module"},
    "pp": {"tl", "pl", "model", "train", "module"},
    "datasets": {"pp", "tl", "pl", "model", "train", "module"},
    "io": {"pp", "tl", "pl", "model", "train", "module", "datasets"},
}


def _imports(path: Path) -> set[str]:
    """Top names imported at run time by a file: genar folders for relative imports, packages for absolute ones."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for genar/x.py, 1 for genar/pp/x.py
    tree = ast.parse(path.read_text())
    typing_only = {  # `if TYPE_CHECKING:` imports are for annotations and never run
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for child in ast.walk(node)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.add(node.module.split(".")[0])
                if node.module.split(".")[0] == "genar":
                    names.add("genar-root")
            elif node.level > depth:  # climbs to the package root: `from .. import x` or `from ..pp import y`
                if node.module is None:
                    names.update(f"root:{alias.name}" for alias in node.names)
                else:
                    names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_import_runs_back_up_the_layers(folder):
    for path in sorted((PACKAGE / folder).glob("*.py")):
        bad = _imports(path) & FORBIDDEN[folder]
        assert not bad, f"genar/{folder}/{path.name} imports {sorted(bad)}"


def test_leaf_code_does_not_import_the_package_root():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("__init__.py", "_cli.py", "__main__.py"):
            continue
        imported = _imports(path)
        assert "genar-root" not in imported, f"{path.relative_to(PACKAGE)} imports genar by its absolute name"
        assert "root:__version__" not in imported, f"{path.relative_to(PACKAGE)} imports __version__ from the root"
