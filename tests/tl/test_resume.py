"""An interrupted fit resumes from its checkpoint and ends where the uninterrupted run ends."""

from __future__ import annotations

import numpy as np
import pytest

import genar


def _fit(prepared, config, **kwargs):
    return genar.tl.fit(
        prepared, sections=["S0"], val_sections=["S1"], config=config, seed=3, show_progress_bar=False, **kwargs
    )


def test_resumed_fit_equals_the_uninterrupted_one(prepared, tiny_config, tmp_path):
    config = tiny_config.replace(batch_size=16, cap=100)  # several steps per epoch: the shuffling order matters
    whole = _fit(prepared, config, max_epochs=4, checkpoint_dir=tmp_path / "whole")
    assert (tmp_path / "whole" / "last.ckpt").is_file()

    _fit(prepared, config, max_epochs=2, checkpoint_dir=tmp_path / "part")  # "interrupted" after two epochs
    resumed = _fit(prepared, config, max_epochs=4, checkpoint_dir=tmp_path / "part", resume_from=tmp_path / "part")

    for (name, a), b in zip(whole.module.state_dict().items(), resumed.module.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy()), name
    assert len(resumed.history) == 4  # the history of the first two epochs came back with the checkpoint
    assert resumed.history_frame()["train/loss"].tolist() == whole.history_frame()["train/loss"].tolist()
    assert resumed.train_info["best_epoch"] == whole.train_info["best_epoch"]
    assert resumed.train_info["resumed_from"].endswith("last.ckpt")


def test_resume_from_a_missing_checkpoint_says_what_to_pass(prepared, tiny_config, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"resume_from=.*no checkpoint at .*last\.ckpt.*checkpoint_dir"):
        _fit(prepared, tiny_config, max_epochs=1, resume_from=tmp_path)
