"""Download files into a user cache and check their sha256."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from .._logging import logger

_CHUNK = 1 << 20


def cache_dir() -> Path:
    """The genar cache folder: ``$GENAR_CACHE_DIR``, else ``$XDG_CACHE_HOME/genar``, else ``~/.cache/genar``."""
    if env := os.environ.get("GENAR_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "genar"


def sha256sum(path: str | os.PathLike) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


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
