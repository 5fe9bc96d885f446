"""Writes the golden files the Android demo's Kotlin core is tested against.

    python -m tools.android_goldens --out android_demo/core/src/test/resources/goldens

Everything is generated from formulas (no random generator, no files read), so a rerun gives the
same bytes; tests/test_android_core.py checks that the committed goldens are this tool's output.
Files:
  images.json           test images as Android ARGB_8888 ints (row by row), odd sizes, landscape,
                        portrait and square, alpha varying in one (apps ignore alpha)
  metadata/NAME.json    metadata variants in tools.convert's format: float32, uint8 and int8
                        inputs, crop fractions 1.0 and 0.875, non-square input, float and
                        quantized outputs, softmax and logits
  preprocessing.json    every image through every metadata variant: the input tensor
                        regnet_keras.lite.image_preprocessing.prepare_image makes
  postprocessing.json   raw output tensors (float and quantized, with ties) and their top-5
  invalid_metadata.json metadata an app must refuse, with the field the error must name
"""

import copy
import json
import os

from absl import app, flags
import numpy as np

from regnet_keras.lite import image_preprocessing
from tools import backend as tool_backend

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Output directory.", required=True)

FASHION_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                  "Sneaker", "Bag", "Ankle boot"]
IMAGENET_MEAN_255 = [123.675, 116.28, 103.53]
IMAGENET_STD_255 = [58.395, 57.12, 57.375]


def _image(width, height, channels):
    """ARGB ints (signed 32-bit, as Android's Bitmap.getPixels returns) from channel formulas."""
    x, y = np.meshgrid(np.arange(width, dtype=np.int64), np.arange(height, dtype=np.int64))
    red, green, blue, alpha = (np.asarray(c, np.int64) % 256 for c in channels(x, y))
    argb = (alpha << 24) | (red << 16) | (green << 8) | blue
    return argb.astype(np.uint32).view(np.int32).reshape(-1).tolist()


def images():
    opaque = 255
    patterns = {
        # Smooth ramps, landscape: shrinking a gradient must keep it a gradient.
        "gradient_37x23": (37, 23, lambda x, y: (x * 255 // 36, y * 255 // 22, (x + y) * 4,
                                                 opaque + 0 * x)),
        # A fine checker, portrait: without antialiasing a downscale would alias it.
        "checker_23x41": (23, 41, lambda x, y: (255 * ((x // 2 + y // 3) % 2), x * 11,
                                                255 - y * 6, opaque + 0 * x)),
        # Pseudo-random texture with varying alpha, which must not affect the result.
        "texture_64x48": (64, 48, lambda x, y: (x * 73 + y * 151 + x * y * 7,
                                                x * x * 3 + y * 29, (x * 17) ^ (y * 23),
                                                x * 5 + 40)),
        # Smaller than every model input: the crop is upscaled.
        "small_13x11": (13, 11, lambda x, y: (x * 20, y * 23, x * y * 9, opaque + 0 * x)),
        # Square, diagonal stripes.
        "stripes_30x30": (30, 30, lambda x, y: (((x + y) // 3 % 2) * 200 + 30, (x - y) * 7,
                                                y * 8, opaque + 0 * x)),
    }
    return [{"name": name, "width": width, "height": height,
             "argb": _image(width, height, channels)}
            for name, (width, height, channels) in patterns.items()]


def _metadata(name, *, shape, dtype, quantization, mean, std, crop_fraction, labels,
              output_dtype="float32", output_quantization=None, activation="softmax"):
    return {
        "format": image_preprocessing.METADATA_FORMAT,
        "format_version": image_preprocessing.METADATA_VERSION,
        "model_name": "golden_" + name,
        "variant": "float32" if dtype == "float32" else "int8",
        "labels": labels,
        "input": {
            "shape": shape,
            "layout": "NHWC",
            "color_order": "RGB",
            "dtype": dtype,
            "quantization": quantization,
            "pixel_range": [0, 255],
            "mean": mean,
            "std": std,
            "in_model_normalization": "imagenet",
            "resize": {"crop_fraction": crop_fraction, "interpolation": "bilinear"},
        },
        "output": {"dtype": output_dtype, "quantization": output_quantization,
                   "activation": activation},
    }


def metadata_variants():
    unit = ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    variants = {
        # A float file that normalises itself (x/255 folded, or --normalization model): raw
        # pixels, crop 0.875, logits.
        "float32_crop0875": dict(shape=[1, 24, 24, 3], dtype="float32", quantization=None,
                                 mean=unit[0], std=unit[1], crop_fraction=0.875,
                                 labels=FASHION_LABELS, activation="none"),
        # Normalisation done by the app (ImageNet statistics), whole shorter side: what
        # tools.convert writes for the float files of a model trained with ImageNet mean/std.
        "float32_imagenet_crop1": dict(shape=[1, 16, 16, 3], dtype="float32", quantization=None,
                                       mean=IMAGENET_MEAN_255, std=IMAGENET_STD_255,
                                       crop_fraction=1.0, labels=FASHION_LABELS),
        # A non-square input: the square crop is stretched to 12 x 20.
        "float32_nonsquare": dict(shape=[1, 12, 20, 3], dtype="float32", quantization=None,
                                  mean=unit[0], std=unit[1], crop_fraction=0.875,
                                  labels=["caf\u00e9 \"latte\"", "tab\there", "back\\slash",
                                          "\u65e5\u672c", "e", "f", "g"],
                                  activation="none"),
        # tools.convert's int8 file with uint8 input (one step per pixel value).
        "uint8_pixels": dict(shape=[1, 20, 20, 3], dtype="uint8",
                             quantization={"scale": 1.0, "zero_point": 0}, mean=unit[0],
                             std=unit[1], crop_fraction=0.875, labels=FASHION_LABELS,
                             output_dtype="uint8",
                             output_quantization={"scale": 0.00390625, "zero_point": 0}),
        # uint8 input quantizing normalised values; both ends clamp.
        "uint8_affine": dict(shape=[1, 12, 12, 3], dtype="uint8",
                             quantization={"scale": 0.015625, "zero_point": 114},
                             mean=IMAGENET_MEAN_255, std=IMAGENET_STD_255, crop_fraction=1.0,
                             labels=["cat", "dog", "bird"], activation="none"),
        # int8 input (pixel - 128) and int8 logits.
        "int8": dict(shape=[1, 16, 16, 3], dtype="int8",
                     quantization={"scale": 1.0, "zero_point": -128}, mean=unit[0],
                     std=unit[1], crop_fraction=0.875, labels=FASHION_LABELS,
                     output_dtype="int8", output_quantization={"scale": 0.1, "zero_point": 5},
                     activation="none"),
    }
    return {name: _metadata(name, **spec) for name, spec in variants.items()}


def raw_outputs(name, record):
    """Deterministic raw output tensors for one metadata variant (float or quantized ints)."""
    width = len(record["labels"])
    index = np.arange(width)
    output = record["output"]
    if output["dtype"] == "float32":
        if output["activation"] == "none":
            logits = ((index * 37) % 11 - 5) * 0.731
            tensors = [logits.astype(np.float32)]
            if width >= 6:
                # Equal logits: the lower class index ranks first.
                tied = np.zeros(width, np.float32)
                tied[:6] = [1.5, 3.0, 3.0, -1.0, 3.0, 2.0]
                tensors.append(tied)
        else:
            probabilities = np.exp(np.sin(index * 1.7)) / np.exp(np.sin(index * 1.7)).sum()
            tensors = [probabilities.astype(np.float32)]
        return [[float(v) for v in t] for t in tensors]
    low, high = image_preprocessing.INTEGER_RANGES[output["dtype"]]
    first = low + (index * 97) % (high - low + 1)
    tied = np.full(width, low)
    tied[[1, 4, 7]] = high
    tied[2] = high - 1
    return [[int(v) for v in first], [int(v) for v in tied]]


def postprocessing_cases(variants):
    cases = []
    for name, record in variants.items():
        for number, raw in enumerate(raw_outputs(name, record)):
            scores = image_preprocessing.scores(raw, record["output"])
            top = image_preprocessing.classify_output(raw, record)
            cases.append({"name": f"{name}_{number}", "metadata": name, "raw_output": raw,
                          "scores": [float(s) for s in scores],
                          "top5": [{"index": i, "label": label, "score": score}
                                   for i, label, score in top]})
    return cases


def preprocessing_cases(image_records, variants):
    cases = []
    for image in image_records:
        rgb = image_preprocessing.argb_to_rgb(image["argb"], image["height"], image["width"])
        for name, record in variants.items():
            tensor = image_preprocessing.prepare_image(rgb, record)
            values = ([float(v) for v in tensor.reshape(-1)] if tensor.dtype == np.float32
                      else [int(v) for v in tensor.reshape(-1)])
            cases.append({"image": image["name"], "metadata": name,
                          "dtype": str(tensor.dtype), "shape": list(tensor.shape),
                          "values": values})
    return cases


def invalid_metadata_cases(base):
    def set_in(path, value):
        def change(record):
            target = record
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        return change

    def delete(path):
        def change(record):
            target = record
            for key in path[:-1]:
                target = target[key]
            del target[path[-1]]
        return change

    uint8_without_quantization = [set_in(("input", "dtype"), "uint8"),
                                  set_in(("input", "quantization"), None)]
    cases = [
        ("wrong_format", "format", [set_in(("format",), "tflite_support.metadata")]),
        ("newer_version", "format_version", [set_in(("format_version",), 2)]),
        ("labels_missing", "labels", [delete(("labels",))]),
        ("labels_empty", "labels", [set_in(("labels",), [])]),
        ("labels_not_strings", "labels", [set_in(("labels",), ["a", 3])]),
        ("input_missing", "input", [delete(("input",))]),
        ("shape_missing", "input.shape", [delete(("input", "shape"))]),
        ("shape_nchw", "input.shape", [set_in(("input", "shape"), [1, 3, 24, 24])]),
        ("shape_batch_2", "input.shape", [set_in(("input", "shape"), [2, 24, 24, 3])]),
        ("layout_nchw", "input.layout", [set_in(("input", "layout"), "NCHW")]),
        ("color_bgr", "input.color_order", [set_in(("input", "color_order"), "BGR")]),
        ("dtype_float16", "input.dtype", [set_in(("input", "dtype"), "float16")]),
        ("quantization_missing", "input.quantization", uint8_without_quantization),
        ("float_with_quantization", "input.quantization",
         [set_in(("input", "quantization"), {"scale": 1.0, "zero_point": 0})]),
        ("scale_zero", "input.quantization.scale",
         [set_in(("input", "dtype"), "uint8"),
          set_in(("input", "quantization"), {"scale": 0.0, "zero_point": 0})]),
        ("zero_point_out_of_range", "input.quantization.zero_point",
         [set_in(("input", "dtype"), "int8"),
          set_in(("input", "quantization"), {"scale": 1.0, "zero_point": 200})]),
        ("pixel_range_unit", "input.pixel_range", [set_in(("input", "pixel_range"), [0, 1])]),
        ("mean_two_values", "input.mean", [set_in(("input", "mean"), [0.0, 0.0])]),
        ("std_zero", "input.std", [set_in(("input", "std"), [1.0, 0.0, 1.0])]),
        ("crop_zero", "input.resize.crop_fraction",
         [set_in(("input", "resize", "crop_fraction"), 0.0)]),
        ("crop_above_one", "input.resize.crop_fraction",
         [set_in(("input", "resize", "crop_fraction"), 1.5)]),
        ("interpolation_nearest", "input.resize.interpolation",
         [set_in(("input", "resize", "interpolation"), "nearest")]),
        ("output_missing", "output", [delete(("output",))]),
        ("output_dtype_int16", "output.dtype", [set_in(("output", "dtype"), "int16")]),
        ("output_quantization_missing", "output.quantization",
         [set_in(("output", "dtype"), "int8")]),
        ("activation_sigmoid", "output.activation",
         [set_in(("output", "activation"), "sigmoid")]),
    ]
    records = []
    for name, field, changes in cases:
        record = copy.deepcopy(base)
        for change in changes:
            change(record)
        records.append({"name": name, "field": field, "metadata": record})
    records.append({"name": "root_not_object", "field": "(root)", "metadata": [base]})
    for record in records:  # the Python reference refuses each for the same field
        try:
            image_preprocessing.check_metadata(record["metadata"])
        except image_preprocessing.MetadataError as error:
            if error.field != record["field"]:
                raise AssertionError(f"{record['name']}: refused for {error.field}, "
                                     f"expected {record['field']}") from error
        else:
            raise AssertionError(f"{record['name']}: accepted")
    return records


def _write_cases(path, cases):
    """One case per line: small diffs when a case changes, and any JSON reader reads it."""
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"cases": [\n')
        f.write(",\n".join(json.dumps(case) for case in cases))
        f.write("\n]}\n")


def write_goldens(out):
    os.makedirs(os.path.join(out, "metadata"), exist_ok=True)
    image_records = images()
    variants = metadata_variants()
    _write_cases(os.path.join(out, "images.json"), image_records)
    for name, record in variants.items():
        with open(os.path.join(out, "metadata", name + ".json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(record, indent=2) + "\n")  # as regnet_keras.lite.export.write does
    _write_cases(os.path.join(out, "preprocessing.json"),
                 preprocessing_cases(image_records, variants))
    _write_cases(os.path.join(out, "postprocessing.json"), postprocessing_cases(variants))
    _write_cases(os.path.join(out, "invalid_metadata.json"),
                 invalid_metadata_cases(variants["float32_crop0875"]))


def main(argv):
    tool_backend.exit_unless_tensorflow("tools.android_goldens")
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    write_goldens(FLAGS.out)
    print(f"goldens written to {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
