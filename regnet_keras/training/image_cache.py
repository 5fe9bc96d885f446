"""A disk cache of image-folder files decoded once, upright, RGB and resized to a shorter side a
little above the training size, stored as JPEG so that TensorFlow decodes them outside the GIL.

A 12-megapixel photo costs a few hundred milliseconds to decode in full and about a millisecond
from its 256-pixel copy, so after the first run over a folder every epoch, run and tool (train,
evaluation, quantization, tools.benchmark_input) reads the small copies.

Keys. An entry is named by the SHA-256 of the file's content and the shorter side it was made
for, so a changed file can never be served an old entry, and a copied or moved folder finds its
entries again. Hashing every file on every run would read every photo, so a per-file index maps
the file's identity (real path, size, modification and change times in nanoseconds, inode and
device) to its content hash: the change time (ctime) is set by the kernel on every write and
cannot be set back by tools that restore modification times, so a rewritten file always misses
the index and is hashed again.

Concurrency. Entries and index files are written to a temporary file in their own directory and
renamed over their name (atomic on POSIX): two runs sharing a cache at most build an entry twice
and never read a partial one. Eviction spares the entries of this run and every entry used within
RECENT_USE_SECONDS, so that a run reading the cache is not robbed by another's eviction.

Bound. The cache holds at most `max_bytes` of entries: when a new entry does not fit, the least
recently used other entries go first; when even that is not enough, the image is not cached and
is decoded from its file at reduced scale each time instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from regnet_keras.training import image_decoding

CACHE_DIR_ENVIRONMENT = "REGNET_KERAS_IMAGE_CACHE"
DEFAULT_MAX_BYTES = 20 << 30
# Directory values that turn the cache off.
OFF = ("", "off", "none")
# The entries' format; a change of how entries are made changes this and leaves old ones unused.
FORMAT = "v1"
ENTRY_JPEG_QUALITY = 95
RECENT_USE_SECONDS = 24 * 3600
# Image files larger than this are refused: 89 megapixels of RGB (Pillow's pixel limit) are
# 268 MB uncompressed, so no usable image file needs more.
MAX_FILE_BYTES = 300 << 20
# The cached shorter side for a training size: image_size / 0.875, the evaluation resize of the
# reference recipe (256 for 224), so evaluation and random-resized crops both downscale.
SIDE_OVER_IMAGE_SIZE = 1 / 0.875


def default_directory() -> str:
    """$REGNET_KERAS_IMAGE_CACHE, else $XDG_CACHE_HOME/regnet_keras/images (~/.cache/...)."""
    configured = os.environ.get(CACHE_DIR_ENVIRONMENT)
    if configured:
        return os.path.expanduser(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "regnet_keras", "images")


def cache_for(image_size: int, eval_crop_fraction: float = 0.875,
              directory: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
    """The ImageCache that serves training at `image_size` and its evaluation, or None when
    `directory` (None: $REGNET_KERAS_IMAGE_CACHE, else the default place) is "off"."""
    if directory is None:
        directory = os.environ.get(CACHE_DIR_ENVIRONMENT) or default_directory()
    if directory.strip().lower() in OFF:
        return None
    return ImageCache(directory, shorter_side_for(image_size, eval_crop_fraction), max_bytes)


def shorter_side_for(image_size: int, eval_crop_fraction: float = 0.875) -> int:
    """The cached shorter side that serves training at `image_size` and its evaluation."""
    return int(math.ceil(image_size * max(SIDE_OVER_IMAGE_SIZE, 1 / eval_crop_fraction)))


@dataclasses.dataclass(frozen=True)
class CacheReport:
    """What one pass over a folder did with the cache."""

    directory: str
    shorter_side: int
    reused: int  # entries found
    built: int  # entries made now
    not_cached: int  # decodable files left uncached by the size bound
    evicted: int
    total_bytes: int  # all entries in the cache after this pass
    max_bytes: int

    def summary(self) -> str:
        line = (f"image cache {self.directory} ({self.shorter_side}px): {self.reused} reused, "
                f"{self.built} built; {self.total_bytes / 1e6:.1f} MB of "
                f"{self.max_bytes / 1e9:.1f} GB")
        if self.evicted:
            line += f", {self.evicted} old entries evicted"
        if self.not_cached:
            line += (f"; {self.not_cached} images did not fit and are decoded from their files "
                     "each time (raise --image_cache_max_gb)")
        return line


def _atomic_write(path: str, payload: bytes) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".partial-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _read_small_file(path: str, limit: int) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read(limit + 1)
    except OSError:
        return None


class ImageCache:
    """Entries for one shorter side under `directory`; see the module's description."""

    def __init__(self, directory: str | None = None, shorter_side: int = 256,
                 max_bytes: int = DEFAULT_MAX_BYTES, workers: int | None = None):
        if shorter_side < 1:
            raise ValueError(f"shorter_side={shorter_side} is invalid: it must be positive.")
        if max_bytes < 0:
            raise ValueError(f"max_bytes={max_bytes} is invalid: it must not be negative.")
        self.directory = os.path.abspath(os.path.expanduser(directory or default_directory()))
        self.shorter_side = int(shorter_side)
        self.max_bytes = int(max_bytes)
        self.workers = workers or os.cpu_count() or 2
        self._entries = os.path.join(self.directory, FORMAT, "images")
        self._index = os.path.join(self.directory, FORMAT, "index")

    def entry_path(self, content_hash: str) -> str:
        return os.path.join(self._entries, str(self.shorter_side), content_hash[:2],
                            content_hash + ".jpg")

    @staticmethod
    def _identity(path: str) -> str:
        status = os.stat(path)
        identity = "\0".join(map(str, (os.path.realpath(path), status.st_size,
                                       status.st_mtime_ns, status.st_ctime_ns, status.st_ino,
                                       status.st_dev)))
        return hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()

    def _index_path(self, identity: str) -> str:
        return os.path.join(self._index, identity[:2], identity)

    def _indexed_hash(self, identity: str) -> str | None:
        recorded = _read_small_file(self._index_path(identity), 64)
        if recorded is None or len(recorded) != 64:
            return None
        text = recorded.decode("ascii", "replace")
        return text if all(c in "0123456789abcdef" for c in text) else None

    def lookup(self, path: str) -> str | None:
        """The entry of `path` if the cache holds one for its current content, else None."""
        try:
            content_hash = self._indexed_hash(self._identity(path))
        except OSError:
            return None
        if content_hash is None:
            return None
        entry = self.entry_path(content_hash)
        return entry if os.path.isfile(entry) else None

    def _make_entry(self, path: str):
        """(content hash, JPEG bytes of the resized image) of `path`, or (hash, None) when the
        entry already exists; raises what decoding raises for unusable files."""
        from PIL import Image
        identity = self._identity(path)
        with open(path, "rb") as file:
            # Read whole (hashed and decoded from memory): bounded, so that a huge file named
            # .jpg cannot take memory out of proportion to any image under Pillow's limit.
            content = file.read(MAX_FILE_BYTES + 1)
        if len(content) > MAX_FILE_BYTES:
            raise image_decoding.ImageTooLargeError(
                f"{path} holds more than {MAX_FILE_BYTES >> 20} MB, more than any image under "
                "the pixel limit needs: resize or remove it.")
        content_hash = hashlib.sha256(content).hexdigest()
        _atomic_write(self._index_path(identity), content_hash.encode("ascii"))
        if os.path.isfile(self.entry_path(content_hash)):
            return content_hash, None
        pixels = image_decoding.read_image(io.BytesIO(content), min_side=self.shorter_side)
        pixels = image_decoding.resize_shorter_side(pixels, self.shorter_side)
        encoded = io.BytesIO()
        # Chroma at half resolution (4:2:0), as cameras store it: a third less to decode.
        Image.fromarray(pixels).save(encoded, format="JPEG", quality=ENTRY_JPEG_QUALITY,
                                     subsampling=2)
        return content_hash, encoded.getvalue()

    def _entry_files(self):
        """(path, size, modification time) of every entry, of every shorter side."""
        found = []
        for directory, _, names in os.walk(self._entries):
            for name in names:
                if name.endswith(".jpg"):
                    path = os.path.join(directory, name)
                    try:
                        status = os.stat(path)
                    except OSError:
                        continue  # evicted by another run meanwhile
                    found.append((path, status.st_size, status.st_mtime))
        return found

    def resolve(self, paths) -> tuple[list, list, CacheReport]:
        """Entries for `paths`, built where missing: (entry path or None per file, the files
        that cannot be decoded with their reasons, the report).

        None marks a file that is unusable or left out by the size bound; the unusable ones are
        the second list's.
        """
        paths = list(paths)
        entries = [self.lookup(p) for p in paths]
        now = time.time()
        for entry in entries:
            if entry is not None:
                try:
                    os.utime(entry, (now, now))  # recently used: spared by eviction
                except OSError:
                    pass
        reused = sum(e is not None for e in entries)
        missing = [i for i, e in enumerate(entries) if e is None]
        in_use = {e for e in entries if e is not None}
        state = {"total": None, "candidates": None, "evicted": 0, "built": 0, "not_cached": 0}
        lock = threading.Lock()
        unusable = []

        def make_room(needed):
            """Evicts old entries until `needed` more bytes fit; False if they cannot."""
            if state["total"] is None:
                files = self._entry_files()
                state["total"] = sum(size for _, size, _ in files)
                state["candidates"] = sorted(
                    (mtime, path, size) for path, size, mtime in files
                    if path not in in_use and now - mtime > RECENT_USE_SECONDS)
            while state["total"] + needed > self.max_bytes and state["candidates"]:
                _, path, size = state["candidates"].pop(0)
                try:
                    os.unlink(path)
                except OSError:
                    continue
                state["total"] -= size
                state["evicted"] += 1
            return state["total"] + needed <= self.max_bytes

        def build(index):
            path = paths[index]
            try:
                content_hash, payload = self._make_entry(path)
            except Exception as error:  # Pillow raises many types for broken files
                with lock:
                    unusable.append((path, f"{type(error).__name__}: {error}"))
                return
            entry = self.entry_path(content_hash)
            with lock:
                if payload is None:
                    entries[index] = entry
                    in_use.add(entry)
                    return
                if not make_room(len(payload)):
                    state["not_cached"] += 1
                    return
                state["total"] += len(payload)
                state["built"] += 1
                in_use.add(entry)
            _atomic_write(entry, payload)
            entries[index] = entry

        if missing:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                list(pool.map(build, missing))
        total = state["total"]
        if total is None:
            total = sum(size for _, size, _ in self._entry_files())
        report = CacheReport(directory=self.directory, shorter_side=self.shorter_side,
                             reused=reused, built=state["built"],
                             not_cached=state["not_cached"], evicted=state["evicted"],
                             total_bytes=total, max_bytes=self.max_bytes)
        unusable.sort()
        return entries, unusable, report
