"""Reads the design back from a model regnet_keras built, through its stable layer names.

This works on a freshly built model and on one restored with load_model, in Keras 3 and tf-keras,
because it relies only on layer names and layer configuration, not on Python attributes.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from regnet_keras import layer_names as names
from regnet_keras.complexity import se_ratio_of
from regnet_keras.design_space import AnyNetConfig
from regnet_keras.preprocessing import MODES, scale_and_offset

# The model attribute holding the origin of imported weights as a JSON string (see
# regnet_keras.weights.origin); a plain string, because Keras wraps dicts set on a model.
ORIGIN_ATTRIBUTE = "regnet_keras_weights_origin"


@dataclasses.dataclass(frozen=True)
class ModelDesign:
    config: AnyNetConfig
    input_size: tuple[int, int] | None  # None when height or width is dynamic
    in_channels: int
    include_top: bool
    classes: int | None
    classifier_activation: str | None  # None: the model returns logits (or has no top)
    padding: str
    preprocessing: str | None  # None when the model has no preprocessing layer
    # Where the weights came from (library, layout, file, sha256, tag, transform...) when they
    # were imported; None otherwise, and after a .keras round trip, which keeps no attributes.
    origin: dict | None = None


def design_of_model(model) -> ModelDesign:
    layers = {layer.name: layer for layer in model.layers}
    if names.STEM_CONV not in layers:
        raise ValueError(f"model {model.name!r} was not built by regnet_keras (it has no "
                         f"{names.STEM_CONV!r} layer); pass a zoo name or a config instead.")
    stem_width = layers[names.STEM_CONV].filters
    widths, depths, group_widths, strides, bottlenecks = [], [], [], [], []
    se_ratio = 0.0
    stage = 1
    while names.block_layer(stage, 1, "c_conv") in layers:
        depth = 0
        while names.block_layer(stage, depth + 1, "c_conv") in layers:
            depth += 1
        first_conv = layers[names.block_layer(stage, 1, "b_conv")]
        width = layers[names.block_layer(stage, 1, "c_conv")].filters
        widths.append(width)
        depths.append(depth)
        group_widths.append(first_conv.filters // first_conv.groups)
        strides.append(first_conv.strides[0])
        bottlenecks.append(first_conv.filters / width)
        stage += 1
    se_widths = []  # (block input width, SE width) of every Y block
    in_width = stem_width
    for stage, (width, depth) in enumerate(zip(widths, depths), start=1):
        for block in range(1, depth + 1):
            se_reduce = layers.get(names.block_layer(stage, block, "se_reduce"))
            if se_reduce is not None:
                se_widths.append((in_width, se_reduce.filters))
            in_width = width
    if se_widths:
        se_ratio = se_ratio_of(se_widths) or se_widths[0][1] / stem_width
    config = AnyNetConfig(tuple(widths), tuple(depths), tuple(group_widths), tuple(strides),
                          tuple(bottlenecks), se_ratio, stem_width)

    input_shape = model.input_shape
    height, width = input_shape[1], input_shape[2]
    logits = layers.get(names.LOGITS)
    return ModelDesign(
        config=config,
        input_size=(height, width) if height and width else None,
        in_channels=input_shape[-1],
        include_top=logits is not None,
        classes=logits.units if logits is not None else None,
        classifier_activation=_activation_name(layers.get(names.PREDICTIONS)),
        padding="symmetric" if names.STEM_PAD in layers else "same",
        preprocessing=_preprocessing_mode(layers.get(names.PREPROCESSING)),
        origin=origin_of_model(model),
    )


def origin_of_model(model) -> dict | None:
    record = getattr(model, ORIGIN_ATTRIBUTE, None)
    return json.loads(record) if isinstance(record, str) else None


def _activation_name(layer) -> str | None:
    if layer is None:
        return None
    activation = layer.get_config()["activation"]
    return activation if isinstance(activation, str) else getattr(activation, "__name__", None)


def _preprocessing_mode(layer) -> str | None:
    if layer is None:
        return None
    scale = np.ravel(np.asarray(layer.scale, dtype=np.float64))
    for mode in MODES:
        expected_scale, _ = scale_and_offset(mode)
        if np.allclose(scale, expected_scale[:scale.size], rtol=1e-6):
            return mode
    return None
