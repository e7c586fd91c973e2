"""What to tell the user when the Hugging Face Hub refuses or cannot be reached: shared by models and encoders."""

from __future__ import annotations


def hub_error_message(err: Exception, repo_id: str, *, revision: str | None = None, offline_advice: str) -> str | None:
    """A message that says what to do about ``err``, or None for an error this does not know (e.g. a missing file).

    ``offline_advice`` is what to do without network access (it differs for models and encoder weights).
    """
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(err, GatedRepoError):  # before RepositoryNotFoundError, its parent class
        return (
            f"{repo_id} is a gated repository: accept its terms at https://huggingface.co/{repo_id} with your "
            "account, then log in on this machine (`hf auth login`, or set HF_TOKEN) and try again."
        )
    if isinstance(err, RevisionNotFoundError):
        return f"{repo_id} has no revision {revision!r}: pass a branch, tag or commit hash the repository has."
    if isinstance(err, RepositoryNotFoundError):
        return (
            f"{repo_id} was not found on the Hugging Face Hub (a private or gated repository looks the same when you "
            "are not logged in: run `hf auth login`, or set HF_TOKEN)."
        )
    offline = isinstance(err, LocalEntryNotFoundError | ConnectionError | TimeoutError)
    if offline or "Connect" in type(err).__name__ or "Timeout" in type(err).__name__:  # httpx's network errors
        return (
            f"{repo_id} could not be fetched: the Hugging Face Hub cannot be reached ({type(err).__name__}) and it is "
            f"not in the local cache. {offline_advice}"
        )
    return None
