from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

import genar
from genar.model._io import MANIFEST, WEIGHTS

TINY = genar.GenARConfig(width=16, depth=1, heads=2, mlp_ratio=2.0, scales=(1, 2, 4))


@pytest.fixture
def model():
    m = genar.GenAR(TINY, genes=["a", "b", "c", "d"], cap=9, feature_dim=3, encoder={"name": "enc", "dim": 3})
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m.module.parameters():
            p.add_(0.1 * torch.randn_like(p))
        m.module.feature_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
    m.is_trained = True
    m.history = [{"epoch": 0, "train/loss": 1.5}]
    return m


def _inputs():
    rng = np.random.default_rng(0)
    return rng.normal(size=(20, 3)).astype(np.float32), rng.random((20, 2)).astype(np.float32)


def test_round_trip_gives_identical_predictions(model, tmp_path):
    feats, xy = _inputs()
    before = model.predict_counts(feats, xy, show_progress_bar=False)
    sampled = model.predict_counts(feats, xy, n_samples=3, random_state=4, show_progress_bar=False)
    model.save(tmp_path / "m")
    loaded = genar.GenAR.load(tmp_path / "m")
    assert np.array_equal(before, loaded.predict_counts(feats, xy, show_progress_bar=False))
    assert np.array_equal(
        sampled, loaded.predict_counts(feats, xy, n_samples=3, random_state=4, show_progress_bar=False)
    )
    assert loaded.genes == ["a", "b", "c", "d"] and loaded.cap == 9 and loaded.scales == (1, 2, 4)
    assert loaded.encoder == {"name": "enc", "dim": 3}
    assert loaded.config == model.config.replace()
    assert loaded.history == model.history
    manifest = json.loads((tmp_path / "m" / MANIFEST).read_text())
    assert manifest["genar_version"] == genar.__version__
    assert manifest["genes"] == ["a", "b", "c", "d"]


def test_save_does_not_overwrite(model, tmp_path):
    model.save(tmp_path / "m")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(tmp_path / "m")
    model.save(tmp_path / "m", overwrite=True)


def test_tampered_weights_are_refused(model, tmp_path):
    path = model.save(tmp_path / "m")
    data = bytearray((path / WEIGHTS).read_bytes())
    data[-1] ^= 0xFF
    (path / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="modified or truncated after saving, and is refused"):
        genar.GenAR.load(path)


def test_truncated_weights_are_refused(model, tmp_path):
    path = model.save(tmp_path / "m")
    data = (path / WEIGHTS).read_bytes()
    (path / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="refused"):
        genar.GenAR.load(path)


class _Boom:
    def __reduce__(self):
        return (pytest.fail, ("the pickle payload was executed",))


def test_pickle_payload_is_never_executed(model, tmp_path):
    path = model.save(tmp_path / "m")
    payload = pickle.dumps({"state": _Boom()})
    (path / WEIGHTS).write_bytes(payload)
    # even with a manifest that vouches for the payload, it is not unpickled
    manifest = json.loads((path / MANIFEST).read_text())
    from genar.datasets._download import sha256sum

    manifest["weights_sha256"] = sha256sum(path / WEIGHTS)
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="not a safetensors file.*never unpickles"):
        genar.GenAR.load(path)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a genar checkpoint: genar.json is missing"):
        genar.GenAR.load(tmp_path)


def test_untrained_model_cannot_predict_or_save(tmp_path):
    m = genar.GenAR(TINY, genes=["a", "b", "c", "d"], cap=9, feature_dim=3)
    with pytest.raises(RuntimeError, match=r"not trained yet: run `genar.tl.fit`"):
        m.predict_counts(*_inputs())
    with pytest.raises(RuntimeError, match="not trained"):
        m.save(tmp_path / "m")


def test_feature_dimension_must_match(model):
    feats, xy = _inputs()
    with pytest.raises(ValueError, match=r"shape \(20, 5\); this model needs \(n_spots, 3\)"):
        model.predict_counts(np.hstack([feats, feats[:, :2]]), xy)


def test_config_presets():
    paper = genar.GenARConfig.paper()
    assert (paper.width, paper.depth, paper.heads, paper.mlp_ratio, paper.cap) == (512, 8, 8, 3.0, 2000)
    assert paper.scales == (1, 4, 8, 40, 100, 200) and paper.lr == 1e-4 and paper.batch_size == 64
    assert (paper.alpha, paper.beta, paper.cond_dropout, paper.drop_path) == (0.01, 1.0, 0.1, 0.1)
    small = genar.GenARConfig.small()
    assert (small.width, small.depth, small.heads, small.cap) == (128, 4, 4, 2000)
    assert genar.GenARConfig.from_dict(paper.to_dict()) == paper
    assert paper.hash() != small.hash()
    with pytest.raises(ValueError, match=r"invalid `heads`=3 \(must divide width=64\)"):
        genar.GenARConfig(heads=3)
