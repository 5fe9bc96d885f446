"""Downloads a weights file into Keras' cache, bounded in size and checked before it is kept.

The server is not trusted: the body is streamed into a temporary file beside the cache entry and
abandoned as soon as it passes the size a file of that model can have (whatever Content-Length
claims), and the file enters the cache only once its checksum (where the publisher gives one)
matches, so neither a damaged nor an endless download is ever used or left behind. A cached file
is checked again on every use.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from typing import Callable

from regnet_keras.errors import InputError
from regnet_keras.weights.state_dict_files import sha256_of

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60


class DownloadRefusedError(InputError, OSError):
    """A download that is too large or fails its checksum; nothing was kept."""


def cache_path(file_name: str, cache_dir: str | None = None) -> str:
    """Where keras.utils.get_file keeps `file_name`: CACHE_DIR/models (default ~/.keras, or
    $KERAS_HOME)."""
    base = cache_dir or os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras")
    return os.path.join(base, "models", file_name)


def fetch(url: str, path: str, max_bytes: int, check: Callable[[str, str], str | None]) -> str:
    """`path`, downloaded from `url` if it is not there yet; `check(path, sha256)` returns a
    problem (or None) and runs on every use, cached or fresh. Raises DownloadRefusedError for a
    file over `max_bytes` or failing `check` (the file is deleted), and OSError (urllib's
    URLError) when the server cannot be reached."""
    if os.path.isfile(path):
        _refuse_unless_fit(path, url, max_bytes, check)
        return path
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".part", dir=directory)
    try:
        with os.fdopen(handle, "wb") as file, \
                urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise DownloadRefusedError(_too_large(url, int(declared), max_bytes))
            received = 0
            while chunk := response.read(CHUNK_BYTES):
                received += len(chunk)
                if received > max_bytes:
                    raise DownloadRefusedError(_too_large(url, received, max_bytes))
                file.write(chunk)
        _refuse_unless_fit(temporary, url, max_bytes, check)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _too_large(url, size, max_bytes):
    return (f"{url} sends at least {size} bytes, more than the {max_bytes} a weights file of "
            "this model can hold; the download was abandoned and nothing was kept. Check the "
            "URL or the mirror.")


def _refuse_unless_fit(path, url, max_bytes, check):
    size = os.path.getsize(path)
    problem = (f"it holds {size} bytes, more than the {max_bytes} a weights file of this model "
               "can hold") if size > max_bytes else check(path, sha256_of(path))
    if problem:
        os.remove(path)
        raise DownloadRefusedError(f"{url}: {problem}; it was deleted. Download it again, or "
                                   "check the mirror.")
