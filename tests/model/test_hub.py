"""Sharing models through the Hugging Face Hub, against a local stand-in the real huggingface_hub client talks to."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import genar

huggingface_hub = pytest.importorskip("huggingface_hub")


def _predictions(model, prepared):
    genar.tl.predict(prepared, model, layer_added="p", overwrite=True, show_progress_bar=False)
    return prepared.tables["genar"].layers["p_estimate"].copy()


def test_push_then_load_by_address_and_pinned_revision(hub, trained, prepared, monkeypatch):
    url = trained.push_to_hub("lab/genar-tiny", token="hf_stand_in")
    repo = hub.repos["lab/genar-tiny"]
    first = repo.branches["main"]
    assert url.endswith(f"/lab/genar-tiny/commit/{first}")
    assert set(repo.commits[first]) == {"model.safetensors", "genar.json", "README.md"}
    card = repo.commits[first]["README.md"].decode()
    assert "library_name: genar" in card and 'genar.GenAR.load("hf://lab/genar-tiny")' in card
    assert f"{len(trained.genes)} genes" in card

    loaded = genar.GenAR.load("hf://lab/genar-tiny")
    assert loaded.genes == trained.genes and loaded.encoder == trained.encoder
    for (name, a), (_, b) in zip(trained.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    np.testing.assert_array_equal(_predictions(loaded, prepared), _predictions(trained, prepared))

    # a second push moves main; the first commit stays loadable by its hash, in the address or as `revision=`
    trained.calibration = {"temperature": 1.3}
    trained.push_to_hub("lab/genar-tiny", token="hf_stand_in")
    assert repo.branches["main"] != first
    assert genar.GenAR.load("hf://lab/genar-tiny").calibration == {"temperature": 1.3}
    assert genar.GenAR.load(f"hf://lab/genar-tiny@{first}").calibration == {}
    assert genar.GenAR.load("hf://lab/genar-tiny", revision=first).calibration == {}

    # offline, the cache answers; a revision never fetched is an error that says what to do
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert genar.GenAR.load(f"hf://lab/genar-tiny@{first}").genes == trained.genes
    with pytest.raises(RuntimeError, match=r"cannot be reached .* not in the local cache.*hf download lab/genar-tiny"):
        genar.GenAR.load("hf://lab/genar-tiny@0123456789abcdef0123456789abcdef01234567")


def test_push_to_a_branch(hub, trained):
    trained.push_to_hub("lab/branched", token="hf_stand_in", revision="v1")
    repo = hub.repos["lab/branched"]
    assert repo.commits[repo.branches["main"]] == {}  # main untouched
    assert genar.GenAR.load("hf://lab/branched@v1").genes == trained.genes


def test_hub_errors_say_what_to_do(hub, trained):
    with pytest.raises(RuntimeError, match=r"lab/absent was not found on the Hugging Face Hub.*hf auth login"):
        genar.GenAR.load("hf://lab/absent")
    trained.push_to_hub("lab/model", token="hf_stand_in")
    with pytest.raises(RuntimeError, match=r"lab/model has no revision 'v9'"):
        genar.GenAR.load("hf://lab/model@v9")
    hub.repos["lab/model"].gated = True
    with pytest.raises(RuntimeError, match=r"gated repository: accept its terms at https://huggingface.co/lab/model"):
        genar.GenAR.load("hf://lab/model")
    hub.repos["lab/model"].gated = False
    hub.create("lab/not-genar")
    hub.commit("lab/not-genar", "main", {"x": b"1"})
    with pytest.raises(FileNotFoundError, match=r"lab/not-genar is not a genar model: it has no genar.json"):
        genar.GenAR.load("hf://lab/not-genar")
    with pytest.raises(ValueError, match=r"'hf://lab' is not a Hub address"):
        genar.GenAR.load("hf://lab")
    with pytest.raises(ValueError, match=r"pins revision 'a' and `revision`='b'"):
        genar.GenAR.load("hf://lab/model@a", revision="b")
    with pytest.raises(ValueError, match=r"`revision`='main' applies to a Hub repository"):
        genar.GenAR.load("some/folder", revision="main")


def test_network_failures_say_what_to_do():
    # the errors huggingface_hub lets through when the Hub cannot be reached (after its own retries, which a test of a
    # closed port would wait through for ~25 s): the connection errors of its HTTP client and of the standard library
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    from genar._hub import hub_error_message
    from genar.model._hub import OFFLINE_ADVICE

    httpx = pytest.importorskip(type(huggingface_hub.get_session()).__module__.split(".")[0])
    failures = [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectTimeout("timed out"),
        OfflineModeIsEnabled("offline"),
        LocalEntryNotFoundError("not cached"),
        TimeoutError(),
    ]
    for err in failures:
        said = hub_error_message(err, "lab/model", offline_advice=OFFLINE_ADVICE.format(repo="lab/model"))
        assert said is not None and "the Hugging Face Hub cannot be reached" in said, type(err)
        assert "hf download lab/model --local-dir DIR" in said and "genar.GenAR.load(DIR)" in said
    assert hub_error_message(ValueError("something else"), "lab/model", offline_advice="") is None
