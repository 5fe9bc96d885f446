"""Files of a Hugging Face Hub repository (`hf://org/name[@revision]`), downloaded through
huggingface_hub into its cache and checked against what the Hub announced for them.

huggingface_hub refuses a body shorter or longer than the announced size; it does not check the
content. The Hub names every file by a digest (its ETag: the SHA-256 of an LFS file such as
model.safetensors, the git blob SHA-1 of a plain file such as config.json), and huggingface_hub
stores the file in its cache under that name, so each file is hashed here and compared with it: a
tampered or damaged file is deleted from the cache and refused. HF_ENDPOINT and HF_HUB_CACHE
(read at each call, unlike huggingface_hub, which reads them once) name a mirror and the cache.
"""

from __future__ import annotations

import hashlib
import os
import re

from regnet_keras.weights.h5 import WeightsDownloadError
from regnet_keras.weights.optional_packages import require

HF_SCHEME = "hf://"
ENDPOINT_ENVIRONMENT = "HF_ENDPOINT"
CACHE_ENVIRONMENT = "HF_HUB_CACHE"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


class HubHandleError(WeightsDownloadError):
    """An hf:// handle that is malformed, or whose files cannot be fetched or verified."""


def is_hf_handle(handle) -> bool:
    return isinstance(handle, str) and handle.startswith(HF_SCHEME)


def parse_handle(handle: str) -> tuple[str, str | None]:
    """("org/name", revision or None) of "hf://org/name" or "hf://org/name@revision"."""
    body = handle[len(HF_SCHEME):] if is_hf_handle(handle) else handle
    repo_id, _, revision = body.partition("@")
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise HubHandleError(
            f"{handle!r} is not a Hugging Face handle: write hf://ORGANISATION/REPOSITORY "
            "(optionally @REVISION), e.g. hf://timm/regnety_040.ra3_in1k.")
    return repo_id, revision or None


def download(handle: str, filenames, optional=(), cache_dir: str | None = None) -> dict:
    """{filename: local path} of `filenames` (all needed) and `optional` (kept when present) of
    the repository of `handle`, each verified against the digest the Hub announced."""
    huggingface_hub = require("huggingface_hub")
    from huggingface_hub import errors
    repo_id, revision = parse_handle(handle)
    cache_dir = cache_dir or os.environ.get(CACHE_ENVIRONMENT)
    paths = {}
    for filename in list(filenames) + list(optional):
        try:
            path = huggingface_hub.hf_hub_download(
                repo_id, filename, revision=revision, cache_dir=cache_dir,
                endpoint=os.environ.get(ENDPOINT_ENVIRONMENT))
        except errors.EntryNotFoundError as error:
            if filename in optional:
                continue
            raise HubHandleError(f"{handle} has no {filename}: {_first_line(error)}") from error
        except Exception as error:  # huggingface_hub and httpx raise many types for the network
            raise HubHandleError(
                f"could not fetch {filename} of {handle}: {_first_line(error)}. If this machine "
                f"is offline, download the repository elsewhere and pass its directory, or "
                f"point {ENDPOINT_ENVIRONMENT} at a mirror.") from error
        verify(path, f"{handle} {filename}",
               lambda: _announced_etag(huggingface_hub, repo_id, filename, revision))
        paths[filename] = path
    return paths


def verify(path: str, described: str, ask_hub=None) -> None:
    """Checks a file in huggingface_hub's cache against the digest its blob is named by (or, in a
    cache without symbolic links, the digest `ask_hub()` gets from the Hub)."""
    blob = os.path.realpath(path)
    expected = os.path.basename(blob)
    if not (_SHA256.match(expected) or _SHA1.match(expected)) and ask_hub is not None:
        expected = ask_hub() or ""
    if _SHA256.match(expected):
        actual = _digest(blob, hashlib.sha256())
    elif _SHA1.match(expected):
        size = os.path.getsize(blob)
        actual = _digest(blob, hashlib.sha1(b"blob %d\0" % size))
    else:
        raise HubHandleError(
            f"{described}: the Hub announced no SHA-256 or git digest for {path}, so it cannot "
            "be checked; download the repository with a client that checks it and pass its "
            "directory.")
    if actual != expected:
        for stale in (blob, path):
            if os.path.lexists(stale):
                os.remove(stale)  # a damaged download must not stay in the cache
        raise HubHandleError(
            f"{described}: the downloaded file's digest {actual[:16]}... differs from the "
            f"{expected[:16]}... the Hub announced, so it was tampered with or damaged on the "
            "way; it was deleted. Download it again, or check the mirror in "
            f"{ENDPOINT_ENVIRONMENT}.")


def _announced_etag(huggingface_hub, repo_id, filename, revision) -> str | None:
    url = huggingface_hub.hf_hub_url(repo_id, filename, revision=revision,
                                     endpoint=os.environ.get(ENDPOINT_ENVIRONMENT))
    return huggingface_hub.get_hf_file_metadata(url).etag


def _digest(path: str, digest) -> str:
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _first_line(error) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
