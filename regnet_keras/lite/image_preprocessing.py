"""App-side input and output processing of a converted model, defined by its metadata.

The reference the Android demo's Kotlin core (android_demo/core) reproduces: the golden files
its tests read are written from these functions by `python -m tools.android_goldens`. NumPy only,
so the definition does not depend on TensorFlow's kernels; tests anchor the resize to
tf.image.resize(method="bilinear", antialias=True).

Input (docs/MODEL_METADATA.md, "App-side processing"):
1. crop: the centered square of side round_half_up(crop_fraction x shorter side) (at least one
   pixel), its top-left corner at ((height - side) // 2, (width - side) // 2);
2. resize the square to the input's height x width: separable triangle filter on half-pixel
   centers, its support widened by the downscale factor when shrinking (antialiasing), weights
   renormalised at the borders; the vertical pass first, each output the sum of weight x pixel
   in source order;
3. normalise: (value - mean[c]) / std[c];
4. float32 inputs: cast; integer inputs: q = clamp(round_half_even(value / scale) + zero_point)
   to the type's range.
Everything is computed in float64 and cast at the end, in the same order of operations as the
Kotlin code, so both give the same float32 values and the same integers.

Output: dequantize (q - zero_point) * scale, softmax when the activation is "none" (largest logit
subtracted, float64), top-k by descending score with the lower class index first on ties.
"""

from __future__ import annotations

import json
import math

import numpy as np

from regnet_keras.errors import InputError

METADATA_FORMAT = "regnet_keras.tflite_metadata"
METADATA_VERSION = 1
TENSOR_TYPES = ("float32", "uint8", "int8")
ACTIVATIONS = ("softmax", "none")
INTEGER_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}
# Bounds that keep a crafted file's cost in proportion to a real one's (the Kotlin core and the
# web page apply the same): ImageNet-21k's metadata is about 1 MB with 21,843 labels.
MAX_METADATA_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_LABELS = 100_000
MAX_LABEL_CHARACTERS = 256
MAX_INPUT_SIDE = 4096
# Normalisation and quantization parameters are bounded so that every value computed from them
# is finite: (pixel - mean) / std within float32, value / scale and (q - zero_point) * scale
# within float64. Scales are float32's positive normal numbers, as the .tflite stores them.
MAX_ABS_MEAN = 1e6
STD_RANGE = (1e-6, 1e6)
SCALE_RANGE = (1.1754943508222875e-38, 3.4028234663852886e38)
# Values quoted in messages are cut here, so that every message stays one short line.
QUOTED_CHARACTERS = 60


class MetadataError(InputError, ValueError):
    """Metadata an app cannot run a model from; `field` names the offending JSON field."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"model metadata field {field}: {problem}")
        self.field = field
        self.problem = problem


def _quoted(value) -> str:
    """repr() of a value from the file, shortened: messages stay one short line."""
    text = repr(value)
    return text if len(text) <= QUOTED_CHARACTERS else text[:QUOTED_CHARACTERS] + "..."


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _object_without_duplicates(pairs):
    record = {}
    for key, value in pairs:
        if key in record:
            raise ValueError(f"duplicate key {_quoted(key)}")
        record[key] = value
    return record


def _depth(value) -> int:
    """Nesting depth of a parsed JSON value (a scalar: 0), walked without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        value, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
    return deepest


def parse_metadata(data: bytes) -> dict:
    """A metadata file's bytes -> the checked record; MetadataError for anything an app refuses.

    Strict RFC 8259 JSON, as the Kotlin core reads it: UTF-8, no NaN or Infinity, no duplicate
    key, nesting and size bounded.
    """
    if len(data) > MAX_METADATA_BYTES:
        raise MetadataError("(file)", f"is {len(data)} bytes, more than metadata ever needs "
                            f"({MAX_METADATA_BYTES}); write it again with python -m tools.convert")
    try:
        text = data.decode("utf-8")
        record = json.loads(text, parse_constant=_refuse_constant,
                            object_pairs_hook=_object_without_duplicates)
    except UnicodeDecodeError as error:
        raise MetadataError("(file)", f"is not UTF-8 text (byte {error.start}); write it again "
                            "with python -m tools.convert") from None
    except (ValueError, RecursionError) as error:
        # ValueError: JSONDecodeError, the rules above, integers beyond int's digit limit.
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise MetadataError("(file)", f"is not valid JSON ({problem[:200]}); write it again "
                            "with python -m tools.convert") from None
    if _depth(record) > MAX_JSON_DEPTH:
        raise MetadataError("(file)", f"nests deeper than {MAX_JSON_DEPTH} levels")
    check_metadata(record)
    return record


def _require(record: dict, key: str, field: str):
    if not isinstance(record, dict) or key not in record:
        raise MetadataError(field, "is missing")
    return record[key]


def _finite(value) -> bool:
    """A JSON number a float64 holds (Python's json reads integers of up to 4300 digits)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _number(value, field: str) -> float:
    if not _finite(value):
        raise MetadataError(field, f"must be a finite number, not {_quoted(value)}")
    return float(value)


def _integer(value, field: str) -> int:
    if not _finite(value) or value != int(value):
        raise MetadataError(field, f"must be an integer, not {_quoted(value)}")
    return int(value)


def _quantization(spec: dict, prefix: str, dtype: str):
    quantization = _require(spec, "quantization", f"{prefix}.quantization")
    if dtype == "float32":
        if quantization is not None:
            raise MetadataError(f"{prefix}.quantization", "must be null for a float32 tensor")
        return None
    if not isinstance(quantization, dict):
        raise MetadataError(f"{prefix}.quantization",
                            f"a {dtype} tensor needs {{\"scale\", \"zero_point\"}}")
    scale = _number(_require(quantization, "scale", f"{prefix}.quantization.scale"),
                    f"{prefix}.quantization.scale")
    if scale <= 0:
        raise MetadataError(f"{prefix}.quantization.scale", f"must be positive, not {scale!r}")
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        raise MetadataError(f"{prefix}.quantization.scale", f"{scale!r} is not a normal float32 "
                            f"number (from {SCALE_RANGE[0]:.8g} to {SCALE_RANGE[1]:.8g})")
    zero_point = _integer(_require(quantization, "zero_point",
                                   f"{prefix}.quantization.zero_point"),
                          f"{prefix}.quantization.zero_point")
    low, high = INTEGER_RANGES[dtype]
    if not low <= zero_point <= high:
        raise MetadataError(f"{prefix}.quantization.zero_point",
                            f"{_quoted(zero_point)} is outside the {dtype} range [{low}, "
                            f"{high}]")
    return {"scale": scale, "zero_point": zero_point}


def _choice(value, choices, field: str) -> str:
    if value not in choices:
        raise MetadataError(field, f"is {_quoted(value)}; this reader knows {', '.join(choices)}")
    return value


def check_metadata(metadata: dict) -> None:
    """Raises MetadataError for metadata the app would refuse (the Kotlin core's rules)."""
    if not isinstance(metadata, dict):
        raise MetadataError("(root)", "must be a JSON object")
    if _require(metadata, "format", "format") != METADATA_FORMAT:
        raise MetadataError("format", f"is {_quoted(metadata['format'])}, not {METADATA_FORMAT!r}")
    version = _integer(_require(metadata, "format_version", "format_version"), "format_version")
    if version > METADATA_VERSION:
        raise MetadataError("format_version", f"{version} is newer than this reader "
                            f"({METADATA_VERSION}); update the app")
    if version < 1:
        raise MetadataError("format_version", f"{version} is not a valid version")
    for key in ("model_name", "variant"):
        if not isinstance(_require(metadata, key, key), str):
            raise MetadataError(key, "must be a string")
    labels = _require(metadata, "labels", "labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(l, str) for l in labels):
        raise MetadataError("labels", "must be a non-empty list of strings")
    if len(labels) > MAX_LABELS:
        raise MetadataError("labels", f"has {len(labels)} entries; a reader takes at most "
                            f"{MAX_LABELS}")
    longest = max(range(len(labels)), key=lambda i: len(labels[i]))
    if len(labels[longest]) > MAX_LABEL_CHARACTERS:
        raise MetadataError("labels", f"entry {longest} has {len(labels[longest])} characters; a "
                            f"reader takes at most {MAX_LABEL_CHARACTERS}")
    spec = _require(metadata, "input", "input")
    shape = _require(spec, "shape", "input.shape")
    if (not isinstance(shape, list) or len(shape) != 4
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in shape)
            or shape[0] != 1 or shape[3] != 3):
        raise MetadataError("input.shape", f"is {_quoted(shape)}; expected [1, height, width, 3]")
    if max(shape[1:3]) > MAX_INPUT_SIDE:
        raise MetadataError("input.shape", f"is {_quoted(shape)}; a reader takes height and "
                            f"width up to {MAX_INPUT_SIDE}")
    if _require(spec, "layout", "input.layout") != "NHWC":
        raise MetadataError("input.layout", f"is {_quoted(spec['layout'])}; only NHWC is "
                            "supported")
    if _require(spec, "color_order", "input.color_order") != "RGB":
        raise MetadataError("input.color_order",
                            f"is {_quoted(spec['color_order'])}; only RGB is supported")
    dtype = _choice(_require(spec, "dtype", "input.dtype"), TENSOR_TYPES, "input.dtype")
    _quantization(spec, "input", dtype)
    if _require(spec, "pixel_range", "input.pixel_range") != [0, 255]:
        raise MetadataError("input.pixel_range", f"is {_quoted(spec['pixel_range'])}; apps feed "
                            "0-255 pixels, so only [0, 255] is supported")
    for key in ("mean", "std"):
        values = _require(spec, key, f"input.{key}")
        if not isinstance(values, list) or len(values) != 3:
            raise MetadataError(f"input.{key}", "must hold 3 numbers (R, G, B)")
        numbers = [_number(v, f"input.{key}") for v in values]
        if key == "mean" and max(abs(n) for n in numbers) > MAX_ABS_MEAN:
            raise MetadataError("input.mean", f"is {values!r}; means of 0-255 pixels lie within "
                                f"+-{MAX_ABS_MEAN:g}")
        if key == "std" and min(numbers) <= 0:
            raise MetadataError("input.std", f"must be positive, not {values!r}")
        if key == "std" and not all(STD_RANGE[0] <= n <= STD_RANGE[1] for n in numbers):
            raise MetadataError("input.std", f"is {values!r}; it must lie from {STD_RANGE[0]:g} "
                                f"to {STD_RANGE[1]:g}")
    resize = _require(spec, "resize", "input.resize")
    crop = _number(_require(resize, "crop_fraction", "input.resize.crop_fraction"),
                   "input.resize.crop_fraction")
    if not 0 < crop <= 1:
        raise MetadataError("input.resize.crop_fraction", f"must be in (0, 1], not {crop!r}")
    _choice(_require(resize, "interpolation", "input.resize.interpolation"), ("bilinear",),
            "input.resize.interpolation")
    output = _require(metadata, "output", "output")
    output_dtype = _choice(_require(output, "dtype", "output.dtype"), TENSOR_TYPES,
                           "output.dtype")
    _quantization(output, "output", output_dtype)
    _choice(_require(output, "activation", "output.activation"), ACTIVATIONS,
            "output.activation")


def crop_box(height: int, width: int, crop_fraction: float) -> tuple[int, int, int]:
    """(top, left, side) of the centered square the input is resized from."""
    shorter = min(height, width)
    side = min(shorter, max(1, int(math.floor(crop_fraction * shorter + 0.5))))
    return (height - side) // 2, (width - side) // 2, side


def resize_weights(in_size: int, out_size: int) -> list[tuple[int, list[float]]]:
    """For each output index: (first source index, normalised weights of the sources from it).

    TensorFlow's ScaleAndTranslate with the triangle kernel and antialiasing: the output pixel x
    samples the source at (x + 0.5) * in/out; the kernel is 1 - |d| / kernel_scale with
    kernel_scale = max(in/out, 1), so shrinking averages every source pixel under the output
    pixel instead of skipping some.
    """
    inverse_scale = in_size / out_size
    kernel_scale = max(inverse_scale, 1.0)
    spans = []
    for x in range(out_size):
        sample = (x + 0.5) * inverse_scale
        start = max(int(math.ceil(sample - kernel_scale - 0.5)), 0)
        end = min(int(math.floor(sample + kernel_scale - 0.5)), in_size - 1) + 1
        weights = []
        total = 0.0
        for source in range(start, end):
            weight = max(0.0, 1.0 - abs(source + 0.5 - sample) / kernel_scale)
            weights.append(weight)
            total += weight
        spans.append((start, [weight / total for weight in weights]))
    return spans


def resize(image: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    """float64 HWC image -> out_height x out_width (vertical pass, then horizontal)."""
    image = np.asarray(image, dtype=np.float64)
    rows = np.zeros((out_height, image.shape[1], image.shape[2]))
    for y, (start, weights) in enumerate(resize_weights(image.shape[0], out_height)):
        for k, weight in enumerate(weights):
            rows[y] = rows[y] + weight * image[start + k]
    result = np.zeros((out_height, out_width, image.shape[2]))
    for x, (start, weights) in enumerate(resize_weights(image.shape[1], out_width)):
        for k, weight in enumerate(weights):
            result[:, x] = result[:, x] + weight * rows[:, start + k]
    return result


def quantize(values: np.ndarray, quantization: dict, dtype: str) -> np.ndarray:
    """q = clamp(round_half_even(value / scale) + zero_point), as export.prepare_input rounds."""
    low, high = INTEGER_RANGES[dtype]
    steps = np.rint(np.asarray(values, np.float64) / quantization["scale"])
    return np.clip(steps + quantization["zero_point"], low, high).astype(dtype)


def prepare_image(rgb_uint8_hwc, metadata: dict) -> np.ndarray:
    """An RGB uint8 image (height, width, 3) -> the model's input tensor [1, H, W, 3]."""
    check_metadata(metadata)
    image = np.asarray(rgb_uint8_hwc)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"expected a non-empty RGB uint8 image (height, width, 3), got "
                         f"{image.dtype} {image.shape}")
    spec = metadata["input"]
    _, out_height, out_width, _ = spec["shape"]
    top, left, side = crop_box(image.shape[0], image.shape[1],
                               float(spec["resize"]["crop_fraction"]))
    square = image[top:top + side, left:left + side].astype(np.float64)
    resized = resize(square, out_height, out_width)
    normalized = ((resized - np.asarray(spec["mean"], np.float64))
                  / np.asarray(spec["std"], np.float64))
    if spec["dtype"] == "float32":
        tensor = normalized.astype(np.float32)
    else:
        tensor = quantize(normalized, spec["quantization"], spec["dtype"])
    return tensor[None]


def argb_to_rgb(argb, height: int, width: int) -> np.ndarray:
    """Android's ARGB_8888 pixels (ints, row by row) -> RGB uint8 (height, width, 3); alpha is
    dropped (a camera frame or photo is opaque)."""
    pixels = np.asarray(argb, dtype=np.int64).reshape(height, width) & 0xFFFFFFFF
    channels = [(pixels >> shift) & 0xFF for shift in (16, 8, 0)]
    return np.stack(channels, axis=-1).astype(np.uint8)


def dequantize(raw_output, output_spec: dict) -> np.ndarray:
    """The output tensor's values in float64: (q - zero_point) * scale for integer outputs."""
    values = np.asarray(raw_output, dtype=np.float64).reshape(-1)
    quantization = output_spec.get("quantization")
    if quantization is None:
        return values
    return (values - quantization["zero_point"]) * quantization["scale"]


def softmax(logits) -> np.ndarray:
    """Probabilities in float64, summed in index order (as the Kotlin core sums)."""
    logits = [float(value) for value in np.asarray(logits, dtype=np.float64)]
    largest = max(logits)
    exponentials = [math.exp(value - largest) for value in logits]
    total = 0.0
    for value in exponentials:
        total += value
    return np.asarray([value / total for value in exponentials])


def scores(raw_output, output_spec: dict) -> np.ndarray:
    """Class probabilities from the raw output tensor (dequantized; softmax of logits)."""
    values = dequantize(raw_output, output_spec)
    return softmax(values) if output_spec["activation"] == "none" else values


def top_k(class_scores, k: int = 5) -> list[int]:
    """Indices of the k highest scores, highest first; equal scores: lower index first."""
    class_scores = [float(s) for s in class_scores]
    order = sorted(range(len(class_scores)), key=lambda i: (-class_scores[i], i))
    return order[:k]


def classify_output(raw_output, metadata: dict, k: int = 5) -> list[tuple[int, str, float]]:
    """(index, label, score) of the top k classes of one raw output tensor."""
    class_scores = scores(raw_output, metadata["output"])
    if len(class_scores) != len(metadata["labels"]):
        raise MetadataError("labels", f"{len(metadata['labels'])} labels for a model output of "
                            f"width {len(class_scores)}")
    return [(i, metadata["labels"][i], float(class_scores[i])) for i in top_k(class_scores, k)]
