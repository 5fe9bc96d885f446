"""The app-side reference pipeline (regnet_keras.lite.image_preprocessing), anchored to TensorFlow."""

import copy
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from regnet_keras.lite import image_preprocessing as ip
from tools import android_goldens

RESIZE_TOLERANCE = 1e-3  # on the 0-255 scale; float32 rounding inside TensorFlow's kernel


def _tf_resize(image, height, width):
    return tf.image.resize(np.asarray(image, np.float32)[None], (height, width),
                           method="bilinear", antialias=True).numpy()[0]


@pytest.mark.parametrize("source, target", [
    ((40, 40), (16, 16)),   # downscale 2.5x
    ((64, 64), (7, 7)),     # downscale 9.1x: wide antialiasing support
    ((13, 13), (32, 32)),   # upscale
    ((21, 21), (12, 30)),   # down in one axis, up in the other
    ((33, 33), (33, 33)),   # identity
])
def test_resize_matches_tensorflow_antialiased_bilinear(source, target):
    image = np.random.default_rng(sum(source + target)).integers(0, 256, (*source, 3))
    ours = ip.resize(image.astype(np.float64), *target)
    assert ours.shape == (*target, 3)
    assert np.abs(ours - _tf_resize(image, *target)).max() <= RESIZE_TOLERANCE


def test_identity_resize_is_exact_and_shrinking_averages_with_border_renormalisation():
    image = np.arange(2 * 4 * 3, dtype=np.float64).reshape(2, 4, 3)
    np.testing.assert_array_equal(ip.resize(image, 2, 4), image)
    # 4 -> 2 columns: the triangle is 2 source pixels wide on each side; output 0 samples at 1.0
    # and sees sources 0, 1, 2 with weights 0.75, 0.75, 0.25 (renormalised by 1.75).
    row = np.array([[[0.0], [4.0], [8.0], [12.0]]])
    np.testing.assert_allclose(ip.resize(row, 1, 2)[0, :, 0], [20 / 7, 64 / 7], rtol=1e-12)


@pytest.mark.parametrize("height, width, fraction, expected", [
    (23, 37, 1.0, (0, 7, 23)),
    (23, 37, 0.875, (1, 8, 20)),      # 20.125 -> 20
    (41, 23, 0.875, (10, 1, 20)),
    (11, 13, 0.5, (2, 3, 6)),         # 5.5 rounds half up to 6
    (1, 1, 0.1, (0, 0, 1)),           # never empty
])
def test_crop_box(height, width, fraction, expected):
    assert ip.crop_box(height, width, fraction) == expected


def test_prepare_image_equals_crop_then_tensorflow_resize_then_normalisation():
    metadata = android_goldens.metadata_variants()["float32_imagenet_crop1"]
    rgb = ip.argb_to_rgb(android_goldens.images()[0]["argb"], 23, 37)
    tensor = ip.prepare_image(rgb, metadata)
    assert tensor.shape == (1, 16, 16, 3) and tensor.dtype == np.float32
    top, left, side = ip.crop_box(23, 37, 1.0)
    expected = ((_tf_resize(rgb[top:top + side, left:left + side], 16, 16)
                 - np.float32(metadata["input"]["mean"])) / np.float32(metadata["input"]["std"]))
    assert np.abs(tensor[0] - expected).max() <= RESIZE_TOLERANCE / 57


def test_quantized_input_rounds_half_to_even_and_clamps():
    values = np.array([-0.5, 0.5, 1.5, 2.5, 254.5, 300.0, -3.0])
    np.testing.assert_array_equal(ip.quantize(values, {"scale": 1.0, "zero_point": 0}, "uint8"),
                                  [0, 0, 2, 2, 254, 255, 0])
    np.testing.assert_array_equal(ip.quantize(values, {"scale": 1.0, "zero_point": -128}, "int8"),
                                  [-128, -128, -126, -126, 126, 127, -128])
    # The rule of export.prepare_input, which tools.convert evaluates the files with.
    from regnet_keras.lite import export
    details = {"dtype": np.uint8, "quantization": (1.0, 0)}
    np.testing.assert_array_equal(export.prepare_input(values.astype(np.float32), details),
                                  ip.quantize(values, {"scale": 1.0, "zero_point": 0}, "uint8"))


def test_uint8_pixels_variant_feeds_the_resized_pixels():
    metadata = android_goldens.metadata_variants()["uint8_pixels"]
    rgb = np.full((30, 50, 3), 77, np.uint8)
    tensor = ip.prepare_image(rgb, metadata)
    assert tensor.dtype == np.uint8 and tensor.shape == (1, 20, 20, 3)
    assert (tensor == 77).all()


def test_alpha_is_ignored_and_channels_are_rgb():
    argb = [np.int32(np.uint32(0x80102030).view(np.int32)), 0x00FF0001]
    np.testing.assert_array_equal(ip.argb_to_rgb(argb, 1, 2), [[[0x10, 0x20, 0x30],
                                                                [0xFF, 0x00, 0x01]]])


def test_softmax_top_k_and_tie_rule():
    metadata = android_goldens.metadata_variants()["float32_crop0875"]
    logits = [1.0, 3.0, 3.0, -1.0, 3.0, 2.0, 0.0, 0.0, 0.0, 0.0]
    top = ip.classify_output(logits, metadata)
    assert [i for i, _, _ in top] == [1, 2, 4, 5, 0]
    probabilities = ip.softmax(logits)
    assert probabilities.sum() == pytest.approx(1.0)
    assert top[0][2] == pytest.approx(np.exp(3.0) / np.exp(logits).sum())
    assert ip.top_k([0.1, 0.2], k=5) == [1, 0]


def test_quantized_output_is_dequantized_before_softmax():
    spec = {"dtype": "int8", "quantization": {"scale": 0.5, "zero_point": -10},
            "activation": "none"}
    np.testing.assert_allclose(ip.dequantize([-10, -8, 0], spec), [0.0, 1.0, 5.0])
    np.testing.assert_allclose(ip.scores([-10, -8, 0], spec), ip.softmax([0.0, 1.0, 5.0]))
    softmax_spec = {"dtype": "uint8", "quantization": {"scale": 1 / 256, "zero_point": 0},
                    "activation": "softmax"}
    np.testing.assert_allclose(ip.scores([0, 128, 255], softmax_spec), [0, 0.5, 255 / 256])


def test_label_count_must_match_output_width():
    metadata = android_goldens.metadata_variants()["float32_crop0875"]
    with pytest.raises(ip.MetadataError, match="10 labels for a model output of width 3"):
        ip.classify_output([0.0, 1.0, 2.0], metadata)


def test_format_constants_are_the_converters():
    from regnet_keras.lite import export
    assert (ip.METADATA_FORMAT, ip.METADATA_VERSION) == (export.METADATA_FORMAT,
                                                         export.METADATA_VERSION)


def test_documented_example_and_every_golden_variant_are_valid():
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "MODEL_METADATA.md")) as f:
        text = f.read()
    example = json.loads(text.split("```json")[1].split("```")[0])
    ip.check_metadata(example)
    for record in android_goldens.metadata_variants().values():
        ip.check_metadata(record)


def test_invalid_metadata_names_the_field():
    base = android_goldens.metadata_variants()["float32_crop0875"]
    cases = android_goldens.invalid_metadata_cases(base)
    assert len(cases) >= 20
    for case in cases:
        with pytest.raises(ip.MetadataError) as error:
            ip.check_metadata(case["metadata"])
        assert error.value.field == case["field"], case["name"]
        assert case["field"] in str(error.value)
    newer = copy.deepcopy(base)
    newer["format_version"] = 7
    with pytest.raises(ip.MetadataError, match="7 is newer than this reader"):
        ip.prepare_image(np.zeros((4, 4, 3), np.uint8), newer)


def test_prepare_image_refuses_non_rgb_uint8_images():
    metadata = android_goldens.metadata_variants()["float32_crop0875"]
    with pytest.raises(ValueError, match="RGB uint8"):
        ip.prepare_image(np.zeros((4, 4), np.uint8), metadata)
    with pytest.raises(ValueError, match="RGB uint8"):
        ip.prepare_image(np.zeros((4, 4, 3), np.float32), metadata)
