"""Where genar keeps files (its cache, the data folder the environment names) and their digests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_CHUNK = 1 << 20


def git_blob_sha1(path: str | os.PathLike) -> str:
    """The git blob id of a file: the SHA-1 of ``blob <size>``, a zero byte, and the content (as ``git hash-object``).

    It verifies a download from a git repository whose listing gives blob ids but no sha256.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256sum(path: str | os.PathLike) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """The genar cache folder: ``$GENAR_CACHE_DIR``, else ``$XDG_CACHE_HOME/genar``, else ``~/.cache/genar``.

    An absolute path: a relative ``GENAR_CACHE_DIR`` is resolved against the working directory once, here.
    """
    if env := os.environ.get("GENAR_CACHE_DIR"):
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser().resolve() / "genar"


def data_dir() -> Path | None:
    """The folder ``$GENAR_DATA_DIR`` names (holding e.g. ``her2st/``), as an absolute path; None when unset.

    A relative value (``GENAR_DATA_DIR=../shared/data``) is resolved against the working directory once, here.
    """
    env = os.environ.get("GENAR_DATA_DIR")
    return Path(env).expanduser().resolve() if env else None
