"""LICENSE and CITATION.cff agree with the package metadata."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_license_and_citation_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (ROOT / "LICENSE").read_text().startswith(f"{project['license']} License")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert citation["version"] == project["version"] and citation["license"] == project["license"]
    for key in ("title", "message", "authors"):
        assert citation[key], key
    dois = [ref.get("doi") for ref in citation["references"]]
    assert "10.1038/s41467-021-26271-2" in dois  # the her2st study that genar.datasets.her2st loads
