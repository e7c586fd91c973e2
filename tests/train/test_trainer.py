"""The Lightning set-up genar trains with: defaults, callbacks, and a run without banners or unactionable warnings."""

from __future__ import annotations

import logging
import warnings

import lightning as L
import pytest

from genar.train import BestWeights, History, make_trainer, quiet_lightning, training_callbacks


def test_quiet_lightning_silences_banners_and_known_warnings_then_restores_the_logger():
    pl_logger = logging.getLogger("lightning.pytorch")
    pl_logger.setLevel(logging.INFO)
    with quiet_lightning():
        assert pl_logger.level == logging.WARNING
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with quiet_lightning():  # nested: the inner filters apply
                warnings.warn("The train_dataloader does not have many workers.", stacklevel=1)
                warnings.warn("something a user should see", stacklevel=1)
        assert [str(w.message) for w in caught] == ["something a user should see"]
    assert pl_logger.level == logging.INFO


def test_callbacks_follow_validation_and_checkpointing(tmp_path):
    plain = training_callbacks(monitor=None, early_stopping_patience=5, checkpoint_dir=None)
    assert [type(c) for c in plain] == [History]  # no validation: nothing to select or stop on
    full = training_callbacks(monitor="val/loss", early_stopping_patience=5, checkpoint_dir=tmp_path)
    assert [type(c) for c in full] == [History, BestWeights, L.pytorch.callbacks.EarlyStopping,
                                       L.pytorch.callbacks.ModelCheckpoint]  # fmt: skip
    assert full[2].patience == 5 and full[1].monitor == "val/loss"
    never = training_callbacks(monitor="val/loss", early_stopping_patience=None, checkpoint_dir=None)
    assert [type(c) for c in never] == [History, BestWeights]


@pytest.mark.parametrize("validate", [True, False])
def test_trainer_defaults_and_overrides(validate):
    with quiet_lightning():
        trainer = make_trainer(
            max_epochs=3,
            accelerator="cpu",
            callbacks=[History()],
            validate=validate,
            checkpointing=False,
            show_progress_bar=False,
        )
        assert trainer.max_epochs == 3 and trainer.logger is None and trainer.num_sanity_val_steps == 0
        assert (trainer.limit_val_batches == 0) is not validate
        overridden = make_trainer(
            max_epochs=3,
            accelerator="cpu",
            callbacks=[],
            validate=True,
            checkpointing=False,
            show_progress_bar=False,
            max_steps=7,
        )
    assert overridden.max_steps == 7
