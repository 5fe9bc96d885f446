"""Automatic augmentation policies made of Keras' own image layers, chosen image by image.

    randaugment          RandAugment (Cubuk et al., 2020): 2 operations per image, each drawn
                         from the 11 of keras.layers.RandAugment, at its strengths (factor 0.5)
    trivialaugment_wide  TrivialAugment (Müller & Hutter, 2021), torchvision's "ta_wide" of its
                         V2 weights: 1 operation per image drawn from those 11 and the identity,
                         at the wide strengths of torchvision's table

Why not keras.layers.RandAugment itself: it draws its operations once per batch, so all 128
images of a step are sheared, or all solarized, which moves BatchNormalization's batch
statistics as a whole; the papers draw per image. Here each operation is Keras' layer, run on
the images that drew it, with per-image strengths.
Draws are keyed (keyed_seeds), so the same key gives the same pixels: interrupted runs resume on
the same batches. Images are float32 RGB in 0-255 and stay within that range.
"""

from __future__ import annotations

import functools

POLICIES = ("none", "randaugment", "trivialaugment_wide")
RANDAUGMENT_OPERATIONS = 2
RANDAUGMENT_FACTOR = 0.5  # keras.layers.RandAugment's default strength
# torchvision's TrivialAugmentWide magnitudes, in the units of Keras' layers: shear 0.99,
# translation 32 pixels of 224 (a fraction here, so that small images are not emptied),
# rotation 135 degrees, colour, contrast and sharpness factors 1 +- 0.99, 2-8 bits,
# solarization thresholds over the whole range.
WIDE_STRENGTH = 0.99
WIDE_TRANSLATION = 32 / 224
WIDE_ROTATION = 135 / 360


def _operations(policy: str):
    """(name, layer or None) of the policy, in a fixed order; None is the identity."""
    from regnet_keras.keras_backend import get_keras
    layers = get_keras().layers
    wide = policy == "trivialaugment_wide"
    strength = WIDE_STRENGTH if wide else RANDAUGMENT_FACTOR
    translation = WIDE_TRANSLATION if wide else RANDAUGMENT_FACTOR
    rotation = WIDE_ROTATION if wide else RANDAUGMENT_FACTOR
    value_range = (0, 255)
    operations = [
        ("shear", layers.RandomShear(x_factor=strength, y_factor=strength)),
        ("translation", layers.RandomTranslation(translation, translation)),
        ("rotation", layers.RandomRotation(rotation)),
        ("brightness", layers.RandomBrightness(strength, value_range=value_range)),
        ("color_degeneration", layers.RandomColorDegeneration(strength,
                                                              value_range=value_range)),
        ("contrast", layers.RandomContrast(strength, value_range=value_range)),
        ("sharpness", layers.RandomSharpness(strength, value_range=value_range)),
        ("posterization", layers.RandomPosterization(
            factor=(2, 8) if wide else max(1, int(8 * RANDAUGMENT_FACTOR)),
            value_range=value_range)),
        ("solarization", layers.Solarization(addition_factor=0.0 if wide else strength,
                                             threshold_factor=1.0 if wide else strength,
                                             value_range=value_range)),
        ("auto_contrast", layers.AutoContrast(value_range=value_range)),
        ("equalization", layers.Equalization(value_range=value_range)),
    ]
    if wide:
        operations.append(("identity", None))
    return operations


class AutoAugment:
    """`policy` as a function of (float32 RGB batch in 0-255, key) -> batch, keyed per image."""

    def __init__(self, policy: str):
        if policy not in POLICIES:
            raise ValueError(f"auto_augment={policy!r} is invalid: choose one of {POLICIES}.")
        self.policy = policy
        self.operations = _operations(policy) if policy != "none" else []
        self.rounds = RANDAUGMENT_OPERATIONS if policy == "randaugment" else 1

    def __call__(self, images, key):
        import tensorflow as tf
        from regnet_keras.training.keyed_seeds import keyed_seeds
        if not self.operations:
            return images
        batch = tf.shape(images)[0]
        for round_index in range(self.rounds):
            stream = 100 * (round_index + 1)
            choice = tf.random.stateless_uniform(
                [batch], tf.random.experimental.stateless_fold_in(key, stream), 0,
                len(self.operations), dtype=tf.int32)
            result = images
            for index, (_, layer) in enumerate(self.operations):
                if layer is None:
                    continue
                # Only the images that drew this operation go through it: the work per batch
                # is one operation per image and round, whatever the number of operations.
                chosen = tf.where(tf.equal(choice, index))
                # Some layers index the batch's first image: an operation that no image drew
                # is skipped.
                apply = functools.partial(self._apply, layer, images, chosen, result,
                                          keyed_seeds(key, stream + index + 1))
                unchanged = result
                result = tf.cond(tf.shape(chosen)[0] > 0, apply, lambda: unchanged)
            images = tf.clip_by_value(result, 0.0, 255.0)
        return images

    @staticmethod
    def _apply(layer, images, chosen, result, seeds):
        """`result` with the `chosen` images of `images` replaced by `layer`'s transform."""
        import tensorflow as tf
        subset = tf.gather_nd(images, chosen)
        transformation = layer.get_random_transformation(subset, training=True, seed=seeds)
        changed = tf.cast(layer.transform_images(subset, transformation, training=True),
                          tf.float32)
        return tf.tensor_scatter_nd_update(result, chosen, changed)
