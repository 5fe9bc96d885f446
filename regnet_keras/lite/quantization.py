"""Quantization-aware training of RegNets with tensorflow-model-optimization (tfmot).

tfmot works on tf-keras models only, so everything here runs in a process started with
TF_USE_LEGACY_KERAS=1 (`require_legacy_keras` says so otherwise); the model is rebuilt there by the
same builder from a regnet_keras weights file, which carries its design, geometry and
preprocessing.

tfmot's default 8-bit scheme quantizes Conv2D (grouped ones included, weights per output channel),
Dense, BatchNormalization (folded into the convolution by the TFLite converter), ReLU, Add,
GlobalAveragePooling2D, ZeroPadding2D and the classifier's Activation, but refuses the SE block's
Multiply, which gets `OutputQuantizeConfig` (its output quantized to 8 bits like tfmot's own Add).
The input normalisation (a per-channel Rescaling) becomes the 1x1 depthwise convolution it is,
so that QAT sees the normalised input quantized as the converted file will take it. At
conversion the app takes over that normalisation (`without_input_normalization`), as it does for
post-training int8 files, so both files hold the same ops. Grouped convolutions keep the fast
implementation of `grouped_conv` inside tfmot's wrappers, so QAT trains as fast as float
training.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from regnet_keras import layer_names
from regnet_keras.keras_backend import uses_legacy_keras
from regnet_keras.preprocessing import with_depthwise_preprocessing
from regnet_keras.tf_speedups import grouped_conv

# Layers tfmot's default registry does not know, quantized at their output.
OUTPUT_QUANTIZED_LAYERS = ("Multiply",)
# Layers that carry no computation to quantize.
STRUCTURAL_LAYERS = ("InputLayer", "QuantizeLayer")


def require_legacy_keras() -> None:
    if not uses_legacy_keras():
        raise RuntimeError(
            "quantization-aware training needs tf-keras: run it in a process started with "
            "TF_USE_LEGACY_KERAS=1 (python -m tools.qat does this for you).")


def _output_quantize_config_class():
    import tensorflow_model_optimization as tfmot
    quantize = tfmot.quantization.keras

    class OutputQuantizeConfig(quantize.QuantizeConfig):
        """8-bit asymmetric quantization of a weightless layer's output (as tfmot's Add)."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [quantize.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

        def get_config(self):
            return {}

    return OutputQuantizeConfig


def quantize_scope():
    """The tfmot scope that knows our QuantizeConfig, for loading QAT models from files."""
    import tensorflow_model_optimization as tfmot
    config = _output_quantize_config_class()
    return tfmot.quantization.keras.quantize_scope({"OutputQuantizeConfig": config})


@dataclasses.dataclass(frozen=True)
class QuantizationReport:
    quantized_layers: tuple[str, ...]
    float_layers: tuple[str, ...]  # layers tfmot left unwrapped, kept in float


def quantize_model(model, allow_float_layers: bool = False):
    """A QAT model of a tf-keras RegNet, with the report of what was quantized.

    Raises ValueError naming the layers that would stay in float unless allow_float_layers.
    """
    require_legacy_keras()
    import tensorflow_model_optimization as tfmot
    quantize = tfmot.quantization.keras
    config_class = _output_quantize_config_class()

    def annotate(layer):
        # tfmot's own configs for what its registry and transforms know (BN with its Conv2D
        # included); quantize_apply refuses, by name, any layer neither knows.
        kind = type(layer).__name__
        if kind in STRUCTURAL_LAYERS:
            return layer
        if kind in OUTPUT_QUANTIZED_LAYERS:
            return quantize.quantize_annotate_layer(layer, config_class())
        return quantize.quantize_annotate_layer(layer)

    annotated = with_depthwise_preprocessing(model, wrap=annotate)
    with quantize_scope():
        quantized = quantize.quantize_apply(annotated)
    report = quantization_report(quantized)
    if report.float_layers and not allow_float_layers:
        raise ValueError(
            f"{len(report.float_layers)} layers would stay in float: "
            f"{', '.join(report.float_layers)}. Pass allow_float_layers=True "
            "(--allow_float_layers) to accept that.")
    grouped_conv.enable(quantized)
    return quantized, report


def quantization_report(quantized_model) -> QuantizationReport:
    quantized, floating = [], []
    for layer in quantized_model.layers:
        kind = type(layer).__name__
        if kind == "QuantizeWrapperV2" or kind == "QuantizeWrapper":
            quantized.append(layer.layer.name)
        elif kind not in STRUCTURAL_LAYERS:
            floating.append(layer.name)
    return QuantizationReport(tuple(quantized), tuple(floating))


def rebuild_from_weights(path: str, input_shape):
    """The tf-keras twin of the model whose regnet_keras weights file is `path`."""
    require_legacy_keras()
    from regnet_keras.applications import RegNet
    from regnet_keras.weights.h5 import open_weights_file
    stored = open_weights_file(path)
    return RegNet(stored.config, weights=path, input_shape=tuple(input_shape),
                  include_top=stored.classes is not None, classes=stored.classes or 1000,
                  classifier_activation=stored.classifier_activation,
                  include_preprocessing=stored.preprocessing is not None,
                  padding=stored.padding, preprocessing=stored.preprocessing)


def save_qat_model(qat_model, path: str) -> None:
    """Saves a QAT model's weights (fake-quantization ranges included) as tf-keras HDF5.

    tfmot's layers do not survive the .keras format's loader, so a QAT model is stored as its
    float weights file plus these weights, and `load_qat_model` rebuilds it from both.
    """
    qat_model.save_weights(path)


def load_qat_model(float_weights_path: str, qat_weights_path: str, input_shape,
                   allow_float_layers: bool = False):
    model = rebuild_from_weights(float_weights_path, input_shape)
    qat_model, _ = quantize_model(model, allow_float_layers)
    qat_model.load_weights(qat_weights_path)
    return qat_model


def _normalization_wrapper(qat_model):
    """The QuantizeWrapper of the model's input normalisation (a 1x1 depthwise convolution) and
    the QuantizeLayer feeding it, or (None, None)."""
    wrapper = next((layer for layer in qat_model.layers
                    if getattr(layer, "layer", None) is not None
                    and layer.layer.name == layer_names.PREPROCESSING
                    and type(layer.layer).__name__ == "DepthwiseConv2D"), None)
    if wrapper is None:
        return None, None
    source = wrapper.input._keras_history.layer
    return wrapper, (source if type(source).__name__ == "QuantizeLayer" else None)


def _weights_by_name(layer) -> dict:
    """A layer's variables by their last name part ("bias", "post_activation_min", ...)."""
    return {weight.name.split("/")[-1].split(":")[0]: weight for weight in layer.weights}


def input_statistics(qat_model):
    """(mean, std) per channel on the 0-255 scale of a QAT model's input normalisation, with
    normalised = (pixel - mean) / std; None when it has none."""
    wrapper, source = _normalization_wrapper(qat_model)
    if source is None:
        return None
    weights = _weights_by_name(wrapper)
    scale = np.asarray(weights["depthwise_kernel"].numpy(), np.float64)[0, 0, :, 0]
    bias = np.asarray(weights["bias"].numpy(), np.float64)
    return -bias / scale, 1.0 / scale


def without_input_normalization(qat_model):
    """A QAT model that takes the normalised input (see `input_statistics`), quantized as the
    original quantized its normalisation's output: the input QuantizeLayer takes that output's
    learned range, and the normalisation becomes an Identity. The converter then gives the file
    of the original minus its first op (the app normalises and quantizes with the file's input
    scale and zero point); the other layers are shared with `qat_model`."""
    require_legacy_keras()
    import tf_keras
    wrapper, source = _normalization_wrapper(qat_model)
    if source is None:
        raise ValueError(f"{qat_model.name} has no quantized input normalisation to remove.")
    by_name = _weights_by_name(wrapper)
    low, high = (float(by_name[name].numpy())
                 for name in ("post_activation_min", "post_activation_max"))
    with quantize_scope():
        quantize_input = type(source).from_config(source.get_config())
    replacements = {source: quantize_input,
                    wrapper: tf_keras.layers.Identity(name=layer_names.PREPROCESSING)}
    copy = tf_keras.models.clone_model(qat_model,
                                       clone_function=lambda layer: replacements.get(layer, layer))
    for name, weight in _weights_by_name(quantize_input).items():
        if name.endswith("_min"):
            weight.assign(low)
        elif name.endswith("_max"):
            weight.assign(high)
    grouped_conv.enable(copy)
    return copy
