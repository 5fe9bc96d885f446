"""Decoding the image files of users' folders into upright RGB arrays, at the size training needs.

Every file is treated as hostile: Pillow may only open the formats image folders promise (its
content decides the decoder, so a .jpg holding an EPS or a TIFF would otherwise reach
Ghostscript or libtiff), images of more than MAX_IMAGE_PIXELS are refused before a pixel is
decoded (Pillow's own decompression-bomb limit, whatever a caller set Pillow's global to), and
truncated data is an error, never a half-grey image.

JPEGs are decoded at reduced scale when a smaller image is enough: libjpeg's DCT scaling (Pillow's
`draft`) produces 1/2, 1/4 or 1/8 of the stored size directly, so a 12-megapixel photo wanted
at a shorter side of 256 costs a 1/8-scale decode, not a full one followed by a resize.
"""

from __future__ import annotations

import numpy as np

# Transparent pixels are composited on white, as image viewers and browsers show them.
ALPHA_BACKGROUND = (255, 255, 255)
# Pillow's default decompression-bomb threshold (PIL.Image.MAX_IMAGE_PIXELS), fixed here so that
# a program that raised or disabled Pillow's global does not lift it for image folders.
MAX_IMAGE_PIXELS = 89_478_485
# Pillow's names of the formats image folders promise (its JPEG opener also yields MPO, the JPEG
# variant of multi-picture files that phones write).
ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


class ImageTooLargeError(ValueError):
    """More pixels than MAX_IMAGE_PIXELS: refused as a decompression bomb."""


def open_image(source):
    """Pillow's image of a path or file object, lazily decoded, after the format and size checks.

    Raises what Pillow raises for unreadable files, or ImageTooLargeError.
    """
    from PIL import Image
    image = Image.open(source, formats=ALLOWED_FORMATS)
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise ImageTooLargeError(
            f"{width}x{height} pixels is more than {MAX_IMAGE_PIXELS} (a decompression bomb, or "
            "an image far larger than training can use): resize it or remove it.")
    return image


def read_image(source, min_side: int | None = None) -> np.ndarray:
    """An image file as an upright HxWx3 uint8 RGB array: EXIF orientation applied, the first
    frame of animations, transparency composited on ALPHA_BACKGROUND, 16-bit scaled to 8.

    `source`: a path or a binary file object. `min_side`: the shorter side the caller needs; a
    JPEG is then decoded at the smallest DCT scale whose shorter side is still at least that
    (the result is not resized further). None decodes the full image.
    """
    from PIL import Image, ImageOps
    with open_image(source) as image:
        image.seek(0)
        if min_side is not None and image.format in ("JPEG", "MPO"):
            # A square request: the stored orientation does not matter to the shorter side.
            image.draft(image.mode, (int(min_side), int(min_side)))
        image = ImageOps.exif_transpose(image)
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(
                Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,)), rgba)
        elif image.mode in _SIXTEEN_BIT_MODES:
            # 16-bit grayscale: Pillow's convert would clip to 255 instead of scaling.
            image = Image.fromarray((np.asarray(image, np.float64) / 257).round()
                                    .clip(0, 255).astype(np.uint8))
        return np.asarray(image.convert("RGB"))


def resize_shorter_side(pixels: np.ndarray, side: int) -> np.ndarray:
    """`pixels` (HxWx3 uint8) resized so the shorter side is `side` (antialiased bilinear, as
    evaluation's tf.image.resize); images already that small are returned as they are."""
    from PIL import Image
    height, width = pixels.shape[:2]
    if min(height, width) <= side:
        return pixels
    scale = side / min(height, width)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR))


def is_decodable(path) -> bool:
    """Whether `path` decodes completely, at the smallest scale its format allows: the entropy
    coded data is still read to its end, so truncated files are caught as by a full decode."""
    try:
        read_image(path, min_side=1)
        return True
    except Exception:  # Pillow raises many types for broken files; any of them means unusable
        return False
