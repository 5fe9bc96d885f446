"""Keras 3 BatchNormalization trained through TensorFlow's fused batch-norm kernels.

Keras 3's BatchNormalization has no fused path: in training it computes the moments and the
normalisation as separate ops, and their gradient (broadcasts, tiles, multiplies, sums) becomes
the largest cost of a RegNet training step on CPU after the convolutions. TensorFlow's
FusedBatchNormV3 and its gradient (oneDNN on x86 CPUs, cuDNN on GPUs) do the same work in one
pass each.

As grouped_conv does for Conv2D, the speed-up is applied to layer instances (`enable(model)`):
the layers stay plain Keras BatchNormalization layers, so weights, saved files and exported
graphs are unchanged, and only training-mode calls change route. They compute what Keras
computes: the batch's biased variance normalises, the moving statistics follow Keras' own update
(`moving * momentum + batch * (1 - momentum)` with the biased variance), and outputs, gradients
and moving statistics agree with Keras' path within float32 rounding.
"""

from __future__ import annotations

import types

from regnet_keras import keras_backend


def _routable(layer) -> bool:
    """A Keras 3 BatchNormalization whose training call the fused kernel computes exactly."""
    return (type(layer).__name__ == "BatchNormalization"
            and type(layer).__module__.startswith("keras.")
            and not getattr(layer, "renorm", False)
            and not getattr(layer, "synchronized", False))


def _fused_call(layer, inputs, training=None, mask=None):
    cls = type(layer)
    rank = len(inputs.shape)
    axis = layer.axis if layer.axis >= 0 else layer.axis + rank
    if not (training and layer.trainable) or mask is not None or rank != 4 or axis not in (1, 3):
        return cls.call(layer, inputs, training=training, mask=mask)
    import tensorflow as tf
    # Keras computes batch normalization in float32 whatever the compute dtype; so do we.
    x = tf.cast(inputs, tf.float32)
    channels = x.shape[axis]
    gamma = tf.cast(layer.gamma, tf.float32) if layer.scale else tf.ones((channels,), tf.float32)
    beta = tf.cast(layer.beta, tf.float32) if layer.center else tf.zeros((channels,), tf.float32)
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        x, gamma, beta, epsilon=layer.epsilon,
        data_format="NHWC" if axis == 3 else "NCHW", is_training=True)
    # The kernel returns the unbiased (n - 1) variance for the moving statistics; Keras tracks
    # the biased one, which is also what normalised the batch.
    shape = tf.shape(x)
    count = tf.cast(tf.reduce_prod(shape) // shape[axis], tf.float32)
    variance = variance * ((count - 1.0) / count)
    momentum = layer.momentum
    layer.moving_mean.assign(tf.cast(layer.moving_mean, tf.float32) * momentum
                             + mean * (1.0 - momentum))
    layer.moving_variance.assign(tf.cast(layer.moving_variance, tf.float32) * momentum
                                 + variance * (1.0 - momentum))
    return tf.cast(y, layer.compute_dtype)


def _sublayers(layer):
    yield layer
    inner = getattr(layer, "layer", None)
    if inner is not None:
        yield from _sublayers(inner)
    for child in getattr(layer, "layers", ()) or ():
        if child is not layer:
            yield from _sublayers(child)


def enable(model, fused: bool = True) -> int:
    """Routes every Keras 3 BatchNormalization of `model` through the fused kernel; how many.

    `fused=False` restores Keras' own path. tf-keras layers are left alone: tf-keras fuses
    batch normalization itself. On the JAX and PyTorch backends it changes nothing and returns 0.
    """
    if not keras_backend.is_tensorflow_backend():
        return 0
    count = 0
    for layer in _sublayers(model):
        if not _routable(layer):
            continue
        count += 1
        if fused:
            # An instance attribute shadows the class's `call`; Keras' __setattr__ would track it.
            object.__setattr__(layer, "call", types.MethodType(_fused_call, layer))
        else:
            layer.__dict__.pop("call", None)
    return count


def is_fused(layer) -> bool:
    method = layer.__dict__.get("call")
    return method is not None and method.__func__ is _fused_call
