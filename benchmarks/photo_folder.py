"""A folder of phone-sized photos (4032x3024 JPEGs, some with EXIF orientation) for the input
pipeline benchmark; written once, reused while its files are there."""

import os

import numpy as np

PHOTO_SIZE = (4032, 3024)  # width, height: 12 MP, as phones write them
# EXIF orientation tags written on every fifth photo (6: rotate 90 degrees, 8: 270, 3: 180).
ORIENTATIONS = (6, 8, 3)


def _photo(rng):
    """Smooth colour fields with texture: compresses like a photo (a few MB), unlike noise."""
    from PIL import Image
    width, height = PHOTO_SIZE
    small = rng.integers(0, 256, (height // 64, width // 64, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(PHOTO_SIZE, Image.Resampling.BICUBIC)
    texture = rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    pixels = np.clip(np.asarray(image, np.float32) + texture, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def write_photo_folder(root, classes=2, per_class=48, seed=0) -> str:
    """`classes` sub-folders of `per_class` distinct 12 MP JPEGs under `root`; files already
    there are kept, so a second call costs nothing."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for label in range(classes):
        folder = os.path.join(root, f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        for index in range(per_class):
            path = os.path.join(folder, f"IMG_{index:04d}.jpg")
            if os.path.exists(path):
                continue
            exif = Image.Exif()
            if index % 5 == 0:
                exif[0x0112] = ORIENTATIONS[(index // 5) % len(ORIENTATIONS)]
            temporary = path + ".partial"
            _photo(rng).save(temporary, format="JPEG", quality=90, exif=exif)
            os.replace(temporary, path)
    return root
