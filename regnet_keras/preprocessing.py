"""Input normalisation: what the model's `preprocessing` layer does to 0-255 RGB pixels.

"imagenet": (x / 255 - mean) / std with the ImageNet channel statistics, as the reference recipe
    trains (our default).
"unit": x / 255 only, as keras.applications' RegNet weights expect.
Both are one per-channel affine map x * scale + offset, so they are one Keras Rescaling layer.
"""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODES = ("imagenet", "unit")


def scale_and_offset(mode: str) -> tuple[list[float], list[float]]:
    """Per-channel (scale, offset) with normalised = pixel * scale + offset."""
    if mode == "imagenet":
        scale = [1.0 / (255.0 * s) for s in IMAGENET_STD]
        offset = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
        return scale, offset
    if mode == "unit":
        return [1.0 / 255.0] * 3, [0.0] * 3
    raise ValueError(f"preprocessing={mode!r} is invalid: choose one of {MODES}.")


def preprocess_input(images, mode: str = "imagenet") -> np.ndarray:
    """NumPy version of the model's preprocessing layer, for models built without it."""
    scale, offset = scale_and_offset(mode)
    images = np.asarray(images, dtype=np.float32)
    return images * np.float32(scale) + np.float32(offset)


def rescaling_layer(keras, mode: str, channels: int, name: str):
    scale, offset = scale_and_offset(mode)
    if channels != 3:
        if mode != "unit":
            raise ValueError(f"preprocessing={mode!r} needs 3 (RGB) input channels, got "
                             f"{channels}; use preprocessing='unit' or repeat grayscale to RGB.")
        scale, offset = scale[:1], offset[:1]
    return keras.layers.Rescaling(scale=scale, offset=offset, name=name)
