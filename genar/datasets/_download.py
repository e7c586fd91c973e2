"""Download files into a user cache through pooch, and check them against a recorded digest."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from .._files import git_blob_sha1, sha256sum
from .._logging import logger
from .._settings import settings


def _verify(path: Path, *, sha256: str | None, git_blob: str | None) -> str | None:
    """None when ``path`` matches every recorded digest, else what differs."""
    if sha256 is not None and (got := sha256sum(path)) != sha256:
        return f"sha256 {got}, expected {sha256}"
    if git_blob is not None and (got := git_blob_sha1(path)) != git_blob:
        return f"git blob id {got}, expected {git_blob}"
    return None


def copy_file_url(url: str, output_file, pooch=None) -> None:  # the signature pooch calls a downloader with
    """A pooch downloader for ``file://`` addresses (a mirror on a shared disk, or the tests' local copy)."""
    source = Path(url2pathname(unquote(urlparse(url).path)))
    with source.open("rb") as src:
        if hasattr(output_file, "write"):
            shutil.copyfileobj(src, output_file)
        else:
            with open(output_file, "wb") as out:
                shutil.copyfileobj(src, out)


def fetch(
    url: str, target: Path, sha256: str | None = None, *, git_blob: str | None = None, timeout: float = 60.0
) -> Path:
    """Return ``target``, downloading ``url`` there first unless a file with the right digest is present.

    The download goes through :func:`pooch.retrieve` (a progress bar when genar shows them), into a temporary file in
    the same folder that is moved into place only after it matches its sha256, so an interrupted or corrupted
    download never leaves a file that looks valid. A file recorded by its git blob id only (pooch cannot compute one)
    is checked after the move and removed when it does not match. A cached file that does not match is downloaded
    again.

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
    import pooch
    import requests

    if sha256 is None and git_blob is None:
        msg = f"No digest to check {url} against: pass `sha256` or `git_blob`."
        raise ValueError(msg)
    target = Path(target)
    if target.exists():
        if _verify(target, sha256=sha256, git_blob=git_blob) is None:
            return target
        logger.warning("Cached file %s does not match its digest; downloading it again.", target)
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s to %s", url, target)
    show = settings.progress(None)
    if urlparse(url).scheme == "file":
        downloader = copy_file_url
    else:
        downloader = pooch.HTTPDownloader(progressbar=show, timeout=timeout)
    try:
        pooch.retrieve(
            url,
            known_hash=None if sha256 is None else f"sha256:{sha256}",
            fname=target.name,
            path=target.parent,
            downloader=downloader,
        )
    except ValueError as err:  # pooch: the downloaded file's hash does not match (the file was not kept)
        msg = f"Checksum mismatch for {url}: {err} The file was not kept."
        raise OSError(msg) from err
    except requests.exceptions.RequestException as err:
        msg = f"Could not download {url}: {err}"
        raise OSError(msg) from err
    if (problem := _verify(target, sha256=None, git_blob=git_blob)) is not None:
        target.unlink()
        msg = f"Checksum mismatch for {url}: {problem}. The file was not kept."
        raise OSError(msg)
    return target
