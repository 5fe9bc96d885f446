"""Trainable-at-speed grouped convolutions for TensorFlow, with native Conv2D layers and kernels.

Keras 3 and tf-keras both compile every grouped Conv2D with XLA, because TensorFlow's default CPU
kernels have no grouped gradient; XLA's CPU grouped convolution is ~1000x slower than TensorFlow's
own (a RegNetX002 trains at 2 img/s). Yet TensorFlow's oneDNN CPU kernels (on by default on x86
Linux) and cuDNN compute grouped convolutions and their gradients directly, faster than any
decomposition. Forward+backward milliseconds on 2 cores, float32, batch 32
(`python -m benchmarks.grouped_conv_formulations` reproduces them for any shape):

    size, channels, group width, stride            16,368,8,1  64,24,8,1  32,56,8,2
    oneDNN on (TensorFlow's default on x86 Linux):
      TF grouped op with its native gradient              16          15         5.5
      split + conv + concat                               32          21        11
      depthwise-with-multiplier + reduce                  97          70        15
      block-diagonal dense kernel                        192          24         8.3
      im2col + einsum                                    201         196        32
      XLA grouped op (Keras' path)                    20,781
    oneDNN off (TF_ENABLE_ONEDNN_OPTS=0: no native grouped gradient):
      TF grouped op, gradient split by group              71          86        18
      split + conv + concat                               62          87        15
      depthwise-with-multiplier + reduce                 133         115        18
      block-diagonal dense kernel                        239          65        14
      im2col + einsum                                    356         370        42

So the rule is simple: always run TensorFlow's grouped Conv2D op for the forward pass (what
SavedModel and TFLite see: one CONV_2D, no decomposition), and take its gradient from TensorFlow
where TensorFlow has one for the dtype and device (GPU; CPU with oneDNN in float32 and bfloat16,
which a tiny probe checks once per process). Elsewhere (CPU float16, oneDNN disabled) take it
group by group from ordinary convolution gradients, the fastest of the decompositions that keep
the forward native when oneDNN is off (1.1-1.4x the best of all of them).

The speed-up is applied to the layer instances (`enable(model)`), which stay plain Keras Conv2D
layers: saved files hold native layers and kernels, load without regnet_keras, and tfmot sees a
Conv2D. A model restored from a file trains through Keras' path again until `enable` is called
(`regnet_keras.load_model` does both, see saving.py).
"""

from __future__ import annotations

import functools
import types

from regnet_keras import keras_backend

IMPLEMENTATIONS = ("auto", "native", "split_gradient", "keras")


def grouped_conv2d(inputs, kernel, strides, padding: str, implementation: str = "auto"):
    """TensorFlow's grouped 2D convolution, channels last, differentiable on any device.

    `kernel` is a Keras Conv2D kernel (kh, kw, in_channels / groups, out_channels). `padding` is
    "same" or "valid". `implementation`: "native" takes TensorFlow's grouped gradient,
    "split_gradient" one ordinary convolution gradient per group, "auto" the first where
    TensorFlow has it for the dtype and device, else the second.
    """
    import tensorflow as tf
    padding = padding.upper()
    strides = _pair(strides)
    if implementation == "auto":
        implementation = ("native" if native_gradient_available(inputs.dtype)
                          else "split_gradient")
    if implementation == "native":
        return tf.nn.conv2d(inputs, kernel, strides, padding)
    if implementation == "split_gradient":
        # A tensor, not the variable: custom gradients differentiate tensors, and under mixed
        # precision the conversion is the cast to the compute dtype.
        return _conv2d_with_split_gradient(inputs, tf.convert_to_tensor(kernel, inputs.dtype),
                                           strides, padding)
    raise ValueError(f"implementation={implementation!r} is invalid: choose one of "
                     f"{IMPLEMENTATIONS[:3]}.")


def _pair(strides):
    return (strides, strides) if isinstance(strides, int) else tuple(strides)


@functools.lru_cache(maxsize=None)
def _probe_native_gradient(dtype_name: str, device_type: str) -> bool:
    import tensorflow as tf
    try:
        # Calls the two ops TensorFlow's Conv2D gradient is made of, on a 2-group convolution.
        # init_scope runs them eagerly even when first asked while a tf.function is traced.
        with tf.init_scope(), tf.device(f"/{device_type}:0"):
            x = tf.ones((1, 4, 4, 4), dtype_name)
            kernel = tf.ones((3, 3, 2, 4), dtype_name)
            dy = tf.ones((1, 2, 2, 4), dtype_name)
            strides, padding = (1, 2, 2, 1), "SAME"
            dx = tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=kernel,
                                                out_backprop=dy, strides=strides, padding=padding)
            dkernel = tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(kernel),
                                                      out_backprop=dy, strides=strides,
                                                      padding=padding)
            return bool(tf.reduce_all(tf.math.is_finite(tf.cast(dx, tf.float32))) and
                        tf.reduce_all(tf.math.is_finite(tf.cast(dkernel, tf.float32))))
    except (tf.errors.OpError, ValueError, TypeError, NotImplementedError):
        return False


def native_gradient_available(dtype) -> bool:
    """Whether TensorFlow differentiates its grouped Conv2D op where this process computes."""
    import tensorflow as tf
    device_type = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    return _probe_native_gradient(tf.as_dtype(dtype).name, device_type)


def _conv2d_with_split_gradient(inputs, kernel, strides, padding):
    import tensorflow as tf

    @tf.custom_gradient
    def convolution(x, w):
        y = tf.nn.conv2d(x, w, strides, padding)

        def gradient(dy):
            # Each group's gradient is an ordinary convolution's, which every TF kernel has.
            groups = x.shape[-1] // w.shape[2]
            dx, dw = [], []
            for x_g, w_g, dy_g in zip(tf.split(x, groups, -1), tf.split(w, groups, -1),
                                      tf.split(dy, groups, -1)):
                dx.append(tf.raw_ops.Conv2DBackpropInput(
                    input_sizes=tf.shape(x_g), filter=w_g, out_backprop=dy_g,
                    strides=(1, *strides, 1), padding=padding))
                dw.append(tf.raw_ops.Conv2DBackpropFilter(
                    input=x_g, filter_sizes=tf.shape(w_g), out_backprop=dy_g,
                    strides=(1, *strides, 1), padding=padding))
            return tf.concat(dx, -1), tf.concat(dw, -1)

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
    models, built here or loaded from a file, and on layers inside wrappers. On the JAX and
    PyTorch backends it changes nothing and returns 0.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation={implementation!r} is invalid: choose one of "
                         f"{IMPLEMENTATIONS}.")
    if not keras_backend.is_tensorflow_backend():
        # JAX and PyTorch run grouped convolutions through their own kernels.
        return 0
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
