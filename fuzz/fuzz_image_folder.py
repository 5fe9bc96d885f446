"""Fuzzes the reading of image folders (regnet_keras.training.data.open_source on a folder):
Pillow's decoders behind the allowed formats, reduced-scale JPEG decoding, EXIF orientation,
transparency, 16-bit scaling, and the image cache's entries, once with the cache and once
without. A file that cannot be used must end in the DataError that lists it."""

import io
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from regnet_keras.training import data
from regnet_keras.training import image_cache

INSTRUMENTED_MODULES = ("regnet_keras.training.data", "regnet_keras.training.image_decoding",
                        "regnet_keras.training.image_cache", "PIL")

# The cache's index gains a file for every input (each is a new file): start it afresh now
# and then so that a long campaign does not fill the disk.
_FRESH_CACHE_EVERY = 500
_ROOT = tempfile.mkdtemp(prefix="fuzz_image_folder_")
_FOLDER = os.path.join(_ROOT, "images")
_CACHE = os.path.join(_ROOT, "cache")
_FUZZED = os.path.join(_FOLDER, "train", "cat", "input.jpg")
_inputs = 0


def _write_folder():
    """train/ and test/ trees of two classes, each with one valid image besides the input."""
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            os.makedirs(os.path.join(_FOLDER, split, label), exist_ok=True)
            Image.new("RGB", (12, 10), (40, 90, 200)).save(
                os.path.join(_FOLDER, split, label, "valid.png"))


_write_folder()


def test_one_input(data_bytes: bytes) -> None:
    global _inputs
    _inputs += 1
    if _inputs % _FRESH_CACHE_EVERY == 0:
        shutil.rmtree(_CACHE, ignore_errors=True)
    with open(_FUZZED, "wb") as file:
        file.write(data_bytes)
    cache = image_cache.ImageCache(_CACHE, shorter_side=40, max_bytes=8 << 20, workers=1)
    for image_cache_or_none in (None, cache):
        data.open_source(data.FOLDER, _FOLDER, min_images_per_class=1,
                         image_cache=image_cache_or_none)


def _save(directory, name, image, **options):
    buffer = io.BytesIO()
    image.save(buffer, **options)
    with open(os.path.join(directory, name), "wb") as file:
        file.write(buffer.getvalue())


def write_seeds(directory: str) -> None:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(directory, "rotated.jpg", photo, format="JPEG", quality=90, exif=exif)
    _save(directory, "progressive.jpg", photo, format="JPEG", progressive=True)
    _save(directory, "cmyk.jpg", photo.convert("CMYK"), format="JPEG")
    _save(directory, "gray.jpg", photo.convert("L"), format="JPEG")
    _save(directory, "rgba.png", photo.convert("RGBA"), format="PNG")
    _save(directory, "palette.png", photo.convert("P"), format="PNG", transparency=0)
    _save(directory, "gray16.png", Image.fromarray(
        rng.integers(0, 65535, (20, 30), dtype=np.uint16)), format="PNG")
    _save(directory, "frames.gif", photo.convert("P"), format="GIF", save_all=True,
          append_images=[photo.convert("P").rotate(90)])
    _save(directory, "bitmap.bmp", photo, format="BMP")
    _save(directory, "lossy.webp", photo, format="WEBP")
    _save(directory, "lossless.webp", photo.convert("RGBA"), format="WEBP", lossless=True)
    _save(directory, "bomb.png", Image.new("1", (10000, 10000)), format="PNG")
    truncated = io.BytesIO()
    photo.save(truncated, format="JPEG")
    with open(os.path.join(directory, "truncated.jpg"), "wb") as file:
        file.write(truncated.getvalue()[: len(truncated.getvalue()) // 2])
