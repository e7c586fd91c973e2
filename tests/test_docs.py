"""The documentation builds with Sphinx, warnings as errors, and covers the public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_sphinx_build_has_no_warnings(tmp_path):
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html", str(REPO / "docs"), str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for page in ("index", "usage", "api", "tutorials", "changelog", "tutorials/01_quickstart"):
        assert (out / f"{page}.html").exists(), page
    import genar

    for module in ("pp", "tl", "pl", "datasets"):
        for name in getattr(genar, module).__all__:
            if name.isupper() or name.startswith("_"):
                continue  # constants are documented where they are used
            assert (out / "generated" / f"genar.{module}.{name}.html").exists(), f"genar.{module}.{name} not in the API"
    for name in ("GenAR", "GenARConfig"):
        assert (out / "generated" / f"genar.{name}.html").exists()
    changelog = (out / "changelog.html").read_text()
    assert "Unreleased" in changelog
