import re
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import regnet_keras
from regnet_keras import AnyNetConfig, RegNet, RegNetConfig, layer_names

TINY = AnyNetConfig(stage_widths=(16, 32), stage_depths=(1, 2), stage_group_widths=(8, 8),
                    stage_strides=(2, 2), stage_bottlenecks=(1.0, 1.0), se_ratio=0.25,
                    stem_width=16)
KERAS_LAYER_TYPES = {"InputLayer", "Rescaling", "ZeroPadding2D", "Conv2D", "BatchNormalization",
                     "ReLU", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Multiply", "Add",
                     "Dense", "Activation"}
NAME_PATTERN = re.compile(
    r"^(input_layer(_\d+)?|preprocessing|stem_(pad|conv|bn|relu)|head_pool|logits|predictions|"
    r"avg_pool|max_pool|stage\d+_block\d+_(" + "|".join(layer_names.BLOCK_PARTS) + "))$")


def images(batch=2, size=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def test_graph_is_made_of_keras_layers_with_documented_names():
    model = regnet_keras.RegNetY002(input_shape=(64, 64, 3))
    for layer in model.layers:
        assert type(layer).__name__ in KERAS_LAYER_TYPES, layer
        assert type(layer).__module__.startswith("keras."), layer
        assert NAME_PATTERN.match(layer.name), layer.name
    # Y block: SE squeezes to a quarter of the block's INPUT width (24 -> 6, 56 -> 14, 152 -> 38).
    assert model.get_layer("stage2_block1_se_reduce").filters == 6
    assert model.get_layer("stage3_block1_se_reduce").filters == 14
    assert model.get_layer("stage3_block2_se_reduce").filters == 38
    assert model.get_layer("stage4_block1_b_conv").groups == 368 // 8
    bn = model.get_layer("stage1_block1_a_bn")
    assert (bn.momentum, bn.epsilon) == (0.9, 1e-5)


def test_classifier_activation_is_honoured():
    x = images()
    probabilities = regnet_keras.RegNetX002(input_shape=(64, 64, 3))
    np.testing.assert_allclose(probabilities.predict(x, verbose=0).sum(axis=1), 1.0, rtol=1e-5)
    logits_model = keras.Model(probabilities.input, probabilities.get_layer("logits").output)
    expected = tf.nn.softmax(logits_model.predict(x, verbose=0)).numpy()
    np.testing.assert_allclose(probabilities.predict(x, verbose=0), expected, atol=1e-6)

    logits = regnet_keras.RegNetX002(input_shape=(64, 64, 3), classifier_activation=None,
                                     classes=7)
    assert logits.layers[-1].name == "logits" and logits.output_shape == (None, 7)
    sigmoid = RegNet(TINY, input_shape=(64, 64, 3), classifier_activation="sigmoid", classes=3)
    assert sigmoid.get_layer("predictions").get_config()["activation"] == "sigmoid"


def test_feature_extraction_and_dynamic_input_sizes():
    features = regnet_keras.RegNetX002(include_top=False)
    assert features.output_shape == (None, None, None, 368)
    assert features.predict(images(1, 32), verbose=0).shape == (1, 1, 1, 368)
    assert features.predict(images(1, 97), verbose=0).shape == (1, 4, 4, 368)
    pooled = regnet_keras.RegNetX002(include_top=False, pooling="max", input_shape=(40, 48, 3))
    assert pooled.output_shape == (None, 368)
    assert regnet_keras.RegNetX002(include_top=False, pooling="avg").output_shape == (None, 368)


def test_input_tensor_is_used():
    inputs = keras.Input((64, 64, 3))
    model = regnet_keras.RegNetY002(input_tensor=inputs, classes=5)
    assert model.inputs[0] is inputs
    assert model.output_shape == (None, 5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_shape=(16, 16, 3)), r"input_shape=\(16, 16, 3\) is invalid.*>= 32"),
    (dict(input_shape=(64, 64)), "input_shape=.*channels last"),
    (dict(pooling="avg"), "only with include_top=False"),
    (dict(include_top=False, pooling="mean"), "pooling='mean' is invalid"),
    (dict(classes=0), "classes=0 is invalid"),
    (dict(weights="imagenet", classes=10), "classes=10 is invalid with weights='imagenet'"),
    (dict(padding="valid"), "padding='valid' is invalid"),
    (dict(preprocessing="caffe"), "preprocessing='caffe' is invalid"),
    (dict(weights="/nonexistent/file.h5"), "neither None, 'imagenet' nor an existing file"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        regnet_keras.RegNetX002(**kwargs)


def test_imagenet_weights_need_a_zoo_model():
    with pytest.raises(ValueError, match="only for the zoo models"):
        RegNet(TINY, weights="imagenet")
    with pytest.raises(ValueError, match="RegNetConfig or AnyNetConfig"):
        RegNet("RegNetX002")


def test_symmetric_padding_is_pytorch_geometry():
    model = RegNet(TINY, input_shape=(64, 64, 3), include_preprocessing=False)
    x = images(2, 64)
    stem = keras.Model(model.input, model.get_layer("stem_conv").output)
    kernel = model.get_layer("stem_conv").kernel.numpy()
    # PyTorch's Conv2d(padding=1, stride=2): one zero row/column on every side.
    expected = tf.nn.conv2d(x, kernel, strides=2, padding=[[0, 0], [1, 1], [1, 1], [0, 0]])
    np.testing.assert_allclose(stem.predict(x, verbose=0), expected.numpy(), rtol=1e-5,
                               atol=1e-3)


def test_geometries_differ_on_even_inputs_only():
    symmetric = RegNet(TINY, input_shape=(None, None, 3), include_top=False)
    same = RegNet(TINY, input_shape=(None, None, 3), include_top=False, padding="same")
    assert "stem_pad" in [l.name for l in symmetric.layers]
    assert "stem_pad" not in [l.name for l in same.layers]
    same.set_weights(symmetric.get_weights())
    odd, even = images(1, 65), images(1, 64)
    np.testing.assert_allclose(same.predict(odd, verbose=0), symmetric.predict(odd, verbose=0),
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(same.predict(even, verbose=0), symmetric.predict(even, verbose=0),
                           atol=1e-3)


def test_initialisation_follows_the_reference():
    model = RegNet(RegNetConfig(w0=64, wa=30.0, wm=2.0, depth=6, group_width=16),
                   input_shape=(64, 64, 3), zero_init_last_bn=True)
    kernel = model.get_layer("stage2_block1_a_conv").kernel.numpy()
    fan_out = kernel.shape[0] * kernel.shape[1] * kernel.shape[-1]
    assert kernel.std() == pytest.approx(np.sqrt(2.0 / fan_out), rel=0.05)
    assert model.get_layer("logits").kernel.numpy().std() == pytest.approx(0.01, rel=0.05)
    assert not model.get_layer("logits").bias.numpy().any()
    assert not model.get_layer("stage1_block1_c_bn").gamma.numpy().any()
    assert model.get_layer("stage1_block1_b_bn").gamma.numpy().all()


def test_preprocessing_modes():
    x = images(1, 32)
    for mode in ("imagenet", "unit"):
        model = RegNet(TINY, input_shape=(32, 32, 3), preprocessing=mode)
        layer = keras.Model(model.input, model.get_layer("preprocessing").output)
        np.testing.assert_allclose(layer.predict(x, verbose=0),
                                   regnet_keras.preprocess_input(x, mode), rtol=1e-6, atol=1e-6)
    expected = (x / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(regnet_keras.preprocess_input(x), expected, rtol=1e-5, atol=1e-5)


def test_keras_save_and_load_reproduce_outputs_exactly(tmp_path):
    model = regnet_keras.RegNetY002(input_shape=(64, 64, 3))
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    for saved, loaded in zip(model.get_weights(), restored.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, saved)
    x = images()
    # The same weights and graph; oneDNN may pick differently blocked kernels for the two
    # models, which changes float32 sums in the last bit.
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-9)
    assert regnet_keras.design_of_model(restored) == regnet_keras.design_of_model(model)


def test_mixed_precision_keeps_float32_probabilities():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = RegNet(TINY, input_shape=(32, 32, 3), classes=4)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    out = model.predict(images(2, 32), verbose=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-3)


def test_largest_regnety_builds_quickly():
    start = time.perf_counter()
    model = regnet_keras.RegNetY160()
    assert time.perf_counter() - start < 30
    assert model.output_shape == (None, 1000)
