"""The user-facing GenAR model class and its config."""

from ._config import GenARConfig
from ._genar import GenAR

__all__ = ["GenAR", "GenARConfig"]
