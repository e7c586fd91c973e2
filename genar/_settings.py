"""Package-wide settings: progress bars and the default device."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Settings:
    """Settings read by genar functions when an argument is left at ``None``.

    Attributes
    ----------
    show_progress_bar
        Show :mod:`tqdm` progress bars in long loops.
    device
        Default torch device for encoders and models (``None`` picks CUDA when available, else CPU).
    """

    show_progress_bar: bool = True
    device: str | None = None

    def progress(self, show_progress_bar: bool | None) -> bool:  # noqa: FBT001 - the argument a call received
        """Whether to show a progress bar: the argument of a call, or this setting when it is ``None``."""
        return self.show_progress_bar if show_progress_bar is None else bool(show_progress_bar)


settings = Settings()
