"""Conversion of RegNets to TFLite, the metadata an app needs, and checks on the LiteRT runtime.

Variants: float32, float16 (weights), dynamic (dynamic-range int8 weights; the padded
convolutions of narrow groups keep float kernels, see `dynamic_range`), int8 (full-integer
post-training quantization calibrated on representative images, weights per output channel),
int8_per_tensor (the same with one scale per weight tensor: a smaller file, which may cost
accuracy) and qat (a quantization-aware trained tf-keras model from `quantization`). Only TFLite
builtin ops are allowed: a model that would need Select TF ops fails with the ops named.
TFLite's converter leaks memory with every convert() in TF 2.21, so tools convert each variant
in a process of its own.

Input normalisation: by default every file takes 0-255 pixels and normalises them itself. With
normalization="app" (what tools.convert writes), files whose normalisation cannot fold into the
stem for free (ImageNet mean/std) leave it to the app, which applies the metadata's mean and std
while it turns pixels into the input tensor anyway: float files take normalised floats, integer
files normalised values quantized with the input tensor's scale and zero point (both in the
metadata). This saves the file a pass over the input image, which costs an integer file more
than any other op of its size (RegNetX002 int8: 1.18x the latency with it in the graph).

Every file takes and gives one image at a time: its input and output signatures have batch 1
([1, height, width, 3] and [1, classes]), the static shape the runtimes on phones and in browsers
check exactly (LiteRT.js refuses a tensor of [1, 32, 32, 3] for a signature of [-1, 32, 32, 3]).

The metadata is a JSON file beside each .tflite (`<name>.json`), described in
docs/MODEL_METADATA.md; the Android demo reads exactly that.
"""

from __future__ import annotations

import collections
import json
import os
import re

import numpy as np

from regnet_keras import keras_backend, layer_names
from regnet_keras.errors import InputError
from regnet_keras.lite import dynamic_range, image_preprocessing
# Opening files from users lives in tflite_files; its names stay importable from here.
from regnet_keras.lite.tflite_files import (  # noqa: F401
    CHILD_CHECK_TIMEOUT_S, IO_TYPES, MAX_ACTIVATION_BYTES, MAX_TFLITE_BYTES, TFLiteFileError,
    _first_line, _read_bounded, check_classifier, check_in_child_process, check_metadata_matches,
    interpreter, quantization_of, read_tflite)
from regnet_keras.preprocessing import (MODES, pixel_statistics, with_depthwise_preprocessing,
                                        with_scale_folded_into_stem, without_normalization)
from regnet_keras.tf_speedups import grouped_conv

VARIANTS = ("float32", "float16", "dynamic", "int8", "int8_per_tensor", "qat")
# Variants that compute in int8 and may take and give integer tensors.
INTEGER_VARIANTS = ("int8", "int8_per_tensor", "qat")
# Variants calibrated here on representative images.
CALIBRATED_VARIANTS = ("int8", "int8_per_tensor")
# Where a float file's input normalisation happens: in the graph, or in the app (see above).
NORMALIZATIONS = ("model", "app")
METADATA_FORMAT = "regnet_keras.tflite_metadata"
METADATA_VERSION = 1
# Layer types a regnet_keras graph is made of (and tfmot's wrappers around them).
SUPPORTED_LAYERS = {"InputLayer", "Rescaling", "ZeroPadding2D", "Conv2D", "BatchNormalization",
                    "ReLU", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Multiply", "Add",
                    "Dense", "Activation", "DepthwiseConv2D", "QuantizeLayer", "QuantizeWrapper",
                    "QuantizeWrapperV2"}


class ConversionError(InputError, ValueError):
    """A model or request the converter cannot turn into a builtin-only TFLite file."""


def check_convertible(model) -> None:
    """Refuses models that are not regnet_keras RegNets or hold layers TFLite would not keep."""
    names = {layer.name for layer in model.layers}
    inner = {getattr(layer, "layer", layer).name for layer in model.layers}
    if layer_names.STEM_CONV not in names | inner:
        raise ConversionError(
            f"model {model.name!r} is not a regnet_keras RegNet (no {layer_names.STEM_CONV!r} "
            "layer); build it with regnet_keras or train it with tools.train.")
    unsupported = sorted({type(layer).__name__ for layer in model.layers} - SUPPORTED_LAYERS)
    if unsupported:
        raise ConversionError(
            f"model {model.name!r} has layers outside a RegNet graph: {', '.join(unsupported)}; "
            "remove them or convert with tf.lite.TFLiteConverter directly.")


def check_representative_images(images, input_shape) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    expected = tuple(input_shape[1:])
    if images.ndim != 4 or len(images) == 0:
        raise ConversionError(
            f"the representative dataset is empty or not a batch of images (shape "
            f"{images.shape}); int8 calibration needs images shaped (N, {', '.join(map(str, expected))}).")
    if any(e is not None and e != s for e, s in zip(expected, images.shape[1:])):
        raise ConversionError(
            f"representative images have shape {images.shape[1:]}, the model takes {expected}; "
            "prepare them with the model's evaluation preprocessing.")
    return images


def _is_tf_keras(model) -> bool:
    return type(model).__module__.startswith("tf_keras")


def _converter_for_one_image(model):
    """A TFLiteConverter that traces `model` on a batch of one image.

    Keras 3's export takes the batch from the model's input, so the model is re-rooted on an
    input of batch 1 (its layers shared, not copied). tf-keras' SavedModel export makes every
    batch dynamic whatever the input says, so a tf-keras model (QAT, keras.applications) is
    traced as a concrete function of batch 1 instead; Keras 3 models cannot take that route,
    because their variables would stay unfrozen READ_VARIABLE ops.
    """
    import tensorflow as tf
    input_shape = tuple(model.inputs[0].shape[1:])
    if _is_tf_keras(model):
        function = tf.function(lambda images: model(images, training=False))
        traced = function.get_concrete_function(
            tf.TensorSpec((1, *input_shape), model.inputs[0].dtype, name="images"))
        return tf.lite.TFLiteConverter.from_concrete_functions([traced], model)
    if model.inputs[0].shape[0] != 1:
        import keras
        inputs = keras.Input(shape=input_shape, batch_size=1, dtype=model.inputs[0].dtype)
        model = keras.models.clone_model(model, input_tensors=inputs,
                                         clone_function=lambda layer: layer)
    return tf.lite.TFLiteConverter.from_keras_model(model)


def tflite_converter(model, variant: str, representative_images=None):
    """A TFLiteConverter for `model` set up for `variant`, builtin ops only, batch 1 (no checks)."""
    import tensorflow as tf
    converter = _converter_for_one_image(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant in CALIBRATED_VARIANTS:
        images = np.asarray(representative_images, dtype=np.float32)
        converter.representative_dataset = lambda: ([image[None]] for image in images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if variant == "int8_per_tensor":
        # Per-channel files store a float32 scale and an int64 zero point per output channel
        # for every kernel and its bias (about 10% of a RegNetX002 int8 file); the converter's
        # only switch to one scale per tensor is this attribute.
        converter._experimental_disable_per_channel = True
    return converter


def app_normalization(model, variant: str, normalization: str = "model"):
    """(mean, std) per channel on the 0-255 scale that the app applies to pixels before feeding
    the file `convert(model, variant, normalization=normalization)` writes; None when the file
    takes pixels as they are.

    The app takes over only what would cost the file a pass over the input: an offset (ImageNet
    mean/std), which a zero-padded stem cannot absorb. A scale alone folds into the stem for
    free and stays in the file. A QAT model's normalisation (a quantized 1x1 depthwise
    convolution) goes to the app on the same terms, so that its file has the post-training
    file's ops.
    """
    if normalization not in NORMALIZATIONS:
        raise ConversionError(f"normalization={normalization!r} is invalid: choose one of "
                              f"{NORMALIZATIONS}.")
    if normalization == "model":
        return None
    if variant == "qat":
        from regnet_keras.lite import quantization
        statistics = quantization.input_statistics(model)
    else:
        statistics = pixel_statistics(model)
    if statistics is None or not np.any(statistics[0]):
        return None
    return statistics


def convert(model, variant: str, representative_images=None, input_type: str = "float32",
            output_type: str = "float32", normalization: str = "model") -> bytes:
    """Converts a Keras model to TFLite bytes with builtin ops only.

    normalization: "model" (the file takes 0-255 pixels) or "app" (files whose normalisation
    cannot fold leave it to the app; see `app_normalization`). Representative images are 0-255
    pixels either way.
    """
    keras_backend.require_tensorflow_backend("regnet_keras.lite.export.convert")
    import tensorflow as tf
    if variant not in VARIANTS:
        raise ConversionError(f"variant={variant!r} is invalid: choose one of {VARIANTS}.")
    for name, value in (("input_type", input_type), ("output_type", output_type)):
        if value not in IO_TYPES:
            raise ConversionError(f"{name}={value!r} is invalid: choose one of {IO_TYPES}.")
        if value != "float32" and variant not in INTEGER_VARIANTS:
            raise ConversionError(f"{name}={value!r} needs an integer model: use variant "
                                  f"{', '.join(INTEGER_VARIANTS)}, or keep float32 input and "
                                  "output.")
    check_convertible(model)
    statistics = app_normalization(model, variant, normalization)
    if statistics is not None and variant == "qat":
        from regnet_keras.lite import quantization
        model = quantization.without_input_normalization(model)
    elif statistics is not None:
        model = without_normalization(model)
    elif any(type(layer).__name__ == "Rescaling" for layer in model.layers):
        model = with_scale_folded_into_stem(model) or with_depthwise_preprocessing(model)
    grouped_conv.enable(model)  # trace TensorFlow's grouped op, never Keras' XLA call
    if variant in CALIBRATED_VARIANTS:
        representative_images = check_representative_images(representative_images,
                                                             model.input_shape)
        if statistics is not None:  # calibrate on what the app will feed
            mean, std = (np.asarray(values, np.float64) for values in statistics)
            representative_images = ((representative_images - mean) / std).astype(np.float32)
    converter = tflite_converter(model, variant, representative_images)
    if variant in INTEGER_VARIANTS:
        converter.inference_input_type = tf.as_dtype(input_type)
        converter.inference_output_type = tf.as_dtype(output_type)
    try:
        content = converter.convert()
    except Exception as error:  # the converter raises ConverterError and plain Exceptions
        ops = sorted(set(re.findall(r"\btf\.(\w+)", str(error))))
        if ops:
            raise ConversionError(
                f"{model.name} needs TensorFlow ops that are not TFLite builtins: "
                f"{', '.join(ops)}. regnet_keras converts with builtin ops only (Select TF ops "
                "would need the Flex delegate on the phone).") from error
        raise ConversionError(f"TFLite conversion of {model.name} ({variant}) failed: "
                              f"{error}") from error
    if variant == "dynamic":
        content = dynamic_range.float_padded_convolutions(content)
    return content


def op_counts(model_content: bytes) -> collections.Counter:
    """The file's ops, as written (no delegate has replaced any)."""
    runtime = interpreter(model_content, xnnpack=False)
    return collections.Counter(op["op_name"] for op in runtime._get_ops_details())


def float_ops(model_content: bytes) -> list[str]:
    """Ops of an integer model that still compute in float (boundary (de)quantization aside)."""
    runtime = interpreter(model_content, xnnpack=False)
    tensors = {t["index"]: t for t in runtime.get_tensor_details()}
    left = []
    for op in runtime._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        outputs = [tensors[i] for i in op["outputs"] if i in tensors]
        if any(t["dtype"] == np.float32 for t in outputs):
            left.append(op["op_name"])
    return left


def size_breakdown(model_content: bytes) -> dict[str, int]:
    """Where a .tflite file's bytes go: constant tensors by role, their quantization
    parameters, and the rest (graph structure, names, metadata).

    "weights" are the constant inputs of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED that are
    not biases, "biases" their third inputs (int32 in integer files), "other_constants" every
    other constant buffer; "quantization" counts each quantized tensor's scales (float32) and
    zero points (int64, as the schema stores them): per-channel int8 files carry these 12 bytes
    per output channel for the weights and again for the biases.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
    codes = [code.builtinCode or code.deprecatedBuiltinCode for code in model.operatorCodes]
    weighted = {schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.DEPTHWISE_CONV_2D,
                schema.BuiltinOperator.FULLY_CONNECTED}
    sizes = {"weights": 0, "biases": 0, "other_constants": 0, "quantization": 0}
    counted = set()
    for subgraph in model.subgraphs:
        roles = {}
        for operator in subgraph.operators:
            if codes[operator.opcodeIndex] in weighted:
                inputs = list(operator.inputs)
                roles.update({index: "weights" for index in inputs[1:2]})
                roles.update({index: "biases" for index in inputs[2:3] if index >= 0})
        for index, tensor in enumerate(subgraph.tensors):
            data = model.buffers[tensor.buffer].data
            if data is not None and len(data) and tensor.buffer not in counted:
                counted.add(tensor.buffer)
                sizes[roles.get(index, "other_constants")] += len(data)
            quantization = tensor.quantization
            if quantization is not None:
                # The object API leaves absent vectors as None and present ones as arrays.
                scales, zero_points = quantization.scale, quantization.zeroPoint
                sizes["quantization"] += (4 * (0 if scales is None else len(scales))
                                          + 8 * (0 if zero_points is None else len(zero_points)))
    sizes["other"] = len(model_content) - sum(sizes.values())
    sizes["total"] = len(model_content)
    return sizes


def check_converted(model, model_content: bytes, variant: str) -> None:
    """Every convolution is one CONV_2D, no Select TF op, and integer variants compute in int8."""
    ops = op_counts(model_content)
    flex = sorted(op for op in ops if op.startswith("Flex") or op == "CUSTOM")
    if flex:
        raise ConversionError(f"the {variant} file holds non-builtin ops: {', '.join(flex)}.")
    convolutions = sum(1 for layer in model.layers
                       if type(getattr(layer, "layer", layer)).__name__ == "Conv2D")
    if ops["CONV_2D"] != convolutions:
        raise ConversionError(
            f"the {variant} file has {ops['CONV_2D']} CONV_2D ops for {convolutions} Conv2D "
            "layers: a convolution was decomposed or lost.")
    if variant in INTEGER_VARIANTS:
        left = float_ops(model_content)
        if left:
            raise ConversionError(f"the {variant} file computes in float in: "
                                  f"{', '.join(sorted(set(left)))}.")


def metadata(model_content: bytes, *, model_name: str, variant: str, labels, preprocessing,
             crop_fraction: float, output_activation: str, app_normalization=None,
             weights_origin: dict | None = None) -> dict:
    """The sidecar metadata of a .tflite file (docs/MODEL_METADATA.md).

    `preprocessing` is the Keras model's normalisation ("imagenet" or "unit");
    `app_normalization` the (mean, std) the app applies instead of the file (None: the file
    normalises itself); `weights_origin` where imported weights came from
    (regnet_keras.weights.origin), written as the record's "weights" (with the evaluation
    transform the publisher measured them with: pass its crop fraction as `crop_fraction`).
    """
    if preprocessing not in MODES:
        raise ConversionError(
            f"the model has no known preprocessing layer (preprocessing={preprocessing!r}); build "
            "it with include_preprocessing=True so that apps feed it plain 0-255 pixels.")
    runtime = interpreter(model_content)
    inputs, outputs = runtime.get_input_details()[0], runtime.get_output_details()[0]
    if app_normalization is None:
        # The graph normalises itself, so the app feeds 0-255 pixels unchanged: mean 0, std 1.
        mean, std = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    else:
        # Seven significant digits: float32's precision, all the model's constants carry
        # (123.675 rather than the 123.67500382 their float32 rounding reads back as).
        mean, std = ([float(f"{v:.7g}") for v in values] for values in app_normalization)
    labels = [str(label) for label in labels]
    if len(labels) != int(outputs["shape"][-1]):
        raise ConversionError(f"{len(labels)} labels for {int(outputs['shape'][-1])} outputs.")
    record = {
        "format": METADATA_FORMAT,
        "format_version": METADATA_VERSION,
        "model_name": model_name,
        "variant": variant,
        "labels": labels,
        "input": {
            "shape": [int(d) for d in inputs["shape"]],
            "layout": "NHWC",
            "color_order": "RGB",
            "dtype": np.dtype(inputs["dtype"]).name,
            "quantization": quantization_of(inputs),
            "pixel_range": [0, 255],
            "mean": mean,
            "std": std,
            "in_model_normalization": preprocessing if app_normalization is None else "none",
            "resize": {"crop_fraction": crop_fraction, "interpolation": "bilinear"},
        },
        "output": {
            "dtype": np.dtype(outputs["dtype"]).name,
            "quantization": quantization_of(outputs),
            "activation": output_activation,
        },
    }
    if weights_origin is not None:
        record["weights"] = weights_origin
    return record


def write(model_content: bytes, metadata_record: dict, path: str) -> tuple[str, str]:
    """Writes NAME.tflite and NAME.json atomically; returns both paths."""
    base = path[:-len(".tflite")] if path.endswith(".tflite") else path
    written = []
    for target, data in ((base + ".tflite", model_content),
                         (base + ".json", json.dumps(metadata_record, indent=2).encode())):
        temporary = target + ".tmp"
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, target)
        written.append(target)
    return written[0], written[1]


def read_metadata(tflite_path: str) -> dict | None:
    """The sidecar metadata written beside a .tflite file, or None when there is none; metadata
    an app would refuse raises image_preprocessing.MetadataError naming the file."""
    base = tflite_path[:-len(".tflite")] if tflite_path.endswith(".tflite") else tflite_path
    path = base + ".json"
    if not os.path.lexists(path):
        return None
    data = _read_bounded(path, image_preprocessing.MAX_METADATA_BYTES,
                         lambda message: image_preprocessing.MetadataError("(file)", message),
                         "metadata file")
    try:
        return image_preprocessing.parse_metadata(data)  # the app's own rules
    except image_preprocessing.MetadataError as error:
        raise image_preprocessing.MetadataError(error.field, f"{error.problem} (in {path})") \
            from None


MODEL_INDEX = "models.json"


def write_model_index(directory: str) -> str:
    """Lists every NAME.tflite of `directory` that has its NAME.json in `directory`/models.json
    ({"models": [{name, variant, tflite, metadata, bytes}]}, by name): the web demo's model
    picker reads it, since a static page cannot list a folder."""
    models = []
    for name in sorted(os.listdir(directory)):
        base, extension = os.path.splitext(name)
        if extension != ".tflite" or not os.path.isfile(os.path.join(directory, base + ".json")):
            continue
        record = read_metadata(os.path.join(directory, name))
        models.append({"name": base, "variant": record["variant"], "tflite": name,
                       "metadata": base + ".json",
                       "bytes": os.path.getsize(os.path.join(directory, name))})
    path = os.path.join(directory, MODEL_INDEX)
    with open(path + ".tmp", "w") as f:
        json.dump({"models": models}, f, indent=2)
    os.replace(path + ".tmp", path)
    return path


def normalization_of(record: dict | None):
    """(mean, std) an app applies for a file with this metadata; None for none (or no record)."""
    if record is None:
        return None
    mean, std = record["input"]["mean"], record["input"]["std"]
    if mean == [0.0, 0.0, 0.0] and std == [1.0, 1.0, 1.0]:
        return None
    return mean, std


def prepare_input(images, input_details, normalization=None) -> np.ndarray:
    """0-255 RGB float images -> the tensor the interpreter takes (normalised by the app's
    (mean, std) if given, then quantized if integer)."""
    images = np.asarray(images, dtype=np.float32)
    if normalization is not None:
        mean, std = (np.asarray(values, np.float64) for values in normalization)
        images = ((images - mean) / std).astype(np.float32)
    quantization = quantization_of(input_details)
    if quantization is None:
        return images
    info = np.iinfo(input_details["dtype"])
    values = np.round(images / quantization["scale"]) + quantization["zero_point"]
    return np.clip(values, info.min, info.max).astype(input_details["dtype"])


def run(model_content_or_runtime, images, normalization=None) -> np.ndarray:
    """Outputs (dequantized to float) of a .tflite model on 0-255 RGB images, one at a time;
    `normalization`: the (mean, std) the app applies (see `app_normalization`)."""
    runtime = (model_content_or_runtime if hasattr(model_content_or_runtime, "invoke")
               else interpreter(model_content_or_runtime))
    inputs, outputs = runtime.get_input_details()[0], runtime.get_output_details()[0]
    results = []
    for image in np.asarray(images, dtype=np.float32):
        runtime.set_tensor(inputs["index"], prepare_input(image[None], inputs, normalization))
        try:
            runtime.invoke()
        except RuntimeError as error:  # a kernel that refuses the file's parameters when it runs
            raise TFLiteFileError(f"the model failed to run ({_first_line(error)}); convert it "
                                  "again with python -m tools.convert.") from None
        value = runtime.get_tensor(outputs["index"]).astype(np.float32)
        quantization = quantization_of(outputs)
        if quantization is not None:
            value = (value - quantization["zero_point"]) * quantization["scale"]
        results.append(value[0])
    return np.stack(results)
