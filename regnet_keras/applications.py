"""regnet_keras.RegNet and the zoo constructors RegNetX002 ... RegNetY320: a network with its weights.

keras.applications' signature on top of the builder (the architecture) and regnet_keras.weights
(the files), which decide the padding geometry and normalisation when the user leaves them unset.

Unlike keras.applications, `classifier_activation` is honoured, the graph holds only Keras layers,
the padding geometry follows the weights, and `weights` defaults to None (building a model never
touches the network unless asked to with weights="imagenet").
"""

from __future__ import annotations

import os

from regnet_keras import blocks, builder
from regnet_keras.design_space import AnyNetConfig, RegNetConfig
from regnet_keras.preprocessing import MODES as PREPROCESSING_MODES
from regnet_keras.weights import h5 as weights_h5
from regnet_keras.weights import pytorch as pytorch_weights
from regnet_keras.weights import registry
from regnet_keras.zoo import get_entry


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
        only: the keras.applications ImageNet file, downloaded once and cached), a named
        PyTorch weight of the zoo model ("torchvision_v1", "torchvision_v2", "pycls", timm tags:
        see regnet_keras.list_weights(name)), or the path of a regnet_keras weights file, a
        keras.applications RegNet .h5 file, or a PyTorch state dict (.safetensors, .pth, ...)
        whose architecture is this model's.
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
    builder.check_head_arguments(include_top, pooling, classes)
    if pytorch_weights.is_pytorch_file(weights) or (
            zoo_name is not None and isinstance(weights, str)
            and registry.find(zoo_name, weights) is not None):
        return _with_pytorch_weights(
            config, weights, zoo_name, include_top=include_top, input_tensor=input_tensor,
            input_shape=input_shape, pooling=pooling, classes=classes,
            classifier_activation=classifier_activation,
            include_preprocessing=include_preprocessing, name=name or zoo_name, padding=padding,
            preprocessing=preprocessing, zero_init_last_bn=zero_init_last_bn,
            grouped_conv_implementation=grouped_conv_implementation,
            fused_batch_norm_training=fused_batch_norm_training)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"classes={classes} is invalid with weights='imagenet' and "
                         "include_top=True: the ImageNet classifier has 1000 classes. Use "
                         "include_top=False and add your own classifier.")
    weights_file = _open_weights(weights, zoo_name, include_top, classes)
    padding = _choose("padding", padding, weights_file and weights_file.padding, "symmetric",
                      blocks.PADDINGS)
    preprocessing = _choose("preprocessing", preprocessing,
                            weights_file and weights_file.preprocessing, "imagenet",
                            PREPROCESSING_MODES) if include_preprocessing else "imagenet"
    model = builder.build_network(
        config, include_top=include_top, input_tensor=input_tensor, input_shape=input_shape,
        pooling=pooling, classes=classes, classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing, name=name or zoo_name, padding=padding,
        preprocessing=preprocessing, zero_init_last_bn=zero_init_last_bn,
        grouped_conv_implementation=grouped_conv_implementation,
        fused_batch_norm_training=fused_batch_norm_training)
    if weights_file is not None:
        weights_file.load_into(model)
    return model


def _with_pytorch_weights(config, weights, zoo_name, *, include_top, input_tensor, input_shape,
                          classes, padding, preprocessing, include_preprocessing, **arguments):
    """RegNet(...) with a PyTorch state dict (a file, or named weights of a zoo model)."""
    entry = registry.find(zoo_name, weights) if zoo_name and isinstance(weights, str) else None
    if entry is not None:
        if not entry.matches_zoo:
            raise ValueError(
                f"{zoo_name} weights {weights!r} are {entry.source_name}, whose group widths "
                f"differ from the paper's {zoo_name}; build its own architecture with "
                f"regnet_keras.from_pytorch(regnet_keras.fetch_weights({zoo_name!r}, "
                f"{weights!r})).")
        path = registry.fetch_weights(zoo_name, weights)
        imported = pytorch_weights.read_pytorch_weights(path, entry.origin(path))
        if include_top and input_shape is None and input_tensor is None:
            crop = entry.transform.crop  # the size the published top-1 was measured at
            input_shape = (crop, crop, 3)
    else:
        path = weights
        imported = pytorch_weights.read_pytorch_weights(path)
    expected = config.to_anynet()
    if imported.config != expected:
        raise pytorch_weights.PyTorchWeightsError(
            f"{path} holds another architecture than {zoo_name or 'the config'}; nothing was "
            f"loaded:\n  file:  {imported.config}\n  model: {expected}\nBuild the file's own "
            f"architecture with regnet_keras.from_pytorch({os.fspath(path)!r}).")
    pytorch_weights.check_classifier(imported, os.fspath(path), include_top, classes)
    padding = _choose("padding", padding, pytorch_weights.PADDING, "symmetric", blocks.PADDINGS)
    preprocessing = _choose("preprocessing", preprocessing, pytorch_weights.PREPROCESSING,
                            "imagenet", PREPROCESSING_MODES)
    model = builder.build_network(
        config, include_top=include_top, input_tensor=input_tensor, input_shape=input_shape,
        classes=classes, padding=padding, preprocessing=preprocessing,
        include_preprocessing=include_preprocessing, **arguments)
    pytorch_weights.load_into(model, imported, os.fspath(path))
    return model


def _open_weights(weights, zoo_name, include_top, classes):
    if weights is None:
        return None
    if weights == "imagenet":
        if zoo_name is None:
            raise ValueError("weights='imagenet' exists only for the zoo models (see "
                             "regnet_keras.list_models()); pass a weights file path instead.")
        path = weights_h5.fetch_imagenet_weights(zoo_name, include_top)
    else:
        path = weights
        if zoo_name is not None and isinstance(path, str) and not os.path.isfile(path):
            raise weights_h5.WeightsFileError(
                f"weights={path!r} is neither None, 'imagenet' nor an existing file; the named "
                f"weights of {zoo_name} are: "
                f"{', '.join(registry.tags_of(zoo_name)) or 'none'}.")
    weights_file = weights_h5.open_weights_file(path)
    if include_top and weights_file.classes is not None and weights_file.classes != classes:
        raise weights_h5.WeightsFileError(
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


def _zoo_constructor(zoo_name: str):
    entry = get_entry(zoo_name)

    def constructor(include_top=True, weights=None, input_tensor=None, input_shape=None,
                    pooling=None, classes=1000, classifier_activation="softmax",
                    include_preprocessing=True, name=None, **options):
        return RegNet(entry.config, include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation,
                      include_preprocessing=include_preprocessing, name=name or zoo_name,
                      zoo_name=zoo_name, **options)

    constructor.__name__ = constructor.__qualname__ = zoo_name
    constructor.__doc__ = (
        f"Instantiates {zoo_name}: {entry.config} (paper top-1 error {entry.paper_top1_error}%).\n\n"
        "Arguments as regnet_keras.RegNet, which also accepts padding, preprocessing and "
        "zero_init_last_bn here.")
    return constructor


RegNetX002 = _zoo_constructor("RegNetX002")
RegNetX004 = _zoo_constructor("RegNetX004")
RegNetX006 = _zoo_constructor("RegNetX006")
RegNetX008 = _zoo_constructor("RegNetX008")
RegNetX016 = _zoo_constructor("RegNetX016")
RegNetX032 = _zoo_constructor("RegNetX032")
RegNetX040 = _zoo_constructor("RegNetX040")
RegNetX064 = _zoo_constructor("RegNetX064")
RegNetX080 = _zoo_constructor("RegNetX080")
RegNetX120 = _zoo_constructor("RegNetX120")
RegNetX160 = _zoo_constructor("RegNetX160")
RegNetX320 = _zoo_constructor("RegNetX320")
RegNetY002 = _zoo_constructor("RegNetY002")
RegNetY004 = _zoo_constructor("RegNetY004")
RegNetY006 = _zoo_constructor("RegNetY006")
RegNetY008 = _zoo_constructor("RegNetY008")
RegNetY016 = _zoo_constructor("RegNetY016")
RegNetY032 = _zoo_constructor("RegNetY032")
RegNetY040 = _zoo_constructor("RegNetY040")
RegNetY064 = _zoo_constructor("RegNetY064")
RegNetY080 = _zoo_constructor("RegNetY080")
RegNetY120 = _zoo_constructor("RegNetY120")
RegNetY160 = _zoo_constructor("RegNetY160")
RegNetY320 = _zoo_constructor("RegNetY320")


def build_model(name: str, **kwargs):
    """The zoo model called `name` (case-insensitive), e.g. build_model("regnety016", classes=10)."""
    return globals()[get_entry(name).name](**kwargs)
