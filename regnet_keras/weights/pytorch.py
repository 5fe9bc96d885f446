"""PyTorch RegNet weights in and out: `from_pytorch` builds the Keras model a state dict describes,
`to_pytorch` writes a model back as a torchvision, timm or pycls state dict.

An imported model takes 0-255 RGB pixels with the ImageNet mean/std normalisation in its graph
(what all these publishers trained with) and PyTorch's symmetric padding, so it computes what the
PyTorch model computes. Every check (layout, architecture, every key and shape) runs before the
first weight is assigned; a failure names the key and leaves nothing half-loaded.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from regnet_keras import builder, layer_names as names
from regnet_keras.design_space import AnyNetConfig
from regnet_keras.weights import state_dict_files
from regnet_keras.weights.architecture import infer_architecture
from regnet_keras.weights.h5 import (WeightsFileError, assign_tensors, model_tensors,
                                     weight_short_name)
from regnet_keras.weights.origin import WeightsOrigin, attach
from regnet_keras.weights.pytorch_layouts import (LIBRARIES, WRITABLE_LAYOUTS, CanonicalStateDict,
                                                  StateDictLayoutError, detect_layout,
                                                  from_canonical, to_canonical, unwrap)
from regnet_keras.weights.state_dict_files import StateDictFileError

PYTORCH_EXTENSIONS = state_dict_files.SAFETENSORS_EXTENSIONS + state_dict_files.TORCH_EXTENSIONS
# The padding and normalisation of every imported model: PyTorch's geometry, ImageNet mean/std.
PADDING = "symmetric"
PREPROCESSING = "imagenet"


class PyTorchWeightsError(WeightsFileError):
    """A PyTorch state dict that cannot be read, is not a RegNetX/Y, or does not fit the model."""


@dataclasses.dataclass
class PyTorchWeights:
    """A state dict read completely, in our names, with the architecture its tensors describe."""

    canonical: CanonicalStateDict
    config: AnyNetConfig
    classes: int | None  # None: no classifier in the state dict
    origin: WeightsOrigin


def is_pytorch_file(weights) -> bool:
    return isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith(
        PYTORCH_EXTENSIONS)


def read_pytorch_weights(source, origin: WeightsOrigin | None = None) -> PyTorchWeights:
    """Reads a state dict (file path or mapping) and the architecture it describes."""
    described = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the state dict"
    try:
        read = state_dict_files.read(source)
        flat, hint = unwrap(read.content)
        layout = detect_layout(flat)
        canonical = to_canonical(flat, layout)
        config, classes = infer_architecture(canonical)
    except (StateDictFileError, StateDictLayoutError) as error:
        message = str(error)
        raise PyTorchWeightsError(message if message.startswith(described)
                                  else f"{described}: {message}") from error
    if origin is None:
        origin = WeightsOrigin(library=LIBRARIES[layout.name], layout=layout.name,
                               file=os.path.basename(read.path) if read.path else None,
                               sha256=read.sha256)
    else:
        origin = dataclasses.replace(origin, sha256=read.sha256 or origin.sha256)
    return PyTorchWeights(canonical, config, classes, origin)


def load_into(model, weights: PyTorchWeights, source: str = "the state dict") -> None:
    """Assigns the weights to a model of their architecture, every shape checked first."""
    tensors = weights.canonical.tensors
    model_layers = {layer.name: layer for layer in model.layers if layer.weights}
    problems = []
    for layer_name, layer in model_layers.items():
        for variable in layer.weights:
            weight = weight_short_name(variable)
            key = weights.canonical.key(layer_name, weight)
            value = tensors.get(layer_name, {}).get(weight)
            if value is None:
                problems.append(f"{key} is missing")
            elif tuple(value.shape) != tuple(variable.shape):
                problems.append(f"{key} has {value.size} values in shape {tuple(value.shape)} "
                                f"(Keras layout); the model needs {tuple(variable.shape)}")
    if problems:
        raise PyTorchWeightsError(f"{source} does not fit model {model.name!r}; nothing was "
                                  "loaded:\n  - " + "\n  - ".join(problems[:10]))
    fitting = {layer: {weight: np.asarray(value, np.float32) for weight, value in values.items()}
               for layer, values in tensors.items() if layer in model_layers}
    assign_tensors(model, fitting, source)
    attach(model, weights.origin)


def check_classifier(weights: PyTorchWeights, described: str, include_top: bool,
                     classes: int | None) -> None:
    """Refuses a top that the state dict cannot fill: no classifier, or another class count
    (`classes` None accepts the file's)."""
    if include_top and weights.classes is None:
        raise PyTorchWeightsError(f"{described} has no classifier (it is a trunk, e.g. a SEER "
                                  "pretrained model); pass include_top=False to get features.")
    if include_top and classes is not None and classes != weights.classes:
        raise PyTorchWeightsError(
            f"{described}: its classifier has {weights.classes} classes but classes={classes}; "
            f"pass classes={weights.classes}, or include_top=False and add your own classifier.")


def from_pytorch(source, *, include_top: bool = True, input_shape=None, pooling=None,
                 classes: int | None = None, classifier_activation="softmax",
                 name: str | None = None, origin: WeightsOrigin | None = None):
    """The Keras RegNet that a PyTorch state dict describes, with its weights.

    Args:
      source: path of a .safetensors file or a torch.save file (.pth, .pt, .pyth, .bin,
        .torch), or a mapping of names to arrays (e.g. a torch model's state_dict()). The
        layout (torchvision, timm, pycls, classy-vision/VISSL SEER) is recognised by its keys
        and the architecture is read from the tensors' shapes.
      include_top: keep the file's classifier (it must have one).
      input_shape: (height, width, 3); default (224, 224, 3) with the top, any size without.
      pooling: without the top: None, "avg" or "max".
      classes: with the top, must equal the file's classifier width when given.
      classifier_activation: "softmax" (default), another activation, or None for logits.
      name: model name (default "regnet_from_<layout>").
      origin: the WeightsOrigin to record (named weights pass theirs); default: library,
        layout, file name and SHA-256.

    The model takes 0-255 RGB pixels (pycls' BGR-trained stems are flipped to RGB) with
    ImageNet mean/std normalisation in the graph, and pads like PyTorch.
    """
    described = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the state dict"
    weights = read_pytorch_weights(source, origin)
    check_classifier(weights, described, include_top, classes)
    model = builder.build_network(
        weights.config, include_top=include_top, input_shape=input_shape, pooling=pooling,
        classes=weights.classes or 1000, classifier_activation=classifier_activation,
        include_preprocessing=True, name=name or f"regnet_from_{weights.origin.layout}",
        padding=PADDING, preprocessing=PREPROCESSING)
    load_into(model, weights, described)
    return model


def to_pytorch(model, path: str, layout: str = "torchvision") -> str:
    """Writes the model's weights as a `layout` ("torchvision", "timm" or "pycls") state dict.

    `.safetensors` paths are written with NumPy only; torch.save paths (.pth, .pt, .pyth, .bin)
    need torch, and a pycls one nests the state dict under "model_state" as pycls'
    checkpoints do. The library's RegNet of the same architecture loads the file with
    `load_state_dict(strict=True)` and computes the same logits on images normalised with
    ImageNet mean/std (pycls: BGR images, so the stem kernel is written BGR).
    """
    from regnet_keras.introspect import design_of_model
    if layout not in WRITABLE_LAYOUTS:
        raise ValueError(f"layout={layout!r} is invalid: choose one of {WRITABLE_LAYOUTS}.")
    design = design_of_model(model)
    if design.padding != PADDING:
        raise ValueError(
            f"model {model.name!r} pads stride-2 convolutions with TF 'same' padding; PyTorch "
            "pads symmetrically, so its outputs would differ. Rebuild it with padding="
            "'symmetric' and fine-tune, or keep it in Keras.")
    if design.preprocessing not in (PREPROCESSING, None):
        raise ValueError(
            f"model {model.name!r} normalises its input with preprocessing="
            f"{design.preprocessing!r}; PyTorch pipelines feed ImageNet mean/std-normalised "
            "images, so it would compute something else there. Only models trained with "
            "preprocessing='imagenet' can be exported.")
    if not design.include_top:
        raise ValueError(f"model {model.name!r} has no classifier; {layout}'s RegNet has one "
                         "and load_state_dict(strict=True) needs it. Export a model with its top.")
    tensors = {layer: weights for layer, weights in model_tensors(model).items()
               if layer != names.PREPROCESSING}
    state_dict = from_canonical(tensors, layout)
    wrap = "model_state" if layout == "pycls" and not os.fspath(path).endswith(
        state_dict_files.SAFETENSORS_EXTENSIONS) else None
    try:
        return state_dict_files.write(path, state_dict, wrap_in=wrap)
    except StateDictFileError as error:
        raise ValueError(str(error)) from error
