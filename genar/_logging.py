"""The package logger."""

from __future__ import annotations

import logging

logger = logging.getLogger("genar")
