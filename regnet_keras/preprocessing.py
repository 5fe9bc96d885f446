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


def _scale_and_offset_of(rescaling, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """A Rescaling layer's (scale, offset), each broadcast to one float32 per channel."""
    return tuple(np.broadcast_to(np.asarray(value, np.float32), (channels,))
                 for value in (rescaling.scale, rescaling.offset))


def with_depthwise_preprocessing(model, wrap=None):
    """`model` with its Rescaling preprocessing computed as the 1x1 depthwise convolution it is.

    Same function (a per-channel x * scale + offset), but converters and runtimes treat the two
    differently: TFLite keeps a per-channel MUL/ADD pair in slow kernels (RegNetX002 int8 at 224:
    3.8 ms vs 2.6 ms with the depthwise form on 2 threads), and tfmot cannot quantize Rescaling
    at all. The other layers are shared with `model`, not copied; `wrap`, if given, is applied to
    every layer of the copy (tfmot's annotation).
    """
    from regnet_keras.keras_backend import get_keras
    keras = get_keras()
    replacements = []

    def clone(layer):
        if type(layer).__name__ == "Rescaling":
            replacement = keras.layers.DepthwiseConv2D(1, use_bias=True, trainable=False,
                                                       name=layer.name)
            replacements.append((layer, replacement))
            layer = replacement
        return wrap(layer) if wrap else layer

    copy = keras.models.clone_model(model, clone_function=clone)
    for rescaling, convolution in replacements:
        channels = convolution.get_weights()[0].shape[2]
        scale, offset = _scale_and_offset_of(rescaling, channels)
        convolution.set_weights([scale.reshape(1, 1, channels, 1), offset.copy()])
    return copy


def with_scale_folded_into_stem(model):
    """`model` without its Rescaling layer, the scale multiplied into the stem kernel, or None
    where that would change the function.

    Exact only for a scale-only normalisation ("unit": x / 255, keras.applications' own) that
    feeds the stem convolution directly or through zero padding: zeros stay zeros when scaled.
    An offset ("imagenet") cannot fold, because padding then differs from a normalised zero.
    The fold saves the pass over the input image that the normalisation costs on LiteRT
    (6-8% of RegNetX002's float32 latency at 224x224). The stem is a new layer; the others are
    shared with `model`, whose weights stay as they are.
    """
    import tensorflow as tf
    from regnet_keras import layer_names
    by_name = {layer.name: layer for layer in model.layers}
    rescaling = _rescaling_of(model)
    stem = by_name.get(layer_names.STEM_CONV)
    if rescaling is None or type(stem).__name__ != "Conv2D":
        return None
    kernel, *rest = stem.get_weights()
    scale, offset = _scale_and_offset_of(rescaling, kernel.shape[2])
    if np.any(offset != 0):
        return None
    between = [by_name[layer_names.STEM_PAD]] if layer_names.STEM_PAD in by_name else []
    chain = [rescaling, *between, stem]
    consumers = [layer for layer in model.layers
                 if type(layer).__name__ != "InputLayer" and layer is not rescaling
                 and any(tensor is rescaling.output for tensor in tf.nest.flatten(layer.input))]
    if consumers != chain[1:2] or any(a.output is not b.input for a, b in zip(chain, chain[1:])):
        return None
    folded_stem = type(stem).from_config(stem.get_config())
    copy = _without_rescaling(model, rescaling, {stem: folded_stem})
    folded_stem.set_weights([kernel * scale[None, None, :, None], *rest])
    return copy


def _rescaling_of(model):
    from regnet_keras import layer_names
    return next((layer for layer in model.layers if layer.name == layer_names.PREPROCESSING
                 and type(layer).__name__ == "Rescaling"), None)


def pixel_statistics(model):
    """(mean, std) per channel on the 0-255 scale of the model's Rescaling layer, with
    `normalised = (pixel - mean) / std`; None when it has none."""
    rescaling = _rescaling_of(model)
    if rescaling is None:
        return None
    scale, offset = (value.astype(np.float64) for value in
                     _scale_and_offset_of(rescaling, int(rescaling.input.shape[-1])))
    return -offset / scale, 1.0 / scale


def without_normalization(model):
    """`model` with its Rescaling layer replaced by an identity, for inputs an app has already
    normalised with `pixel_statistics(model)`. The other layers are shared with `model`."""
    return _without_rescaling(model, _rescaling_of(model))


def _without_rescaling(model, rescaling, replacements=None):
    """A clone of `model` sharing its layers, `rescaling` replaced by an Identity and each key of
    `replacements` by its value."""
    from regnet_keras.keras_backend import get_keras
    keras = get_keras()
    replacements = dict(replacements or {})

    def clone(layer):
        if layer is rescaling:
            return keras.layers.Identity(name=layer.name)
        return replacements.get(layer, layer)

    return keras.models.clone_model(model, clone_function=clone)
