"""Quantization-aware training of RegNets with tensorflow-model-optimization (tfmot).

tfmot works on tf-keras models only, so everything here runs in a process started with
TF_USE_LEGACY_KERAS=1 (`require_legacy_keras` says so otherwise); the model is rebuilt there by the
same builder from a regnet_keras weights file, which carries its design, geometry and
preprocessing.

tfmot's default 8-bit scheme quantizes Conv2D (grouped ones included, weights per output channel),
Dense, BatchNormalization (folded into the convolution by the TFLite converter), ReLU, Add,
GlobalAveragePooling2D, ZeroPadding2D and the classifier's Activation, but refuses the SE block's
Multiply and the Rescaling input layer; those get `OutputQuantizeConfig`, which quantizes their
output to 8 bits like tfmot's own Add. Grouped convolutions keep the fast implementation
of `grouped_conv` inside tfmot's wrappers, so QAT trains as fast as float training.
"""

from __future__ import annotations

import dataclasses

from regnet_keras import grouped_conv
from regnet_keras.keras_backend import uses_legacy_keras

# Layers tfmot's default registry does not know, quantized at their output.
OUTPUT_QUANTIZED_LAYERS = ("Multiply", "Rescaling")
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
    import tf_keras as keras
    import tensorflow_model_optimization as tfmot
    quantize = tfmot.quantization.keras
    config_class = _output_quantize_config_class()
    registry = quantize.default_8bit.default_8bit_quantize_registry.Default8BitQuantizeRegistry()

    def annotate(layer):
        kind = type(layer).__name__
        if kind in STRUCTURAL_LAYERS:
            return layer
        if registry.supports(layer):
            return quantize.quantize_annotate_layer(layer)
        if kind in OUTPUT_QUANTIZED_LAYERS:
            return quantize.quantize_annotate_layer(layer, config_class())
        return layer  # left in float, and reported

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())
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
