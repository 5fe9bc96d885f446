"""Builds a Keras functional model from any RegNet/AnyNet description.

`RegNet(config, ...)` takes keras.applications' signature (include_top, weights, input_tensor,
input_shape, pooling, classes, classifier_activation, include_preprocessing, name) plus the two
choices that keras.applications fixes silently: the stride-2 padding geometry and the input
normalisation. Both default to the reference code's (symmetric padding, ImageNet mean/std) unless a
weights file says otherwise.
"""

from __future__ import annotations

from regnet_keras import blocks, fused_batch_norm, grouped_conv, layer_names
from regnet_keras import weights as weights_io
from regnet_keras.design_space import AnyNetConfig, RegNetConfig
from regnet_keras.keras_backend import get_keras
from regnet_keras.preprocessing import MODES as PREPROCESSING_MODES
from regnet_keras.preprocessing import rescaling_layer

# The smallest input for which every stage still has at least one pixel (output stride 32).
MIN_INPUT_SIZE = 32
DEFAULT_INPUT_SIZE = 224


def RegNet(config: RegNetConfig | AnyNetConfig, *, include_top: bool = True, weights=None,
           input_tensor=None, input_shape=None, pooling=None, classes: int = 1000,
           classifier_activation="softmax", include_preprocessing: bool = True,
           name: str | None = None, padding: str | None = None,
           preprocessing: str | None = None, zero_init_last_bn: bool = False,
           grouped_conv_implementation: str = "auto", fused_batch_norm_training: bool = True,
           zoo_name: str | None = None):
    """Instantiates a RegNet (or any AnyNet) as a Keras functional model.

    Args:
      config: a RegNetConfig (design parameters) or AnyNetConfig (explicit stages).
      include_top: end with global average pooling and a `classes`-way classifier.
      weights: None (random initialisation as the reference code does), "imagenet" (zoo models
        only: the keras.applications ImageNet file, downloaded once and cached), or the path of a
        regnet_keras weights file or of a keras.applications RegNet .h5 file.
      input_tensor: optional Keras tensor to use as the model's input.
      input_shape: (height, width, channels), channels last, height and width None or >= 32.
        Defaults to (224, 224, 3) with the top and (None, None, 3) without.
      pooling: without the top, None (4D features), "avg" or "max".
      classes: classifier width, with the top.
      classifier_activation: activation of the classifier ("softmax" by default); None returns
        logits.
      include_preprocessing: start with a Rescaling layer so the model takes 0-255 RGB pixels.
      name: model name.
      padding: "symmetric" (pycls/PyTorch geometry) or "same" (TF, keras.applications). Default:
        what the weights file needs, else "symmetric".
      preprocessing: "imagenet" (mean/std) or "unit" (x/255). Default: what the weights file
        needs, else "imagenet".
      zero_init_last_bn: initialise each block's last BN gamma to zero (off in the zoo).
      grouped_conv_implementation: how the grouped 3x3 convolutions train (see grouped_conv):
        "auto" (fastest for the device and dtype), "native", "split_gradient", or "keras" for
        Keras' own XLA-compiled path. The layers are plain Conv2D layers whatever the choice.
      fused_batch_norm_training: train the BatchNormalization layers through TensorFlow's fused
        kernel (see fused_batch_norm; Keras 3 only, same function); False keeps Keras' own path.
        The layers are plain BatchNormalization layers either way.
      zoo_name: the zoo model this config is, which "imagenet" weights need.
    """
    if not isinstance(config, (RegNetConfig, AnyNetConfig)):
        raise ValueError(f"config={config!r} is invalid: pass a RegNetConfig or AnyNetConfig "
                         "(or use a zoo constructor such as regnet_keras.RegNetX002).")
    anynet = config.to_anynet()
    if grouped_conv_implementation not in grouped_conv.IMPLEMENTATIONS:
        raise ValueError(f"grouped_conv_implementation={grouped_conv_implementation!r} is "
                         f"invalid: choose one of {grouped_conv.IMPLEMENTATIONS}.")
    keras = get_keras()
    _check_head_arguments(include_top, pooling, classes, weights)

    weights_file = _open_weights(weights, zoo_name, include_top, classes)
    padding = _choose("padding", padding, weights_file and weights_file.padding, "symmetric",
                      blocks.PADDINGS)
    if include_preprocessing:
        preprocessing = _choose("preprocessing", preprocessing,
                                weights_file and weights_file.preprocessing, "imagenet",
                                PREPROCESSING_MODES)

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

    model = keras.Model(inputs, x, name=name or zoo_name or ("regnet" if isinstance(
        config, RegNetConfig) else "anynet"))
    grouped_conv.enable(model, grouped_conv_implementation)
    fused_batch_norm.enable(model, fused_batch_norm_training)
    if weights_file is not None:
        weights_file.load_into(model)
    return model


def _check_head_arguments(include_top, pooling, classes, weights):
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling={pooling!r} is invalid: use None, 'avg' or 'max'.")
    if include_top and pooling is not None:
        raise ValueError(f"pooling={pooling!r} applies only with include_top=False; the top "
                         "already pools before its classifier.")
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes={classes!r} is invalid: it must be an integer >= 1.")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"classes={classes} is invalid with weights='imagenet' and "
                         "include_top=True: the ImageNet classifier has 1000 classes. Use "
                         "include_top=False and add your own classifier.")


def _open_weights(weights, zoo_name, include_top, classes):
    if weights is None:
        return None
    if weights == "imagenet":
        if zoo_name is None:
            raise ValueError("weights='imagenet' exists only for the zoo models (see "
                             "regnet_keras.list_models()); pass a weights file path instead.")
        path = weights_io.fetch_imagenet_weights(zoo_name, include_top)
    else:
        path = weights
    weights_file = weights_io.open_weights_file(path)
    if include_top and weights_file.classes is not None and weights_file.classes != classes:
        raise weights_io.WeightsFileError(
            f"{path}: its classifier has {weights_file.classes} classes but classes={classes}; "
            f"pass classes={weights_file.classes}, or include_top=False to keep only features.")
    return weights_file


def _choose(argument, requested, from_weights, default, allowed):
    if requested is not None and requested not in allowed:
        raise ValueError(f"{argument}={requested!r} is invalid: choose one of {allowed}.")
    if requested is not None and from_weights and requested != from_weights:
        raise ValueError(f"{argument}={requested!r} contradicts the weights file, which was "
                         f"trained with {argument}={from_weights!r}; leave {argument} unset.")
    return requested or from_weights or default


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
