"""The RegNet stem, X/Y block and head as Keras functional-API layers.

Only Keras layers (Conv2D, BatchNormalization, ReLU, Add, Multiply, ...) enter the graph, never raw
TF ops, so the same code serves Keras 3 and tf-keras and the graph stays quantizable by tfmot.
Layer names come from `layer_names`; hyper-parameters follow the reference code (pycls).
"""

from __future__ import annotations

import dataclasses

from regnet_keras import layer_names as names
from regnet_keras.complexity import has_projection, squeeze_excite_width
from regnet_keras.design_space import StageSpec

# PyTorch's BN momentum 0.1 is Keras' 0.9 (Keras' default 0.99 makes short runs collapse).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# How stride-2 3x3 convolutions pad: "symmetric" pads 1 on every side (pycls, PyTorch);
# "same" is TF's padding, which on even inputs pads 0 before and 1 after (keras.applications).
PADDINGS = ("symmetric", "same")


@dataclasses.dataclass(frozen=True)
class LayerOptions:
    """Choices that shape every layer without changing the architecture."""

    keras: object  # the Keras module building the graph (keras or tf_keras)
    padding: str = "symmetric"
    zero_init_last_bn: bool = False

    def conv_initializer(self):
        # pycls: N(0, sqrt(2 / fan_out)) with fan_out = k * k * out_channels, groups ignored,
        # which is Keras' fan_out for a (k, k, in/groups, out) kernel.
        return self.keras.initializers.VarianceScaling(
            scale=2.0, mode="fan_out", distribution="untruncated_normal")

    def conv(self, filters, kernel, name, strides=1, groups=1, use_bias=False, activation=None,
             padding="valid"):
        return self.keras.layers.Conv2D(
            filters, kernel, strides=strides, padding=padding, groups=groups, use_bias=use_bias,
            activation=activation, kernel_initializer=self.conv_initializer(),
            bias_initializer="zeros", name=name)

    def batch_norm(self, name, zero_gamma=False):
        return self.keras.layers.BatchNormalization(
            momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
            gamma_initializer="zeros" if zero_gamma else "ones", name=name)

    def conv3x3(self, x, filters, strides, groups, conv_name, pad_name):
        """A 3x3 convolution with the selected stride-2 geometry."""
        if strides == 1 or self.padding == "same":
            return self.conv(filters, 3, conv_name, strides, groups, padding="same")(x)
        x = self.keras.layers.ZeroPadding2D(1, name=pad_name)(x)
        return self.conv(filters, 3, conv_name, strides, groups)(x)


def stem(x, width: int, options: LayerOptions):
    x = options.conv3x3(x, width, 2, 1, names.STEM_CONV, names.STEM_PAD)
    x = options.batch_norm(names.STEM_BN)(x)
    return options.keras.layers.ReLU(name=names.STEM_RELU)(x)


def block(x, in_width: int, spec: StageSpec, stride: int, se_ratio: float, stage: int,
          index: int, options: LayerOptions):
    """One residual bottleneck block: X block, or Y block when se_ratio > 0."""
    layers = options.keras.layers

    def name(part):
        return names.block_layer(stage, index, part)

    inner = spec.inner_width
    shortcut = x
    x = options.conv(inner, 1, name("a_conv"))(x)
    x = options.batch_norm(name("a_bn"))(x)
    x = layers.ReLU(name=name("a_relu"))(x)
    x = options.conv3x3(x, inner, stride, spec.groups, name("b_conv"), name("b_pad"))
    x = options.batch_norm(name("b_bn"))(x)
    x = layers.ReLU(name=name("b_relu"))(x)
    if se_ratio > 0:
        x = squeeze_excite(x, inner, squeeze_excite_width(in_width, se_ratio), name, options)
    x = options.conv(spec.width, 1, name("c_conv"))(x)
    x = options.batch_norm(name("c_bn"), zero_gamma=options.zero_init_last_bn)(x)
    if has_projection(in_width, spec.width, stride):
        shortcut = options.conv(spec.width, 1, name("proj_conv"), strides=stride)(shortcut)
        shortcut = options.batch_norm(name("proj_bn"))(shortcut)
    x = layers.Add(name=name("add"))([x, shortcut])
    return layers.ReLU(name=name("out_relu"))(x)


def squeeze_excite(x, width: int, se_width: int, name, options: LayerOptions):
    layers = options.keras.layers
    scale = layers.GlobalAveragePooling2D(keepdims=True, name=name("se_pool"))(x)
    scale = options.conv(se_width, 1, name("se_reduce"), use_bias=True, activation="relu")(scale)
    scale = options.conv(width, 1, name("se_expand"), use_bias=True,
                         activation="sigmoid")(scale)
    return layers.Multiply(name=name("se_scale"))([x, scale])


def classifier(x, classes: int, activation, options: LayerOptions):
    layers = options.keras.layers
    x = layers.GlobalAveragePooling2D(name=names.HEAD_POOL)(x)
    x = layers.Dense(classes, kernel_initializer=options.keras.initializers.RandomNormal(
        stddev=0.01), bias_initializer="zeros", name=names.LOGITS)(x)
    if activation is None:
        return x
    # float32 so that mixed-precision models still return well-formed probabilities.
    return layers.Activation(activation, dtype="float32", name=names.PREDICTIONS)(x)
