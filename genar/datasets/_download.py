"""Download files into a user cache and check their sha256."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from .._files import sha256sum
from .._logging import logger

_CHUNK = 1 << 20


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


def fetch(url: str, target: Path, sha256: str, *, timeout: float = 60.0) -> Path:
    """Return ``target``, downloading ``url`` there first unless a file with the right checksum is present.

    The download goes to a temporary file in the same folder and is moved into place only after its sha256
    matches, so an interrupted or corrupted download never leaves a file that looks valid. A cached file with
    the wrong checksum is downloaded again.

    Parameters
    ----------
    url
        Address of the file (``https://`` or ``file://``).
    target
        Where the file is cached.
    sha256
        Expected hex digest.
    timeout
        Seconds to wait for the server.

    Raises
    ------
    OSError
        The file could not be downloaded, or its checksum does not match.
    """
    target = Path(target)
    if target.exists():
        if sha256sum(target) == sha256:
            return target
        logger.warning("Cached file %s has the wrong checksum; downloading it again.", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s to %s", url, target)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, _CHUNK)
        got = sha256sum(tmp)
        if got != sha256:
            msg = f"Checksum mismatch for {url}: expected sha256 {sha256}, got {got}. The file was not kept."
            raise OSError(msg)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
