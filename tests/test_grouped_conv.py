"""The fast grouped convolution: same function and gradients as the grouped convolution, native
Conv2D layers and kernels, and nothing of it in exported graphs."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf

import regnet_keras
from regnet_keras import AnyNetConfig, RegNet
from regnet_keras.tf_speedups import grouped_conv

TINY = AnyNetConfig(stage_widths=(16, 32), stage_depths=(1, 2), stage_group_widths=(8, 8),
                    stage_strides=(2, 2), stage_bottlenecks=(1.0, 1.0), se_ratio=0.25,
                    stem_width=16)


def per_group_reference(x, kernel, stride, padding):
    """Float64 grouped convolution as one ordinary convolution per group."""
    cin_g, out = kernel.shape[2], kernel.shape[3]
    groups = x.shape[-1] // cin_g
    m = out // groups
    return tf.concat([tf.nn.conv2d(x[..., g * cin_g:(g + 1) * cin_g],
                                   kernel[..., g * m:(g + 1) * m], stride, padding)
                      for g in range(groups)], -1)


def relative_error(value, reference):
    value = tf.cast(value, tf.float64)
    return float(tf.reduce_max(tf.abs(value - reference)) / tf.reduce_max(tf.abs(reference)))


CASES = [  # batch, size, channels, group width, stride, padding
    (4, 16, 48, 8, 1, "SAME"),
    (4, 16, 48, 8, 2, "SAME"),
    (3, 17, 48, 16, 2, "VALID"),
    (2, 9, 24, 24, 1, "SAME"),  # a single group
]


@pytest.mark.parametrize("implementation", ["native", "split_gradient", "auto"])
@pytest.mark.parametrize("batch, size, channels, group_width, stride, padding", CASES)
def test_forward_and_gradients_match_float64(implementation, batch, size, channels, group_width,
                                             stride, padding):
    rng = np.random.default_rng(0)
    x64 = tf.constant(rng.normal(size=(batch, size, size, channels)))
    kernel64 = tf.constant(rng.normal(size=(3, 3, group_width, channels)) * 0.2)
    with tf.GradientTape() as tape:
        tape.watch([x64, kernel64])
        y64 = per_group_reference(x64, kernel64, stride, padding)
        loss64 = tf.reduce_sum(y64 * tf.cos(y64))
    dx64, dkernel64 = tape.gradient(loss64, [x64, kernel64])

    @tf.function
    def step(x, kernel):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = grouped_conv.grouped_conv2d(x, kernel, stride, padding, implementation)
            y64 = tf.cast(y, tf.float64)
            loss = tf.reduce_sum(y64 * tf.cos(y64))
        return y, tape.gradient(loss, [x, kernel])

    y, (dx, dkernel) = step(tf.cast(x64, tf.float32), tf.cast(kernel64, tf.float32))
    assert relative_error(y, y64) <= 1e-5
    assert relative_error(dx, dx64) <= 1e-5
    assert relative_error(dkernel, dkernel64) <= 1e-5


@pytest.mark.parametrize("dtype, tolerance", [("bfloat16", 3e-2), ("float16", 5e-3)])
def test_reduced_precision_gradients(dtype, tolerance):
    rng = np.random.default_rng(1)
    x64 = tf.constant(rng.normal(size=(2, 8, 8, 24)))
    kernel64 = tf.constant(rng.normal(size=(3, 3, 8, 24)) * 0.2)
    with tf.GradientTape() as tape:
        tape.watch(kernel64)
        loss64 = tf.reduce_sum(per_group_reference(x64, kernel64, 2, "SAME") ** 2)
    reference = tape.gradient(loss64, kernel64)
    x, kernel = tf.cast(x64, dtype), tf.cast(kernel64, dtype)
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        y = tf.cast(grouped_conv.grouped_conv2d(x, kernel, 2, "SAME"), tf.float64)
        loss = tf.reduce_sum(y ** 2)
    assert relative_error(tape.gradient(loss, kernel), reference) <= tolerance


def tensorflow_differentiates_grouped_conv(dtype) -> bool:
    """TensorFlow's own gradient of a 4-group convolution, taken as any user would take it."""
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(1, 6, 6, 8)), dtype)
    kernel = tf.constant(rng.normal(size=(3, 3, 2, 8)), dtype)
    try:
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = tf.nn.conv2d(x, kernel, 2, "SAME")
        return all(bool(tf.reduce_all(tf.math.is_finite(tf.cast(g, tf.float32))))
                   for g in tape.gradient(y, [x, kernel]))
    except tf.errors.InvalidArgumentError:  # "no kernel" for this dtype and device
        return False


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_native_gradient_probe_matches_tensorflow(dtype):
    # Which dtypes have a grouped gradient kernel depends on the CPU oneDNN finds (float16's is
    # there on some x86 CPUs and not on others), so the probe is held to TensorFlow's own answer
    # on the machine at hand. Two answers are the same everywhere: oneDNN (TensorFlow's default
    # on x86 Linux) differentiates float32 grouped convolutions; no CPU kernel does float64's.
    available = tensorflow_differentiates_grouped_conv(dtype)
    assert grouped_conv.native_gradient_available(tf.as_dtype(dtype)) == available
    if dtype in ("float32", "float64"):
        assert available == (dtype == "float32")


def test_layers_stay_native_conv2d_with_native_kernels():
    fast = RegNet(TINY, input_shape=(32, 32, 3))
    native = RegNet(TINY, input_shape=(32, 32, 3), grouped_conv_implementation="keras")
    layer = fast.get_layer("stage2_block1_b_conv")
    assert type(layer) is keras.layers.Conv2D and layer.groups == 4
    assert grouped_conv.implementation_of(layer) == "auto"
    assert grouped_conv.implementation_of(native.get_layer("stage2_block1_b_conv")) == "keras"
    assert [w.shape for w in fast.weights] == [w.shape for w in native.weights]
    native.set_weights(fast.get_weights())
    x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(fast.predict(x, verbose=0), native.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="grouped_conv_implementation='fast' is invalid"):
        RegNet(TINY, grouped_conv_implementation="fast")


def test_training_gradients_equal_keras_native_path():
    fast = RegNet(TINY, input_shape=(32, 32, 3), classes=5, classifier_activation=None)
    native = RegNet(TINY, input_shape=(32, 32, 3), classes=5, classifier_activation=None,
                    grouped_conv_implementation="keras")
    native.set_weights(fast.get_weights())
    x = tf.constant(np.random.default_rng(3).uniform(0, 255, (4, 32, 32, 3)), tf.float32)
    labels = tf.constant([0, 1, 2, 3])
    gradients = []
    for model in (fast, native):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                labels, model(x, training=True), from_logits=True))
        gradients.append(tape.gradient(loss, model.trainable_weights))
    for ours, theirs in zip(*gradients):
        scale = max(float(tf.reduce_max(tf.abs(theirs))), 1e-6)
        assert float(tf.reduce_max(tf.abs(ours - theirs))) <= 1e-4 * scale


def test_fit_trains_with_fast_grouped_convolutions():
    model = RegNet(TINY, input_shape=(32, 32, 3), classes=2)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="sparse_categorical_"
                  "crossentropy")
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 255, (64, 32, 32, 3)).astype("float32")
    y = (x[:, :16].mean(axis=(1, 2, 3)) > x[:, 16:].mean(axis=(1, 2, 3))).astype("int32")
    history = model.fit(x, y, batch_size=16, epochs=6, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def tflite_op_counts(model):
    from ai_edge_litert.interpreter import Interpreter
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    return collections.Counter(op["op_name"] for op in interpreter._get_ops_details())


def test_tflite_has_one_conv_2d_per_convolution_and_no_decomposition():
    model = regnet_keras.RegNetY002(input_shape=(64, 64, 3))
    convolutions = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    ops = tflite_op_counts(model)
    assert ops["CONV_2D"] == len(convolutions)
    assert not {"DEPTHWISE_CONV_2D", "SPLIT", "SPLIT_V", "CONCATENATION", "SUM",
                "BATCH_MATMUL", "RESHAPE"} & set(ops)


def test_saved_files_hold_native_layers_and_reload_fast(tmp_path):
    model = RegNet(TINY, input_shape=(32, 32, 3))
    path = str(tmp_path / "tiny.keras")
    model.save(path)
    plain = keras.models.load_model(path)  # no regnet_keras needed to read it
    assert grouped_conv.implementation_of(plain.get_layer("stage2_block1_b_conv")) == "keras"
    restored = regnet_keras.load_model(path)
    assert grouped_conv.implementation_of(restored.get_layer("stage2_block1_b_conv")) == "auto"

    export_dir = str(tmp_path / "saved_model")
    model.export(export_dir, verbose=False)
    graph_ops = set()
    loaded = tf.saved_model.load(export_dir)
    concrete = loaded.signatures["serving_default"]
    for function in [concrete.graph.as_graph_def()] + [
            f for f in concrete.graph.as_graph_def().library.function]:
        nodes = function.node if hasattr(function, "node") else function.node_def
        graph_ops.update(node.op for node in nodes)
    assert "Conv2D" in graph_ops
    assert not {"DepthwiseConv2dNative", "Split", "SplitV", "ConcatV2", "XlaConv",
                "XlaConvV2"} & graph_ops


def _kernel_gradient(model, x, labels, layer_name):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            labels, tf.cast(model(x, training=True), tf.float32), from_logits=True))
    kernel = model.get_layer(layer_name).kernel
    return tf.cast(tape.gradient(loss, kernel), tf.float32)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_is_as_accurate_as_keras_own_path(policy):
    x = np.random.default_rng(5).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = np.array([0, 1] * 4)
    reference = RegNet(TINY, input_shape=(32, 32, 3), classes=2, classifier_activation=None)
    keras.mixed_precision.set_global_policy(policy)
    try:
        models = {implementation: RegNet(TINY, input_shape=(32, 32, 3), classes=2,
                                         classifier_activation=None,
                                         grouped_conv_implementation=implementation)
                  for implementation in ("auto", "keras")}
    finally:
        keras.mixed_precision.set_global_policy("float32")
    layer = "stage2_block1_b_conv"
    expected = _kernel_gradient(reference, x, labels, layer)
    errors = {}
    for implementation, model in models.items():
        model.set_weights(reference.get_weights())
        gradient = _kernel_gradient(model, x, labels, layer)
        assert bool(tf.reduce_all(tf.math.is_finite(gradient)))
        errors[implementation] = float(tf.norm(gradient - expected) / tf.norm(expected))
    # Reduced precision costs accuracy either way; ours must not cost more than Keras' own.
    assert errors["auto"] <= 1.5 * errors["keras"] + 1e-3, errors
