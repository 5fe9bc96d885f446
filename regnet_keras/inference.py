"""Fast inference: batch normalization folded into the convolutions, and a compiled predict loop.

In inference a BatchNormalization after a convolution is a per-channel affine map, so it can be
folded into the convolution's kernel and bias: `kernel * scale` and `(bias - mean) * scale + beta`
with `scale = gamma / sqrt(variance + epsilon)`. Folded, the pair runs as Conv2D+BiasAdd, which
TensorFlow fuses with the ReLU that follows into one convolution, where the model runs the
convolution and then Keras' unfused normalisation (several element-wise ops). TensorFlow's fused
convolution takes groups only from oneDNN, so grouped convolutions are folded only where oneDNN
is on (`import regnet_keras` before TensorFlow turns it on); elsewhere their normalisation stays.

`predict(model, images)` runs a model over a NumPy array in fixed-size batches through one
compiled function and folds inside that function: each folded kernel and bias is computed from
the model's own variables as the batch runs, just before its convolution, so no second copy of
the weights is kept (RegNetY016's are 40 MB) and nothing is cloned; scaling the kernels costs a
few percent of a batch (6% for RegNetY016 at 128x128). Keras' `model.predict` feeds its batches
through a tf.data pipeline over the array, which adds time per batch and memory per call; this
loop slices the array in place and pads the last batch, so the function is traced once.

`fold_batch_norm(model)` returns the folded network as a plain Keras functional model, to save,
export or call: Conv2D layers with a bias in place of each folded BatchNormalization, the same
layer names, the same outputs within float32 rounding. It is for inference only (it cannot train
batch statistics), and the model it came from stays as it is.
"""

from __future__ import annotations

import functools

import numpy as np

from regnet_keras import keras_backend
from regnet_keras.errors import InputError
from regnet_keras.tf_speedups import grouped_conv


class InferenceError(InputError, ValueError):
    """A model or input that the inference helpers cannot take."""


def _foldable_pairs(model, fuse_grouped: bool) -> dict:
    """{Conv2D name: the BatchNormalization that alone consumes its output, on channels}."""
    keras = keras_backend.get_keras()
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization) or len(layer._inbound_nodes) != 1:
            continue
        sources = layer._inbound_nodes[0].input_tensors
        if len(sources) != 1:
            continue
        conv = sources[0]._keras_history.operation
        if (type(conv) is keras.layers.Conv2D and conv.data_format == "channels_last"
                and layer.axis in (-1, 3) and conv.activation is keras.activations.linear
                and len(conv._inbound_nodes) == 1 and len(conv._outbound_nodes) == 1
                and (conv.groups == 1 or fuse_grouped)):
            pairs[conv.name] = layer
    return pairs


def _is_functional(model) -> bool:
    """A Keras 3 functional model: its graph of layers can be walked and rerun."""
    keras = keras_backend.get_keras()
    return (not keras_backend.uses_legacy_keras() and isinstance(model, keras.Model)
            and hasattr(model, "_run_through_graph"))


def _onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN kernels in this process (chosen when it loaded)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return False


def fold_batch_norm(model):
    """A copy of a Keras 3 functional `model` with every BatchNormalization that follows a Conv2D
    folded into that convolution's kernel and bias (see the module docstring). Other layers are
    copied as they are, with their weights. Outputs match `model(x, training=False)` within
    float32 rounding."""
    if not _is_functional(model):
        raise InferenceError(f"fold_batch_norm takes a Keras 3 functional model, not "
                             f"{type(model).__name__}: build it with regnet_keras or the "
                             "functional API.")
    # Without oneDNN, TensorFlow's fused Conv2D+BiasAdd+ReLU kernel refuses grouped convolutions.
    fuse_grouped = not keras_backend.is_tensorflow_backend() or _onednn_enabled()
    pairs = _foldable_pairs(model, fuse_grouped)
    folded_norms = {norm.name for norm in pairs.values()}

    def clone_layer(layer):
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
            config["bias_initializer"] = "zeros"
        return layer.__class__.from_config(config)

    def call_layer(layer, *args, **kwargs):
        # A folded normalisation passes its input through; the clone is never called.
        if layer.name in folded_norms:
            return args[0]
        return layer(*args, **kwargs)

    # New inputs under the model's input layer names, so that every name carries over.
    keras = keras_backend.get_keras()
    inputs = [keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype,
                          name=tensor._keras_history.operation.name) for tensor in model.inputs]
    folded = keras.models.clone_model(
        model, input_tensors=inputs if len(inputs) > 1 else inputs[0],
        clone_function=clone_layer, call_function=call_layer)
    for layer in model.layers:
        if layer.name in folded_norms or not layer.weights:
            continue
        copy = folded.get_layer(layer.name)
        if layer.name in pairs:
            copy.set_weights(_folded_conv_weights(layer, pairs[layer.name]))
        else:
            copy.set_weights(layer.get_weights())
    grouped_conv.enable(folded)
    return folded


def _folded_conv_weights(conv, norm):
    kernel = np.asarray(conv.kernel, np.float64)
    bias = (np.asarray(conv.bias, np.float64) if conv.use_bias
            else np.zeros(kernel.shape[-1]))
    channels = kernel.shape[-1]
    gamma = np.asarray(norm.gamma, np.float64) if norm.scale else np.ones(channels)
    beta = np.asarray(norm.beta, np.float64) if norm.center else np.zeros(channels)
    mean = np.asarray(norm.moving_mean, np.float64)
    variance = np.asarray(norm.moving_variance, np.float64)
    scale = gamma / np.sqrt(variance + norm.epsilon)
    dtype = conv.kernel.dtype
    return [(kernel * scale).astype(dtype), ((bias - mean) * scale + beta).astype(dtype)]


def predict(model, images, batch_size: int = 32, fold_batch_norm: bool = True):
    """`model(images, training=False)` over a NumPy array, `batch_size` images at a time, through
    one compiled function; returns a NumPy array (or a list of them for several outputs).
    `fold_batch_norm` folds, inside that function, every batch normalization that
    `fold_batch_norm(model)` would fold (see the module docstring); the outputs are the same
    within float32 rounding. TensorFlow backend; elsewhere it calls `model.predict`."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InferenceError(f"batch_size={batch_size!r} is invalid: it must be an integer >= 1.")
    images = np.asarray(images)
    if images.ndim < 1 or len(images) == 0:
        raise InferenceError(f"images of shape {images.shape} hold no image: pass an array of "
                             "shape (count, height, width, channels).")
    if not keras_backend.is_tensorflow_backend():
        return model.predict(images, batch_size=batch_size, verbose=0)
    function = _compiled_call(model, fold_batch_norm)
    batches = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        count = len(batch)
        if count < batch_size:
            # The same shape as every other batch, so that the function is not traced again.
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - count, axis=0)])
        outputs = function(batch)
        batches.append([np.asarray(output)[:count] for output in _as_list(outputs)])
    results = [np.concatenate(parts) for parts in zip(*batches)]
    return results if isinstance(model.output, (list, tuple)) else results[0]


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _compiled_call(model, fold: bool):
    functions = model.__dict__.get("_regnet_keras_inference_calls")
    if functions is None:
        functions = {}
        # Kept on the model so that repeated calls reuse the traced graph.
        object.__setattr__(model, "_regnet_keras_inference_calls", functions)
    if fold not in functions:
        import tensorflow as tf
        call = _folded_call(model) if fold else None
        if call is None:
            call = functools.partial(model, training=False)
        functions[fold] = tf.function(call, reduce_retracing=True)
    return functions[fold]


def _folded_call(model):
    """`model(x, training=False)` with the foldable batch normalizations folded as it runs, or
    None where there is nothing to fold."""
    if not _is_functional(model):
        return None
    pairs = _foldable_pairs(model, fuse_grouped=_onednn_enabled())
    if not pairs:
        return None
    folded_norms = {norm.name for norm in pairs.values()}

    def operation(layer):
        if layer.name in folded_norms:
            return lambda inputs, **kwargs: inputs
        if layer.name in pairs:
            return functools.partial(_folded_convolution, layer, pairs[layer.name])
        if getattr(layer, "_call_has_training_arg", False):
            return functools.partial(layer, training=False)
        return layer

    def call(images):
        inputs = model._standardize_inputs(images)
        outputs = model._run_through_graph(inputs, operation_fn=operation)
        return outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs
    return call


def _folded_convolution(conv, norm, inputs):
    """conv then norm (inference), as one convolution with the folded kernel and a bias: the
    Conv2D+BiasAdd that TensorFlow's graph optimiser fuses with the ReLU after it."""
    import tensorflow as tf
    with tf.name_scope(conv.name):  # op names that profiles attribute to the layer
        channels = conv.filters
        gamma = tf.cast(norm.gamma, tf.float32) if norm.scale else tf.ones((channels,), tf.float32)
        beta = tf.cast(norm.beta, tf.float32) if norm.center else tf.zeros((channels,), tf.float32)
        scale = gamma * tf.math.rsqrt(tf.cast(norm.moving_variance, tf.float32) + norm.epsilon)
        bias = -tf.cast(norm.moving_mean, tf.float32)
        if conv.use_bias:
            bias += tf.cast(conv.bias, tf.float32)
        kernel = tf.cast(conv.kernel, tf.float32)
        # The scaled kernel is made once the convolution's input exists, not as the batch starts:
        # otherwise every folded kernel of the network is alive at once (the weights' size again).
        # A Pad before the convolution is merged into it by oneDNN's graph rewrite, so the kernel
        # waits for the Pad's input instead (waiting for the merged node itself would be a cycle).
        anchor = inputs.op.inputs[0] if inputs.op.type in ("Pad", "PadV2", "MirrorPad") else inputs
        with tf.control_dependencies([anchor]):
            kernel = tf.cast(kernel * scale, inputs.dtype)
        # TensorFlow's own Conv2D takes groups from the kernel's shape; inference needs no gradient.
        outputs = tf.nn.conv2d(inputs, kernel, strides=list(conv.strides),
                               padding=conv.padding.upper(), dilations=list(conv.dilation_rate))
        return tf.nn.bias_add(outputs, tf.cast(bias * scale + beta, inputs.dtype))
