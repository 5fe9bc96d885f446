"""Trainable-at-speed grouped convolutions for TensorFlow, with native Conv2D layers and kernels.

Keras 3 and tf-keras both compile every grouped Conv2D with XLA, because TensorFlow's default CPU
kernels have no grouped gradient; XLA's CPU grouped convolution is ~1000x slower than TensorFlow's
own (a RegNetX002 trains at 2 img/s). Yet TensorFlow's oneDNN CPU kernels (on by default on x86
Linux) and cuDNN compute grouped convolutions and their gradients directly, and far faster than any
decomposition. Measured on 2 cores (B32, 16x16, 368 channels, group width 8, forward+backward):

    XLA (Keras' path)                         14,865 ms
    TF grouped Conv2D op, oneDNN                  15 ms
    forward native + depthwise gradients          42 ms
    depthwise-with-multiplier + reduce            98 ms
    block-diagonal dense kernel                  190 ms
    im2col + einsum                              216 ms (277 ms under XLA)

(`python -m benchmarks.grouped_conv_formulations` reproduces the table for any shape.)

So the rule is simple: always run TensorFlow's grouped Conv2D op directly (the forward of every
implementation, and what SavedModel and TFLite see: one CONV_2D, no decomposition), and take its
gradient from TensorFlow where TensorFlow has one for the device and dtype (GPU; CPU with oneDNN in
float32 and bfloat16, which a tiny probe checks once per process), else from the depthwise
formulation's backprop kernels (CPU float16, or oneDNN disabled).

The speed-up is applied to the layer instances (`enable(model)`), which stay plain Keras Conv2D
layers: saved files hold native layers and kernels, load without regnet_keras, and tfmot sees a
Conv2D. A model restored from a file trains through Keras' path again until `enable` is called.
"""

from __future__ import annotations

import functools
import types

IMPLEMENTATIONS = ("auto", "native", "depthwise_gradient", "keras")


def grouped_conv2d(inputs, kernel, strides, padding: str, implementation: str = "auto"):
    """TensorFlow's grouped 2D convolution, channels last, differentiable on any device.

    `kernel` is a Keras Conv2D kernel (kh, kw, in_channels / groups, out_channels). `padding` is
    "same" or "valid". `implementation`: "native" takes TensorFlow's gradient, "depthwise_gradient"
    the depthwise formulation's, "auto" the first where TensorFlow has one.
    """
    import tensorflow as tf
    padding = padding.upper()
    strides = _pair(strides)
    if implementation == "auto":
        implementation = ("native" if native_gradient_available(inputs.dtype)
                          else "depthwise_gradient")
    if implementation == "native":
        return tf.nn.conv2d(inputs, kernel, strides, padding)
    if implementation == "depthwise_gradient":
        return _conv2d_with_depthwise_gradient(inputs, kernel, strides, padding)
    raise ValueError(f"implementation={implementation!r} is invalid: choose one of "
                     f"{IMPLEMENTATIONS[:3]}.")


def _pair(strides):
    return (strides, strides) if isinstance(strides, int) else tuple(strides)


@functools.lru_cache(maxsize=None)
def _probe_native_gradient(dtype_name: str, device_type: str) -> bool:
    import tensorflow as tf
    try:
        with tf.device(f"/{device_type}:0"):
            x = tf.ones((1, 4, 4, 4), dtype_name)
            kernel = tf.ones((3, 3, 2, 4), dtype_name)
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                y = tf.nn.conv2d(x, kernel, 2, "SAME")
            gradients = tape.gradient(y, [x, kernel])
            return all(g is not None for g in gradients) and bool(
                tf.reduce_all(tf.math.is_finite(tf.cast(gradients[1], tf.float32))))
    except (tf.errors.OpError, ValueError, TypeError, NotImplementedError):
        return False


def native_gradient_available(dtype) -> bool:
    """Whether TensorFlow differentiates its grouped Conv2D op where this process computes."""
    import tensorflow as tf
    device_type = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    return _probe_native_gradient(tf.as_dtype(dtype).name, device_type)


def _depthwise_layout(kernel, groups):
    """Keras grouped kernel (kh, kw, cin_g, groups * m) -> depthwise kernel (kh, kw, C, m).

    Input channel g * cin_g + i of group g multiplies into that group's m outputs; the grouped
    convolution is the depthwise convolution summed over the cin_g channels of each group.
    """
    import tensorflow as tf
    kh, kw, cin_g, out_channels = kernel.shape
    m = out_channels // groups
    grouped = tf.reshape(kernel, (kh, kw, cin_g, groups, m))
    return tf.reshape(tf.transpose(grouped, (0, 1, 3, 2, 4)), (kh, kw, groups * cin_g, m))


def _grouped_layout(depthwise_kernel, cin_g):
    import tensorflow as tf
    kh, kw, channels, m = depthwise_kernel.shape
    groups = channels // cin_g
    split = tf.reshape(depthwise_kernel, (kh, kw, groups, cin_g, m))
    return tf.reshape(tf.transpose(split, (0, 1, 3, 2, 4)), (kh, kw, cin_g, groups * m))


def _conv2d_with_depthwise_gradient(inputs, kernel, strides, padding):
    import tensorflow as tf

    @tf.custom_gradient
    def convolution(x, w):
        y = tf.nn.conv2d(x, w, strides, padding)

        def gradient(dy):
            cin_g, out_channels = w.shape[2], w.shape[3]
            groups = x.shape[-1] // cin_g
            m = out_channels // groups
            # The depthwise output channel (g * cin_g + i) * m + j feeds output g * m + j.
            shape = tf.shape(dy)
            grouped = tf.reshape(dy, (shape[0], shape[1], shape[2], groups, 1, m))
            tiled = tf.broadcast_to(grouped, (shape[0], shape[1], shape[2], groups, cin_g, m))
            dy_depthwise = tf.reshape(tiled, (shape[0], shape[1], shape[2], groups * cin_g * m))
            depthwise_kernel = _depthwise_layout(w, groups)
            full_strides = (1, strides[0], strides[1], 1)
            dx = tf.nn.depthwise_conv2d_backprop_input(
                tf.shape(x), depthwise_kernel, dy_depthwise, full_strides, padding)
            dw = tf.nn.depthwise_conv2d_backprop_filter(
                x, tf.shape(depthwise_kernel), dy_depthwise, full_strides, padding)
            return dx, _grouped_layout(dw, cin_g)

        return y, gradient

    return convolution(inputs, kernel)


def _convolution_op(implementation, layer, inputs, kernel):
    return grouped_conv2d(inputs, kernel, layer.strides, layer.padding, implementation)


def _is_grouped_conv2d(layer) -> bool:
    return (type(layer).__name__ == "Conv2D" and getattr(layer, "groups", 1) > 1
            and tuple(layer.dilation_rate) == (1, 1) and layer.data_format == "channels_last")


def _sublayers(layer):
    """The layer and every layer inside it (models, tfmot's QuantizeWrapper...)."""
    yield layer
    inner = getattr(layer, "layer", None)  # wrappers
    if inner is not None:
        yield from _sublayers(inner)
    for child in getattr(layer, "layers", ()) or ():
        if child is not layer:
            yield from _sublayers(child)


def enable(model, implementation: str = "auto") -> int:
    """Routes every grouped Conv2D of `model` through `grouped_conv2d`; returns how many.

    `implementation="keras"` restores Keras' own (XLA-compiled) path. Works on Keras 3 and tf-keras
    models, built here or loaded from a file, and on layers inside wrappers.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation={implementation!r} is invalid: choose one of "
                         f"{IMPLEMENTATIONS}.")
    count = 0
    for layer in _sublayers(model):
        if not _is_grouped_conv2d(layer):
            continue
        count += 1
        # Keras 3 calls layer.convolution_op; tf-keras calls layer._jit_compiled_convolution_op
        # for grouped convolutions. An instance attribute shadows the class's method.
        legacy = type(layer).__module__.startswith("tf_keras")
        attribute = "_jit_compiled_convolution_op" if legacy else "convolution_op"
        if implementation == "keras":
            layer.__dict__.pop(attribute, None)
            continue
        object.__setattr__(layer, attribute, types.MethodType(
            functools.partial(_convolution_op, implementation), layer))
    return count


def implementation_of(layer) -> str:
    """The implementation `enable` gave this grouped Conv2D layer, or "keras"."""
    for attribute in ("convolution_op", "_jit_compiled_convolution_op"):
        method = layer.__dict__.get(attribute)
        if method is not None:
            return method.__func__.args[0]
    return "keras"


def load_model(path, implementation: str = "auto", **kwargs):
    """`keras.models.load_model` (or tf-keras') plus `enable`: a restored model trains fast again."""
    from regnet_keras.keras_backend import get_keras
    model = get_keras().models.load_model(path, **kwargs)
    enable(model, implementation)
    return model
