"""Functions change only the keys they document; ``copy=True`` leaves the input untouched and returns the result."""

from __future__ import annotations

import copy as copy_module

import pandas as pd
import pytest

import genar


def _snapshot(sdata) -> dict:
    """Every part a genar function might touch, as plain values: tables (all slots) and shapes."""
    out = {}
    for key, t in sdata.tables.items():
        out[f"tables/{key}/X"] = t.X
        out[f"tables/{key}/obs"] = t.obs
        out[f"tables/{key}/var"] = t.var
        for slot in ("layers", "obsm", "varm", "uns"):
            for name, value in getattr(t, slot).items():
                out[f"tables/{key}/{slot}/{name}"] = value
    for key, shapes in sdata.shapes.items():
        out[f"shapes/{key}"] = pd.DataFrame(shapes.drop(columns="geometry")).assign(wkt=shapes.geometry.to_wkt())
    out["images"] = sorted(sdata.images)
    return copy_module.deepcopy(out)


def _changed(before: dict, after: dict, same) -> set[str]:
    keys = before.keys() | after.keys()
    return {k for k in keys if k not in before or k not in after or not same(before[k], after[k])}


STEPS = {
    "select_genes": (
        lambda s, **kw: genar.pp.select_genes(s, 16, sections=["S0"], **kw),
        {
            "tables/genar/X",
            "tables/genar/obs",
            "tables/genar/var",
            "tables/genar/layers/counts",
            "tables/genar/obsm/spatial",
            "tables/genar/uns/genar",
            "tables/genar/uns/spatial",
            "tables/genar/uns/spatialdata_attrs",
        },
    ),
    "cluster_genes": (
        lambda s, **kw: genar.pp.cluster_genes(s, scales=(1, 4, 16), **kw),
        {  # reorders the panel's genes: every per-gene slot of the panel table
            "tables/genar/X",
            "tables/genar/var",
            "tables/genar/layers/counts",
            "tables/genar/varm/genar_gene_group",
            "tables/genar/uns/genar_gene_group",
        },
    ),
    "extract_patches": (
        lambda s, **kw: genar.pp.extract_patches(s, size_um=24.0, patch_px=24, **kw),
        {"tables/genar/obs", "tables/genar/obsm/genar_patches", "tables/genar/uns/genar_patches"},
    ),
    "embed_patches": (
        lambda s, **kw: genar.pp.embed_patches(s, encoder="color_texture", show_progress_bar=False, **kw),
        {"tables/genar/obsm/X_histology", "tables/genar/uns/X_histology"},
    ),
    "baseline": (
        lambda s, **kw: genar.tl.baseline(s, "ridge", sections=["S0"], **kw),
        {"tables/genar/obs", "tables/genar/layers/ridge_counts", "tables/genar/uns/genar"},
    ),
}


def _prepared_until(sdata, step: str):
    for name, (run, _) in STEPS.items():
        if name == step:
            return sdata
        run(sdata)
    raise AssertionError(step)


@pytest.mark.parametrize("step", list(STEPS))
def test_in_place_changes_only_the_documented_keys(sdata, step, same):
    sdata = _prepared_until(sdata, step)
    before = _snapshot(sdata)
    run, documented = STEPS[step]
    assert run(sdata) is None
    changed = _changed(before, _snapshot(sdata), same)
    assert changed, f"{step} changed nothing"
    assert changed <= documented, f"{step} changed undocumented keys {sorted(changed - documented)}"


@pytest.mark.parametrize("step", list(STEPS))
def test_copy_returns_the_result_and_leaves_the_input_untouched(sdata, step, same):
    sdata = _prepared_until(sdata, step)
    before = _snapshot(sdata)
    run, documented = STEPS[step]
    result = run(sdata, copy=True)
    assert not _changed(before, _snapshot(sdata), same)
    assert result is not sdata
    assert _changed(before, _snapshot(result), same) <= documented
    assert result.images["S0_image"] is sdata.images["S0_image"]  # images are shared, never written


def test_predict_in_place_and_copy(prepared, trained, same):
    before = _snapshot(prepared)
    result = genar.tl.predict(prepared, trained, sections="S1", copy=True)
    assert not _changed(before, _snapshot(prepared), same)
    documented = {"tables/genar/obs", "tables/genar/layers/genar_counts", "tables/genar/uns/genar"}
    assert _changed(before, _snapshot(result), same) == documented
    assert genar.tl.predict(prepared, trained, sections="S1") is None
    assert _changed(before, _snapshot(prepared), same) == documented
