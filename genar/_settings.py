"""Package-wide settings: progress bars, the default device and how much genar logs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ._logging import logger

#: Verbosity names and numbers (as scanpy's ``settings.verbosity``) and the logging level of each.
VERBOSITY_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}
_VERBOSITY_NUMBERS = dict(enumerate(VERBOSITY_LEVELS))


@dataclass
class Settings:
    """Settings read by genar functions when an argument is left at ``None``.

    Attributes
    ----------
    show_progress_bar
        Show :mod:`tqdm` progress bars in long loops.
    device
        Default torch device for encoders and models (``None`` picks CUDA when available, else CPU).
    verbosity
        How much genar logs: ``"error"`` (0), ``"warning"`` (1, the default), ``"info"`` (2: what each step wrote and
        chose) or ``"debug"`` (3); a name or its number, as scanpy's ``settings.verbosity``. It sets the level of
        the ``"genar"`` logger; at ``"info"`` and ``"debug"`` genar adds a handler that writes to standard error
        unless the logger already has one (removed again at ``"warning"`` or ``"error"``). Warnings that ask you to
        act (clipped counts, genes a slide lacks) are :mod:`warnings`, shown whatever the verbosity.

    Examples
    --------
    >>> import genar
    >>> genar.settings.verbosity = "info"  # doctest: +SKIP
    >>> genar.settings.verbosity = 1  # back to warnings only  # doctest: +SKIP
    """

    show_progress_bar: bool = True
    device: str | None = None
    _verbosity: str = field(default="warning", repr=False)

    def progress(self, show_progress_bar: bool | None) -> bool:  # noqa: FBT001 - the argument a call received
        """Whether to show a progress bar: the argument of a call, or this setting when it is ``None``."""
        return self.show_progress_bar if show_progress_bar is None else bool(show_progress_bar)

    @property
    def verbosity(self) -> str:
        """How much genar logs: ``"error"``, ``"warning"``, ``"info"`` or ``"debug"``."""
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: str | int) -> None:
        name = _VERBOSITY_NUMBERS.get(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(name, str) or name.lower() not in VERBOSITY_LEVELS:
            msg = (
                f"`verbosity` must be one of {list(VERBOSITY_LEVELS)} or its number 0-{len(VERBOSITY_LEVELS) - 1}; "
                f"got {value!r}."
            )
            raise ValueError(msg)
        self._verbosity = name.lower()
        level = VERBOSITY_LEVELS[self._verbosity]
        logger.setLevel(level)
        _set_own_handler(level)


def _set_own_handler(level: int) -> None:
    """Give the genar logger a stderr handler at ``info``/``debug`` unless it has one; drop genar's own otherwise."""
    own = [h for h in logger.handlers if getattr(h, "_genar_own", False)]
    if level <= logging.INFO:
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("genar %(levelname)s: %(message)s"))
            handler._genar_own = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        return
    for handler in own:
        logger.removeHandler(handler)


settings = Settings()
