"""The tools' check that Keras runs on TensorFlow, which tf.data, tf.distribute, tfmot and TFLite need."""

from regnet_keras import keras_backend


def exit_unless_tensorflow(tool: str) -> None:
    """Exits with one line naming the way out when KERAS_BACKEND picks JAX or PyTorch."""
    try:
        keras_backend.require_tensorflow_backend(f"python -m {tool}")
    except keras_backend.BackendError as error:
        raise SystemExit(f"error: {error}") from None
