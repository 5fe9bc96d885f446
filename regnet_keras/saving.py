"""Loads a saved model file with regnet_keras' Keras classes registered and its speed-ups switched on.

`keras.models.load_model` (or tf-keras') restores the layers; a backbone file needs
regnet_keras.backbone registered first, and on TensorFlow a restored model trains through Keras'
slow paths until the tf_speedups are enabled again. This does all three on any backend.
"""

from __future__ import annotations

from regnet_keras import feature_pyramid, keras_backend
from regnet_keras.tf_speedups import fused_batch_norm, grouped_conv


def load_model(path, implementation: str = "auto", **kwargs):
    """`keras.models.load_model(path, **kwargs)` plus regnet_keras' classes and, on TensorFlow,
    native grouped convolutions (`implementation`, see grouped_conv) and fused batch norm."""
    feature_pyramid.register_serializables()
    model = keras_backend.get_keras().models.load_model(path, **kwargs)
    grouped_conv.enable(model, implementation)
    fused_batch_norm.enable(model)
    return model
