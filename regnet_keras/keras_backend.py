"""Which Keras builds the graph and which backend runs it, asked at build time, never at import.

A process holds one Keras: Keras 3 by default, tf-keras under TF_USE_LEGACY_KERAS=1
(tensorflow-model-optimization works only on tf-keras models), chosen before TensorFlow loads it.
Keras 3 runs on the backend KERAS_BACKEND names (TensorFlow, JAX or PyTorch). The builder asks here
when a model is first built, so `import regnet_keras` loads neither Keras nor any backend.
"""

from __future__ import annotations

import os

from regnet_keras.errors import InputError

TENSORFLOW = "tensorflow"


class BackendError(InputError, RuntimeError):
    """A TensorFlow-only feature was asked for under another Keras backend."""


def uses_legacy_keras() -> bool:
    # The same test TensorFlow applies to decide what tf.keras is.
    return os.environ.get("TF_USE_LEGACY_KERAS", None) in ("true", "True", "1")


def get_keras():
    """The Keras module of this process: `tf_keras` under TF_USE_LEGACY_KERAS=1, else `keras`."""
    if uses_legacy_keras():
        import tf_keras
        return tf_keras
    import keras
    return keras


def backend_name() -> str:
    """"tensorflow", "jax" or "torch": the backend this process's Keras runs on (loads Keras)."""
    if uses_legacy_keras():
        return TENSORFLOW
    import keras
    return keras.backend.backend()


def is_tensorflow_backend() -> bool:
    return backend_name() == TENSORFLOW


def require_tensorflow_backend(what: str) -> None:
    """Raises a one-line BackendError unless Keras runs on TensorFlow; `what` names the caller."""
    backend = backend_name()
    if backend != TENSORFLOW:
        raise BackendError(
            f"{what} runs on TensorFlow only (tf.data, tf.distribute, tfmot, TFLite) but Keras "
            f"runs on {backend!r} here: run it with KERAS_BACKEND=tensorflow.")
