"""Inference helpers: the batch-norm-folded copy computes what the model and PyTorch's reference
compute and stays a plain Keras model; the compiled predict loop returns what model.predict
returns."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import regnet_keras
from regnet_keras import AnyNetConfig, RegNet, inference
from tests.conftest import run_python

TINY = AnyNetConfig(stage_widths=(16, 32), stage_depths=(1, 2), stage_group_widths=(8, 8),
                    stage_strides=(2, 2), stage_bottlenecks=(1.0, 1.0), se_ratio=0.25,
                    stem_width=16)


def randomize_batch_norm(model, seed=0):
    """Random gamma, beta and moving statistics, so that a mix-up of any two shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for variable in layer.weights:
                positive = variable is layer.moving_variance or variable is layer.gamma
                variable.assign(rng.uniform(0.5, 1.5, variable.shape) if positive
                                else rng.normal(0, 0.3, variable.shape))
    return model


def pixels(size, count, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


def relative_difference(outputs, reference):
    return float(np.max(np.abs(outputs - reference)) / np.max(np.abs(reference)))


@pytest.mark.parametrize("se_ratio", [0.0, 0.25])
def test_folded_model_computes_the_models_outputs(se_ratio):
    config = AnyNetConfig(**{**TINY.__dict__, "se_ratio": se_ratio})
    model = randomize_batch_norm(RegNet(config, classes=10, input_shape=(32, 32, 3),
                                        classifier_activation=None))
    folded = inference.fold_batch_norm(model)
    images = pixels(32, 5)
    expected = model(images, training=False).numpy()
    assert relative_difference(folded(images, training=False).numpy(), expected) < 1e-5
    assert [layer.name for layer in folded.layers] == [
        layer.name for layer in model.layers
        if not isinstance(layer, keras.layers.BatchNormalization)]
    assert all(layer.bias is not None for layer in folded.layers
               if isinstance(layer, keras.layers.Conv2D))
    # The source model is left as it was.
    assert model.get_layer("stem_conv").bias is None


def test_folded_model_matches_timm_forward_pass(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("timm")
    from tests import pytorch_helpers as helpers
    reference = helpers.reference_model("timm", "regnety_002")
    images = helpers.images(64)
    expected = helpers.torch_logits(reference, images)
    state = {key: value.detach().clone() for key, value in reference.state_dict().items()}
    path = str(tmp_path / "regnety_002.pth")
    torch.save(state, path)
    model = regnet_keras.from_pytorch(path, input_shape=(64, 64, 3), classifier_activation=None)
    assert relative_difference(inference.predict(model, images), expected) <= 2e-4
    outputs = inference.predict(inference.fold_batch_norm(model), images)
    assert relative_difference(outputs, expected) <= 2e-4


def test_folds_a_convolution_bias_and_partial_batch_norms_and_keeps_shared_outputs():
    inputs = keras.Input((12, 12, 3))
    with_bias = keras.layers.Conv2D(6, 3, use_bias=True, name="with_bias")(inputs)
    x = keras.layers.BatchNormalization(scale=False, name="no_scale")(with_bias)
    x = keras.layers.ReLU()(x)
    shared = keras.layers.Conv2D(6, 1, use_bias=False, name="shared")(x)
    y = keras.layers.BatchNormalization(center=False, name="kept")(shared)
    outputs = keras.layers.Add()([y, shared])  # the convolution's output is also used unscaled
    model = randomize_batch_norm(keras.Model(inputs, outputs))
    model.get_layer("with_bias").bias.assign(np.linspace(-1, 1, 6))
    folded = inference.fold_batch_norm(model)
    images = pixels(12, 3)
    expected = model(images, training=False).numpy()
    assert relative_difference(folded(images).numpy(), expected) < 1e-5
    assert [layer.name for layer in folded.layers
            if isinstance(layer, keras.layers.BatchNormalization)] == ["kept"]


def test_folded_model_saves_and_loads_as_plain_keras(tmp_path):
    model = randomize_batch_norm(RegNet(TINY, classes=10, input_shape=(32, 32, 3)))
    folded = inference.fold_batch_norm(model)
    path = str(tmp_path / "folded.keras")
    folded.save(path)
    restored = keras.models.load_model(path)
    images = pixels(32, 2)
    np.testing.assert_allclose(restored.predict(images, verbose=0), folded(images).numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("count,batch_size", [(7, 3), (4, 4), (2, 8)])
def test_predict_returns_what_model_predict_returns(count, batch_size):
    model = randomize_batch_norm(RegNet(TINY, classes=10, input_shape=(32, 32, 3)))
    images = pixels(32, count)
    outputs = inference.predict(model, images, batch_size=batch_size)
    assert outputs.shape == (count, 10)
    np.testing.assert_allclose(outputs, model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


def test_predict_folds_batch_norm_inside_its_function_and_scales_kernels_late():
    model = randomize_batch_norm(RegNet(TINY, classes=10, input_shape=(32, 32, 3),
                                        classifier_activation=None))
    images = pixels(32, 4)
    expected = model(images, training=False).numpy()
    assert relative_difference(inference.predict(model, images), expected) < 1e-5
    np.testing.assert_allclose(inference.predict(model, images, fold_batch_norm=False), expected,
                               rtol=1e-5, atol=1e-5)

    def graph(fold):
        function = inference._compiled_call(model, fold)
        return function.get_concrete_function(tf.TensorSpec((4, 32, 32, 3))).graph

    def normalization_ops(fold):
        return [op.name for op in graph(fold).get_operations() if "_bn" in op.name]
    assert normalization_ops(False) and not normalization_ops(True)
    kernels = [op.inputs[1].op for op in graph(True).get_operations() if op.type == "Conv2D"]
    folded = [kernel for kernel in kernels if kernel.type == "Mul"]
    # Every convolution is followed by a batch norm here except the two SE convolutions.
    assert len(folded) == len(kernels) - 2 * sum(TINY.stage_depths)
    # Each folded kernel waits for its convolution's input, so they are not all alive at once.
    assert all(kernel.control_inputs for kernel in folded)


def test_predict_returns_every_output_of_a_multi_output_model():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(3)(inputs)])
    first, second = inference.predict(model, np.ones((5, 4), "float32"), batch_size=2)
    assert first.shape == (5, 2) and second.shape == (5, 3)


def test_bad_input_is_refused_with_the_way_out():
    model = RegNet(TINY, classes=10, input_shape=(32, 32, 3))
    with pytest.raises(inference.InferenceError, match="batch_size=0 is invalid"):
        inference.predict(model, pixels(32, 2), batch_size=0)
    with pytest.raises(inference.InferenceError, match="hold no image"):
        inference.predict(model, np.zeros((0, 32, 32, 3), "float32"))
    sequential = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    with pytest.raises(inference.InferenceError, match="functional model"):
        inference.fold_batch_norm(sequential)


WITHOUT_ONEDNN = """
import numpy as np, tensorflow, keras
import regnet_keras
from regnet_keras import inference
model = regnet_keras.RegNetY002(classes=10, input_shape=(32, 32, 3), classifier_activation=None)
folded = inference.fold_batch_norm(model)
images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
difference = np.abs(inference.predict(folded, images) - model.predict(images, verbose=0)).max()
kept = [layer.name for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization)]
assert difference < 1e-4 and kept and all(name.endswith("b_bn") for name in kept), (difference, kept)
difference = np.abs(inference.predict(model, images) - model.predict(images, verbose=0)).max()
assert difference < 1e-4, difference
"""


def test_grouped_convolutions_keep_their_batch_norm_without_onednn():
    # TensorFlow's fused Conv2D+BiasAdd+ReLU refuses groups unless oneDNN runs it.
    run_python(["-c", WITHOUT_ONEDNN], extra_env={"TF_ENABLE_ONEDNN_OPTS": "0"})
