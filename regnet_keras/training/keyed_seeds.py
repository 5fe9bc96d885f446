"""Keras random layers drawn from a stateless key, so that the same key gives the same pixels.

Keras' augmentation layers draw through a `keras.random.SeedGenerator`, whose state is a variable
that every draw advances: in a parallel tf.data map the order of those draws, and so the pixels,
would depend on thread timing, and a resumed run could not redraw an epoch's batches. Every
layer's `get_random_transformation` also accepts the generator to draw from; `KeyedSeeds` is one
whose n-th draw is a pure function of (key, n), like the stateless ops of augmentation.py.
"""

from __future__ import annotations

import functools


@functools.cache
def _keyed_seeds_class():
    import tensorflow as tf
    from regnet_keras.keras_backend import get_keras
    keras = get_keras()

    class KeyedSeeds(keras.random.SeedGenerator):
        """The n-th draw's seed is the key folded with (stream, n); no variable."""

        def __init__(self, key, stream=0):
            # The base class would create its state variable, which cannot be made inside the
            # tf.data functions these seeds serve; nothing here needs it.
            self.name = "keyed_seeds"
            self.backend = keras.backend
            self._key = tf.cast(key, tf.int64)
            self._stream = stream
            self._draws = 0

        def next(self, ordered=True):
            self._draws += 1
            return tf.random.experimental.stateless_fold_in(
                self._key, self._stream * 1000 + self._draws)

    return KeyedSeeds


def keyed_seeds(key, stream: int = 0):
    """A SeedGenerator for Keras layers whose draws follow from `key` (two int64) and `stream`
    (which separates the draws of different layers on one key)."""
    return _keyed_seeds_class()(key, stream)
