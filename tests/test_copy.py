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
        lambda s, **kw: genar.pp.select_genes(s, 16, train_sections=["S0"], **kw),
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
        {
            "tables/genar/obs",
            "tables/genar/obsm/genar_patches",
            "tables/genar/uns/genar_patches",
            "shapes/S0_genar_patches",
            "shapes/S1_genar_patches",
        },
    ),
    "embed_patches": (
        lambda s, **kw: genar.pp.embed_patches(s, encoder="color_texture", show_progress_bar=False, **kw),
        {"tables/genar/obsm/X_histology", "tables/genar/uns/X_histology"},
    ),
    "baseline": (
        lambda s, **kw: genar.tl.baseline(s, "ridge", train_sections=["S0"], **kw),
        {
            "tables/genar/obs",
            "tables/genar/layers/ridge_counts",
            "tables/genar/layers/ridge_counts_estimate",
            "tables/genar/uns/genar_predictions",
        },
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


def test_make_spots_in_place_and_copy(sdata):
    import numpy as np
    from spatialdata import SpatialData

    hne = SpatialData(images={"he": sdata.images["S0_image"]})
    kw = {"pixel_size_um": 1.0, "diameter_um": 12, "spacing_um": 20, "tissue_mask": np.ones((8, 8), bool)}
    result = genar.pp.make_spots(hne, "he", copy=True, **kw)
    assert not hne.tables and not hne.shapes  # the input is untouched
    assert set(result.tables) == {"genar"} and set(result.shapes) == {"he_pseudo_spots"}
    assert not hne.labels and set(result.labels) == {"he_tissue"}
    assert result.images["he"] is hne.images["he"]
    assert genar.pp.make_spots(hne, "he", **kw) is None and set(hne.tables) == {"genar"}


@pytest.mark.parametrize(
    ("step", "documented"),
    [
        ("evaluate", {"tables/genar/uns/genar_evaluation"}),
        ("noise_ceiling", {"tables/genar/uns/genar_noise_ceiling"}),
    ],
)
def test_scores_in_place_return_their_table_and_with_copy_the_copy(prepared, trained, same, step, documented):
    genar.tl.predict(prepared, trained, sections="S1", show_progress_bar=False)
    run = {
        "evaluate": lambda s, **kw: genar.tl.evaluate(s, sections="S1", **kw),
        "noise_ceiling": lambda s, **kw: genar.tl.noise_ceiling(s, sections="S1", **kw),
    }[step]
    before = _snapshot(prepared)
    copied = run(prepared, copy=True)
    assert not _changed(before, _snapshot(prepared), same)
    assert _changed(before, _snapshot(copied), same) == documented
    frame = run(prepared)
    assert isinstance(frame, pd.DataFrame) and _changed(before, _snapshot(prepared), same) == documented
    with pytest.raises(ValueError, match=r"exists already. Pass `overwrite=True` to replace it, or choose another"):
        run(prepared)  # the scores are never replaced silently
    run(prepared, overwrite=True)


def test_predict_in_place_and_copy(prepared, trained, same):
    before = _snapshot(prepared)
    result = genar.tl.predict(prepared, trained, sections="S1", copy=True)
    assert not _changed(before, _snapshot(prepared), same)
    documented = {
        "tables/genar/obs",
        "tables/genar/layers/genar_counts",
        "tables/genar/layers/genar_counts_estimate",
        "tables/genar/uns/genar_predictions",
    }
    assert _changed(before, _snapshot(result), same) == documented
    assert genar.tl.predict(prepared, trained, sections="S1") is None
    assert _changed(before, _snapshot(prepared), same) == documented
