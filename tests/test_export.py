"""TFLite conversion of RegNets, checked on the LiteRT runtime."""

import json

import keras
import numpy as np
import pytest

from regnet_keras import AnyNetConfig, RegNet
from regnet_keras.lite import export, image_preprocessing

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
    return {variant: export.convert(
                model, variant, representative_images=images,
                input_type="uint8" if variant in export.CALIBRATED_VARIANTS else "float32")
            for variant in ("float32", "float16", "dynamic", "int8", "int8_per_tensor")}


def test_float32_tflite_reproduces_keras(model, images, converted):
    expected = model.predict(images, verbose=0)
    outputs = export.run(converted["float32"], images)
    assert np.abs(outputs - expected).max() <= 1e-4 * np.abs(expected).max()


def test_every_variant_keeps_one_conv_2d_per_convolution_and_builtin_ops(model, converted):
    convolutions = sum(isinstance(l, keras.layers.Conv2D) for l in model.layers)
    for variant, content in converted.items():
        export.check_converted(model, content, variant)
        assert export.op_counts(content)["CONV_2D"] == convolutions


def test_every_variant_takes_and_gives_one_image(converted):
    # LiteRT.js checks shapes exactly: a [-1, 32, 32, 3] signature refuses a [1, 32, 32, 3] tensor.
    assert set(converted) == set(export.VARIANTS) - {"qat"}  # qat: test_convert_tools
    for variant, content in converted.items():
        runtime = export.interpreter(content)
        assert list(runtime.get_input_details()[0]["shape_signature"]) == [1, *SHAPE], variant
        assert list(runtime.get_output_details()[0]["shape_signature"]) == [1, 4], variant


def test_sizes_shrink_with_bytes_per_weight(model, converted):
    # Exact ratios need real models (tools.benchmark reports them); a tiny model's file is
    # dominated by its graph, so only the order is certain here.
    sizes = {variant: len(content) for variant, content in converted.items()}
    kernels = sum(int(np.prod(layer.kernel.shape)) for layer in model.layers
                  if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)))
    assert sizes["float32"] >= 4 * kernels
    assert sizes["float32"] > sizes["float16"] > sizes["int8"]
    # The dynamic file's float kernels after PADs (see dynamic_range) are 29% of this tiny
    # model's weights, so it is only certain to be smaller than float32 here (RegNetX002: 1.12
    # bytes per weight against float16's 2).
    assert sizes["float32"] > sizes["dynamic"]


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


@pytest.mark.parametrize("padding", ["symmetric", "same"])
def test_scale_only_normalisation_folds_into_the_stem_exactly(images, padding):
    # keras.applications' x / 255 scales zeros to zeros, so the stem can absorb it and the file
    # loses the pass over the input; the ImageNet mean/std (the fixture's model) cannot fold.
    keras.utils.set_random_seed(1)
    unit = RegNet(TINY, input_shape=SHAPE, classes=4, padding=padding, preprocessing="unit")
    stem_kernel = unit.get_layer("stem_conv").get_weights()[0].copy()
    content = export.convert(unit, "float32")
    ops = export.op_counts(content)
    squeeze_excitations = sum(isinstance(l, keras.layers.Multiply) for l in unit.layers)
    assert "DEPTHWISE_CONV_2D" not in ops and ops["MUL"] == squeeze_excitations
    expected = unit.predict(images, verbose=0)
    assert np.abs(export.run(content, images) - expected).max() <= 1e-4 * np.abs(expected).max()
    np.testing.assert_array_equal(unit.get_layer("stem_conv").get_weights()[0], stem_kernel)
    int8 = export.convert(unit, "int8", representative_images=images)
    agreement = (export.run(int8, images).argmax(1) == expected.argmax(1)).mean()
    assert agreement >= 0.5


def test_imagenet_normalisation_stays_one_depthwise_convolution(converted):
    assert export.op_counts(converted["float32"])["DEPTHWISE_CONV_2D"] == 1


@pytest.mark.parametrize("variant", ["float32", "float16"])
def test_float_files_can_leave_the_imagenet_normalisation_to_the_app(model, images, variant):
    normalization = export.app_normalization(model, variant, "app")
    mean, std = normalization
    np.testing.assert_allclose(mean, [0.485 * 255, 0.456 * 255, 0.406 * 255], rtol=1e-6)
    np.testing.assert_allclose(std, [0.229 * 255, 0.224 * 255, 0.225 * 255], rtol=1e-6)
    content = export.convert(model, variant, normalization="app")
    export.check_converted(model, content, variant)
    assert "DEPTHWISE_CONV_2D" not in export.op_counts(content)
    runtime = export.interpreter(content)
    assert runtime.get_input_details()[0]["dtype"] == np.float32
    expected = model.predict(images, verbose=0)
    tolerance = 1e-4 if variant == "float32" else 1e-2
    outputs = export.run(content, images, normalization)
    assert np.abs(outputs - expected).max() <= tolerance * np.abs(expected).max()
    # Fed raw pixels, as a reader ignoring the metadata would, the file gives other outputs.
    assert np.abs(export.run(content, images) - expected).max() > 10 * tolerance
    record = export.metadata(content, model_name="tiny", variant=variant,
                             labels=["a", "b", "c", "d"], preprocessing="imagenet",
                             crop_fraction=1.0, output_activation="softmax",
                             app_normalization=normalization)
    assert record["input"]["in_model_normalization"] == "none"
    assert record["input"]["mean"] == [123.675, 116.28, 103.53]  # float32's 7 digits
    assert record["input"]["std"] == [58.395, 57.12, 57.375]
    assert export.normalization_of(record) == (record["input"]["mean"], record["input"]["std"])
    image_preprocessing.check_metadata(record)


@pytest.mark.parametrize("variant", ["int8", "int8_per_tensor"])
def test_integer_files_can_take_normalised_quantized_input(model, images, converted, variant):
    # The app normalises and quantizes with the file's input scale and zero point; the file
    # loses its first op, and gives what the file that normalises in its graph gives.
    normalization = export.app_normalization(model, variant, "app")
    content = export.convert(model, variant, representative_images=images, input_type="uint8",
                             normalization="app")
    export.check_converted(model, content, variant)
    ops, in_graph = export.op_counts(content), export.op_counts(converted[variant])
    assert in_graph - ops == {"DEPTHWISE_CONV_2D": 1} and not ops - in_graph
    details = export.interpreter(content).get_input_details()[0]
    assert details["dtype"] == np.uint8
    scale, zero_point = details["quantization"]
    # Calibrated on normalised pixels (about -2.1 to 2.6): about 4.8 / 255 per step.
    assert 0.015 < scale < 0.022 and 100 < zero_point < 130
    record = export.metadata(content, model_name="tiny", variant=variant,
                             labels=["a", "b", "c", "d"], preprocessing="imagenet",
                             crop_fraction=1.0, output_activation="softmax",
                             app_normalization=normalization)
    assert record["input"]["in_model_normalization"] == "none"
    assert record["input"]["quantization"] == {"scale": float(scale),
                                               "zero_point": int(zero_point)}
    # The app's own preprocessing (the Android and web cores' reference) makes the tensor
    # export.prepare_input makes.
    pixels = images[:4].round().astype(np.uint8)
    for image in pixels:
        np.testing.assert_array_equal(image_preprocessing.prepare_image(image, record),
                                      export.prepare_input(image[None].astype(np.float32),
                                                           details, normalization))
    outputs = export.run(content, images, normalization)
    previous = export.run(converted[variant], images)
    assert (outputs.argmax(1) == previous.argmax(1)).mean() >= 0.9
    assert np.abs(outputs - previous).max() <= 0.1 * np.abs(previous).max()


def test_scale_only_normalisation_stays_in_the_file(model, images):
    keras.utils.set_random_seed(1)
    unit = RegNet(TINY, input_shape=SHAPE, classes=4, preprocessing="unit")
    for variant in ("float32", "int8"):
        assert export.app_normalization(unit, variant, "app") is None  # it folds into the stem
    assert export.app_normalization(model, "int8") is None  # the default: in the file
    with pytest.raises(export.ConversionError, match="normalization='phone' is invalid"):
        export.convert(model, "float32", normalization="phone")


def _weight_scale_counts(content):
    """Number of scales of each CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED weight tensor."""
    runtime = export.interpreter(content, xnnpack=False)
    tensors = {t["index"]: t for t in runtime.get_tensor_details()}
    weighted = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    return [len(tensors[op["inputs"][1]]["quantization_parameters"]["scales"])
            for op in runtime._get_ops_details() if op["op_name"] in weighted]


def test_int8_per_tensor_has_one_scale_per_kernel_and_a_smaller_file(model, images, converted):
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    per_channel, per_tensor = converted["int8"], converted["int8_per_tensor"]
    assert max(_weight_scale_counts(per_channel)) > 1
    assert set(_weight_scale_counts(per_tensor)) == {1}
    parts = export.size_breakdown(per_tensor), export.size_breakdown(per_channel)
    assert parts[0]["weights"] == parts[1]["weights"]
    # Per channel, each convolution's kernel and bias carry 12 bytes of scale and zero point
    # per output channel; per tensor, 12 bytes each.
    saved = sum(2 * 12 * (int(layer.kernel.shape[-1]) - 1) for layer in convolutions)
    assert parts[1]["quantization"] - parts[0]["quantization"] >= saved
    assert len(per_tensor) < len(per_channel)
    assert export.float_ops(per_tensor) == []
    agreement = (export.run(per_tensor, images).argmax(1)
                 == model.predict(images, verbose=0).argmax(1)).mean()
    assert agreement >= 0.5


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


def test_interleaved_latency_alternates_blocks_of_every_file(converted, monkeypatch):
    from regnet_keras.lite import latency
    calls, original = [], latency.time_interpreter

    def recording(runtime, runs, warmup):
        calls.append((id(runtime), runs, warmup))
        return original(runtime, runs, warmup)

    monkeypatch.setattr(latency, "time_interpreter", recording)
    files = {name: converted[name] for name in ("float32", "int8")}
    measured = latency.measure_interleaved(files, threads=1, runs=7, warmup=2, blocks=3)
    assert set(measured) == set(files)
    warmups, timed = calls[:2], calls[2:]
    assert [(runs, warmup) for _, runs, warmup in warmups] == [(0, 2), (0, 2)]
    first, second = warmups[0][0], warmups[1][0]
    # Blocks of 3, 2 and 2 runs, the two files in turn, every other block in reverse order.
    assert [(runtime, runs) for runtime, runs, _ in timed] == [
        (first, 3), (second, 3), (second, 2), (first, 2), (first, 2), (second, 2)]
    for timing in measured.values():
        assert timing.runs == 7 and 0 < timing.median_ms <= timing.p90_ms
        assert len(timing.block_medians_ms) == 3
