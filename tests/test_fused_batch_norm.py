"""Fused batch normalization: Keras' BatchNormalization function, moving statistics and gradients,
through TensorFlow's fused kernel, with plain BatchNormalization layers in every saved file."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import regnet_keras
from regnet_keras import AnyNetConfig, RegNet
from regnet_keras.tf_speedups import fused_batch_norm

TINY = AnyNetConfig(stage_widths=(16, 32), stage_depths=(1, 2), stage_group_widths=(8, 8),
                    stage_strides=(2, 2), stage_bottlenecks=(1.0, 1.0), se_ratio=0.25,
                    stem_width=16)


def twin_layers(channels, **kwargs):
    """A Keras BatchNormalization and a fused one with the same random gamma and beta."""
    rng = np.random.default_rng(0)
    layers = []
    for _ in range(2):
        layer = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
        layer.build((None, 8, 8, channels))
        layers.append(layer)
    for weight in ("gamma", "beta"):
        value = rng.normal(1.0 if weight == "gamma" else 0.0, 0.3, channels).astype("float32")
        for layer in layers:
            if getattr(layer, weight) is not None:
                getattr(layer, weight).assign(value)
    assert fused_batch_norm.enable(layers[1]) == 1
    return layers


def training_step(layer, x, upstream):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
    gradients = tape.gradient(loss, [x] + layer.trainable_weights)
    return [y] + gradients + [layer.moving_mean, layer.moving_variance]


def assert_close(ours, theirs, tolerance):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    scale = max(np.max(np.abs(theirs)), 1e-6)
    assert np.max(np.abs(ours - theirs)) <= tolerance * scale


@pytest.mark.parametrize("center, scale", [(True, True), (False, False)])
def test_training_matches_keras_outputs_gradients_and_moving_statistics(center, scale):
    keras_layer, fused_layer = twin_layers(16, center=center, scale=scale)
    rng = np.random.default_rng(1)
    for step in range(3):  # the moving statistics accumulate over steps
        x = tf.constant(rng.normal(2.0, 3.0, (4, 8, 8, 16)).astype("float32"))
        upstream = tf.constant(rng.normal(size=(4, 8, 8, 16)).astype("float32"))
        for ours, theirs in zip(training_step(fused_layer, x, upstream),
                                training_step(keras_layer, x, upstream)):
            assert_close(ours, theirs, 1e-5)
    # Inference takes Keras' own path, with moving statistics equal within float32 rounding.
    assert_close(fused_layer(x, training=False), keras_layer(x, training=False), 1e-5)


def test_mixed_precision_returns_the_compute_dtype_like_keras():
    keras_layer, fused_layer = twin_layers(8, dtype="mixed_float16")
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 8, 8, 8)), tf.float16)
    ours, theirs = fused_layer(x, training=True), keras_layer(x, training=True)
    assert ours.dtype == theirs.dtype == tf.float16
    assert_close(ours, theirs, 2e-3)
    assert_close(fused_layer.moving_variance, keras_layer.moving_variance, 1e-5)


def test_frozen_layers_and_masks_take_keras_path():
    keras_layer, fused_layer = twin_layers(8)
    fused_layer.trainable = keras_layer.trainable = False
    x = tf.constant(np.random.default_rng(3).normal(size=(2, 8, 8, 8)), tf.float32)
    np.testing.assert_array_equal(fused_layer(x, training=True), keras_layer(x, training=True))
    np.testing.assert_array_equal(fused_layer.moving_mean, np.zeros(8))


def test_models_train_fused_and_save_plain_layers(tmp_path):
    model = RegNet(TINY, input_shape=(32, 32, 3), classes=3)
    plain = RegNet(TINY, input_shape=(32, 32, 3), classes=3, fused_batch_norm_training=False)
    batch_norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert batch_norms and all(fused_batch_norm.is_fused(l) for l in batch_norms)
    assert not any(fused_batch_norm.is_fused(l) for l in plain.layers)
    plain.set_weights(model.get_weights())
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 3, 8)
    for m in (model, plain):
        m.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy")
        m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for ours, theirs in zip(model.weights, plain.weights):
        assert ours.path == theirs.path
        assert_close(ours.numpy(), theirs.numpy(), 1e-4)

    path = str(tmp_path / "tiny.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # plain Keras layers, readable without regnet_keras
    assert not any(fused_batch_norm.is_fused(l) for l in loaded.layers)
    restored = regnet_keras.load_model(path)
    assert all(fused_batch_norm.is_fused(restored.get_layer(l.name)) for l in batch_norms)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)
