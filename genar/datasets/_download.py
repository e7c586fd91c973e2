"""Download files into a user cache and check them against a recorded digest."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from .._files import git_blob_sha1, sha256sum
from .._logging import logger

_CHUNK = 1 << 20


def _verify(path: Path, *, sha256: str | None, git_blob: str | None) -> str | None:
    """None when ``path`` matches every recorded digest, else what differs."""
    if sha256 is not None and (got := sha256sum(path)) != sha256:
        return f"sha256 {got}, expected {sha256}"
    if git_blob is not None and (got := git_blob_sha1(path)) != git_blob:
        return f"git blob id {got}, expected {git_blob}"
    return None


def fetch(
    url: str, target: Path, sha256: str | None = None, *, git_blob: str | None = None, timeout: float = 60.0
) -> Path:
    """Return ``target``, downloading ``url`` there first unless a file with the right digest is present.

    The download goes to a temporary file in the same folder and is moved into place only after it matches its
    digests, so an interrupted or corrupted download never leaves a file that looks valid. A cached file that does
    not match is downloaded again.

    Parameters
    ----------
    url
        Address of the file (``https://`` or ``file://``).
    target
        Where the file is cached.
    sha256
        Expected hex sha256 digest.
    git_blob
        Expected git blob id (SHA-1 of ``blob <size>``, a zero byte and the content), for files whose repository
        listing records no sha256. At least one digest must be given.
    timeout
        Seconds to wait for the server.

    Raises
    ------
    OSError
        The file could not be downloaded, or its digest does not match.
    """
    if sha256 is None and git_blob is None:
        msg = f"No digest to check {url} against: pass `sha256` or `git_blob`."
        raise ValueError(msg)
    target = Path(target)
    if target.exists():
        if _verify(target, sha256=sha256, git_blob=git_blob) is None:
            return target
        logger.warning("Cached file %s does not match its digest; downloading it again.", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s to %s", url, target)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, out, _CHUNK)
        if (problem := _verify(tmp, sha256=sha256, git_blob=git_blob)) is not None:
            msg = f"Checksum mismatch for {url}: {problem}. The file was not kept."
            raise OSError(msg)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
