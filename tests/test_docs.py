"""The documentation builds with Sphinx, warnings as errors, and covers the public API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
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
    for page in ("index", "usage", "own_data", "api", "tutorials", "changelog", "tutorials/01_quickstart"):
        assert (out / f"{page}.html").exists(), page
    import genar

    for module in ("pp", "tl", "pl", "datasets", "io"):
        for name in getattr(genar, module).__all__:
            if name.isupper() or name.startswith("_"):
                continue  # constants are documented where they are used
            assert (out / "generated" / f"genar.{module}.{name}.html").exists(), f"genar.{module}.{name} not in the API"
    for name in ("GenAR", "GenARConfig"):
        assert (out / "generated" / f"genar.{name}.html").exists()
    changelog = (out / "changelog.html").read_text()
    assert "Unreleased" in changelog


def test_shared_parameter_text_is_written_once_and_filled_in():
    from genar._docs import PARAMS, doc_params

    def f(sdata, random_state=0):
        """Do something.

        Parameters
        ----------
        sdata
            The data; ``{braces}`` elsewhere are left alone.
        {random_state}
            It seeds this too.
        """

    doc = doc_params(f).__doc__
    assert "{random_state}" not in doc and "``{braces}``" in doc
    assert "        random_state\n            Seed of every random choice" in doc
    assert doc.index("Seed of every random choice") < doc.index("It seeds this too.")

    def g():
        """{unknown_entry}"""

    with pytest.raises(KeyError, match="no shared docstring entry 'unknown_entry'"):
        doc_params(g)
    import genar

    # the public functions use the shared text: the same words for the same parameter everywhere
    for func in (genar.tl.fit, genar.tl.predict, genar.tl.baseline, genar.tl.calibrate, genar.pp.cluster_genes):
        assert "Seed of every random choice of this call" in func.__doc__, func.__name__
    assert all("{" + name + "}" not in (genar.tl.evaluate.__doc__ or "") for name in PARAMS)
