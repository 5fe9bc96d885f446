"""Which Keras builds the graph: Keras 3 by default, tf-keras in a TF_USE_LEGACY_KERAS=1 process.

tensorflow-model-optimization works only on tf-keras models, and a process holds one Keras, chosen
by TF_USE_LEGACY_KERAS before TensorFlow loads it. The builder asks here at build time, never at
import time, so `import regnet_keras` loads neither Keras.
"""

from __future__ import annotations

import os


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
