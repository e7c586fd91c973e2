"""genar.settings: verbosity sets what the genar logger shows."""

from __future__ import annotations

import logging

import pytest

import genar
from genar._logging import logger


@pytest.fixture
def restore_verbosity():
    yield
    genar.settings.verbosity = "warning"
    logger.setLevel(logging.NOTSET)


def test_info_verbosity_shows_what_genar_logs(restore_verbosity, capsys):
    assert genar.settings.verbosity == "warning"
    logger.info("not shown at the default verbosity")
    genar.settings.verbosity = "info"
    logger.info("shown at info")
    logger.debug("not shown at info")
    genar.settings.verbosity = 3
    assert genar.settings.verbosity == "debug"
    logger.debug("shown at debug")
    genar.settings.verbosity = 1
    logger.info("hidden again")
    err = capsys.readouterr().err
    assert "genar INFO: shown at info" in err and "genar DEBUG: shown at debug" in err
    assert "not shown" not in err and "hidden again" not in err
    assert not [h for h in logger.handlers if getattr(h, "_genar_own", False)], "genar's handler was not removed"


def test_a_handler_the_user_set_is_kept(restore_verbosity):
    mine = logging.NullHandler()
    logger.addHandler(mine)
    try:
        genar.settings.verbosity = "debug"
        genar.settings.verbosity = "error"
        assert logger.handlers == [mine] and logger.level == logging.ERROR
    finally:
        logger.removeHandler(mine)


@pytest.mark.parametrize("value", ["loud", 4, True, None])
def test_a_bad_verbosity_is_named(value):
    with pytest.raises(ValueError, match=r"`verbosity` must be one of \['error', 'warning', 'info', 'debug'\]"):
        genar.settings.verbosity = value
    assert genar.settings.verbosity == "warning"
