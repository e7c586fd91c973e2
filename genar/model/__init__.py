"""The user-facing GenAR model class and its config."""

from ._cap import choose_cap, clip_counts
from ._config import GenARConfig
from ._genar import GenAR, checkpoint_file

__all__ = ["GenAR", "GenARConfig", "checkpoint_file", "choose_cap", "clip_counts"]
