"""TFLite conversion of RegNets, checked on the LiteRT runtime."""

import json

import keras
import numpy as np
import pytest

from regnet_keras import AnyNetConfig, RegNet, export, image_preprocessing

TINY = AnyNetConfig(stage_widths=(16, 32), stage_depths=(1, 2), stage_group_widths=(8, 8),
                    stage_strides=(2, 2), stage_bottlenecks=(1.0, 1.0), se_ratio=0.25,
                    stem_width=16)
SHAPE = (32, 32, 3)


@pytest.fixture(scope="module")
def model():
    # Seeded, so that the calibration and the int8 file are the same on every run.
    keras.utils.set_random_seed(0)
    return RegNet(TINY, input_shape=SHAPE, classes=4)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (24, *SHAPE)).astype("float32")


@pytest.fixture(scope="module")
def converted(model, images):
    return {variant: export.convert(model, variant, representative_images=images,
                                    input_type="uint8" if variant == "int8" else "float32")
            for variant in ("float32", "float16", "dynamic", "int8")}


def test_float32_tflite_reproduces_keras(model, images, converted):
    expected = model.predict(images, verbose=0)
    outputs = export.run(converted["float32"], images)
    assert np.abs(outputs - expected).max() <= 1e-4 * np.abs(expected).max()


def test_every_variant_keeps_one_conv_2d_per_convolution_and_builtin_ops(model, converted):
    convolutions = sum(isinstance(l, keras.layers.Conv2D) for l in model.layers)
    for variant, content in converted.items():
        export.check_converted(model, content, variant)
        assert export.op_counts(content)["CONV_2D"] == convolutions


def test_sizes_shrink_with_bytes_per_weight(model, converted):
    # Exact ratios need real models (tools.benchmark reports them); a tiny model's file is
    # dominated by its graph, so only the order is certain here.
    sizes = {variant: len(content) for variant, content in converted.items()}
    kernels = sum(int(np.prod(layer.kernel.shape)) for layer in model.layers
                  if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)))
    assert sizes["float32"] >= 4 * kernels
    assert sizes["float32"] > sizes["float16"] > sizes["int8"]
    assert sizes["float16"] > sizes["dynamic"]


def test_size_breakdown_accounts_for_every_byte(model, converted):
    layers = [layer for layer in model.layers
              if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    kernels = sum(int(np.prod(layer.kernel.shape)) for layer in layers)
    output_channels = sum(int(layer.kernel.shape[-1]) for layer in layers)
    for variant, content in converted.items():
        parts = export.size_breakdown(content)
        assert parts["total"] == len(content)
        assert parts["other"] >= 0
        assert sum(value for key, value in parts.items() if key != "total") == len(content)
        if variant == "float32":
            # The kernels, plus the input normalisation's 1x1 depthwise kernel of 3.
            assert parts["weights"] == 4 * (kernels + 3)
            assert parts["quantization"] == 0
    int8 = export.size_breakdown(converted["int8"])
    # One byte per weight, and a float32 scale and an int64 zero point per output channel for
    # the weights and again for the biases.
    assert int8["weights"] == kernels + 3
    assert int8["quantization"] >= 2 * 12 * output_channels


def test_int8_with_uint8_input_takes_raw_pixels(model, images, converted):
    runtime = export.interpreter(converted["int8"])
    details = runtime.get_input_details()[0]
    assert details["dtype"] == np.uint8
    scale, zero_point = details["quantization"]
    # Calibrated on 0-255 pixels: one quantization step per pixel value.
    assert scale == pytest.approx(1.0, rel=0.02) and zero_point == 0
    assert export.float_ops(converted["int8"]) == []
    agreement = (export.run(converted["int8"], images).argmax(1)
                 == model.predict(images, verbose=0).argmax(1)).mean()
    assert agreement >= 0.5


def test_metadata_describes_the_file(converted, tmp_path):
    record = export.metadata(converted["int8"], model_name="tiny", variant="int8",
                             labels=["a", "b", "c", "d"], preprocessing="imagenet",
                             crop_fraction=0.875, output_activation="softmax")
    assert record["format"] == "regnet_keras.tflite_metadata" and record["format_version"] == 1
    assert record["input"]["shape"] == [1, 32, 32, 3] and record["input"]["dtype"] == "uint8"
    assert record["input"]["quantization"]["zero_point"] == 0
    assert record["output"] == {"dtype": "float32", "quantization": None,
                                "activation": "softmax"}
    image_preprocessing.check_metadata(record)  # what the Android app will accept
    model_path, metadata_path = export.write(converted["int8"], record,
                                             str(tmp_path / "tiny_int8.tflite"))
    assert json.load(open(metadata_path)) == record
    assert open(model_path, "rb").read() == converted["int8"]
    with pytest.raises(export.ConversionError, match="3 labels for 4 outputs"):
        export.metadata(converted["int8"], model_name="tiny", variant="int8",
                        labels=["a", "b", "c"], preprocessing="imagenet", crop_fraction=1.0,
                        output_activation="softmax")


def test_bad_requests_are_named(model, images):
    not_regnet = keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(4, 3),
                                   keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(export.ConversionError, match="not a regnet_keras RegNet"):
        export.convert(not_regnet, "float32")
    extended = keras.Model(model.input, keras.layers.Dropout(0.5)(model.output))
    with pytest.raises(export.ConversionError, match="layers outside a RegNet graph: Dropout"):
        export.convert(extended, "float32")
    with pytest.raises(export.ConversionError, match="representative dataset is empty"):
        export.convert(model, "int8", representative_images=np.zeros((0, *SHAPE)))
    with pytest.raises(export.ConversionError, match=r"representative images have shape "
                                                     r"\(16, 16, 3\)"):
        export.convert(model, "int8", representative_images=images[:, :16, :16])
    with pytest.raises(export.ConversionError, match="variant='int4' is invalid"):
        export.convert(model, "int4")
    with pytest.raises(export.ConversionError, match="input_type='uint8' needs an integer model"):
        export.convert(model, "float16", input_type="uint8")
