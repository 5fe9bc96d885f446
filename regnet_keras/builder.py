"""Builds the Keras functional graph of any RegNet/AnyNet description, with fresh weights.

`build_network` is the architecture alone: stem, stages of X/Y blocks, head, the stride-2 padding
geometry and the input normalisation as asked. Weights are the next layer up (regnet_keras.weights);
`regnet_keras.RegNet` (applications.py) joins the two. The graph is plain Keras layers on any Keras 3
backend; on TensorFlow the tf_speedups re-route grouped convolutions and batch norm to native kernels.
"""

from __future__ import annotations

from regnet_keras import blocks, feature_pyramid, layer_names
from regnet_keras.design_space import AnyNetConfig, RegNetConfig
from regnet_keras.keras_backend import get_keras
from regnet_keras.preprocessing import MODES as PREPROCESSING_MODES
from regnet_keras.preprocessing import rescaling_layer
from regnet_keras.tf_speedups import fused_batch_norm, grouped_conv

# The smallest input for which every stage still has at least one pixel (output stride 32).
MIN_INPUT_SIZE = 32
DEFAULT_INPUT_SIZE = 224


def build_network(config: RegNetConfig | AnyNetConfig, *, include_top: bool = True,
                  input_tensor=None, input_shape=None, pooling=None, classes: int = 1000,
                  classifier_activation="softmax", include_preprocessing: bool = True,
                  name: str | None = None, padding: str = "symmetric",
                  preprocessing: str = "imagenet", zero_init_last_bn: bool = False,
                  grouped_conv_implementation: str = "auto",
                  fused_batch_norm_training: bool = True):
    """The network of `config` as a Keras functional model with freshly initialised weights.

    Arguments as regnet_keras.RegNet, less `weights`; padding ("symmetric" or "same") and
    preprocessing ("imagenet" or "unit") are explicit here.
    """
    if not isinstance(config, (RegNetConfig, AnyNetConfig)):
        raise ValueError(f"config={config!r} is invalid: pass a RegNetConfig or AnyNetConfig "
                         "(or use a zoo constructor such as regnet_keras.RegNetX002).")
    anynet = config.to_anynet()
    if grouped_conv_implementation not in grouped_conv.IMPLEMENTATIONS:
        raise ValueError(f"grouped_conv_implementation={grouped_conv_implementation!r} is "
                         f"invalid: choose one of {grouped_conv.IMPLEMENTATIONS}.")
    if padding not in blocks.PADDINGS:
        raise ValueError(f"padding={padding!r} is invalid: choose one of {blocks.PADDINGS}.")
    if include_preprocessing and preprocessing not in PREPROCESSING_MODES:
        raise ValueError(f"preprocessing={preprocessing!r} is invalid: choose one of "
                         f"{PREPROCESSING_MODES}.")
    check_head_arguments(include_top, pooling, classes)
    keras = get_keras()

    inputs, x = _model_input(keras, input_tensor, input_shape, include_top)
    if include_preprocessing:
        x = rescaling_layer(keras, preprocessing, x.shape[-1], layer_names.PREPROCESSING)(x)
    options = blocks.LayerOptions(keras=keras, padding=padding,
                                  zero_init_last_bn=zero_init_last_bn)
    x = blocks.stem(x, anynet.stem_width, options)
    in_width = anynet.stem_width
    for stage_index, spec in enumerate(anynet.stages, start=1):
        for block_index in range(1, spec.depth + 1):
            stride = spec.stride if block_index == 1 else 1
            x = blocks.block(x, in_width, spec, stride, anynet.se_ratio, stage_index, block_index,
                             options)
            in_width = spec.width
    if include_top:
        x = blocks.classifier(x, classes, classifier_activation, options)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name=layer_names.FEATURE_POOL["avg"])(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name=layer_names.FEATURE_POOL["max"])(x)

    # Without the top the model is a backbone: under Keras 3 it exposes `pyramid_outputs`.
    model_class = feature_pyramid.model_class(with_pyramid=not include_top)
    model = model_class(inputs, x, name=name or ("regnet" if isinstance(config, RegNetConfig)
                                                 else "anynet"))
    grouped_conv.enable(model, grouped_conv_implementation)
    fused_batch_norm.enable(model, fused_batch_norm_training)
    return model


def check_head_arguments(include_top, pooling, classes):
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling={pooling!r} is invalid: use None, 'avg' or 'max'.")
    if include_top and pooling is not None:
        raise ValueError(f"pooling={pooling!r} applies only with include_top=False; the top "
                         "already pools before its classifier.")
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes={classes!r} is invalid: it must be an integer >= 1.")


def _model_input(keras, input_tensor, input_shape, include_top):
    if input_shape is None and input_tensor is not None:
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        input_shape = ((DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE, 3) if include_top
                       else (None, None, 3))
    input_shape = tuple(input_shape)
    if (len(input_shape) != 3 or input_shape[-1] is None or input_shape[-1] < 1
            or any(size is not None and size < MIN_INPUT_SIZE for size in input_shape[:2])):
        raise ValueError(f"input_shape={input_shape!r} is invalid: it must be (height, width, "
                         f"channels), channels last, with height and width None or >= "
                         f"{MIN_INPUT_SIZE}.")
    if input_tensor is None:
        inputs = keras.Input(shape=input_shape)
        return inputs, inputs
    if not keras.backend.is_keras_tensor(input_tensor):
        inputs = keras.Input(tensor=input_tensor, shape=input_shape)
        return inputs, inputs
    return keras.utils.get_source_inputs(input_tensor), input_tensor
