"""MixUp and CutMix of training batches with Keras' own layers, keyed like augmentation.py.

MixUp (Zhang et al., 2018) blends each image with another of the batch, its label in the same
proportion drawn from Beta(alpha, alpha); CutMix (Yun et al., 2019) pastes a rectangle of another
image, its label weighted by the pasted area. With both on, each batch is mixed by one of them,
CutMix with `cutmix_probability`, as torchvision's and timm's recipes switch. Labels come out as
class probabilities (each row sums to one) for the cross-entropy of the training step.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Mixing:
    mixup_alpha: float = 0.0  # 0: no MixUp
    cutmix_alpha: float = 0.0  # 0: no CutMix
    cutmix_probability: float = 0.5  # with both on: the fraction of batches CutMix mixes

    def __post_init__(self):
        for name in ("mixup_alpha", "cutmix_alpha"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} is invalid: it must be 0 (off) "
                                 "or positive.")
        if not 0 <= self.cutmix_probability <= 1:
            raise ValueError(f"cutmix_probability={self.cutmix_probability} is invalid: it must "
                             "be between 0 and 1.")

    @property
    def enabled(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0


class BatchMixer:
    """Mixing as a function of (float32 images, one-hot labels, key) -> (images, labels)."""

    def __init__(self, mixing: Mixing):
        from regnet_keras.keras_backend import get_keras
        layers = get_keras().layers
        self.mixing = mixing
        self.mixup = layers.MixUp(alpha=mixing.mixup_alpha) if mixing.mixup_alpha else None
        # A (low, high) factor fixes CutMix's alpha; a single float would draw it from (0, f).
        self.cutmix = (layers.CutMix(factor=(mixing.cutmix_alpha, mixing.cutmix_alpha))
                       if mixing.cutmix_alpha else None)

    @staticmethod
    def _apply(layer, images, labels, seeds):
        data = {"images": images, "labels": labels}
        transformation = layer.get_random_transformation(data, training=True, seed=seeds)
        return (layer.transform_images(images, transformation, training=True),
                layer.transform_labels(labels, transformation, training=True))

    def __call__(self, images, labels, key):
        import tensorflow as tf
        from regnet_keras.training.keyed_seeds import keyed_seeds
        mixed = []
        for stream, layer in ((1, self.mixup), (2, self.cutmix)):
            if layer is not None:
                mixed.append(self._apply(layer, images, labels, keyed_seeds(key, 500 + stream)))
        if len(mixed) == 1:
            return mixed[0]
        use_cutmix = tf.random.stateless_uniform(
            [], tf.random.experimental.stateless_fold_in(key, 503)) < (
            self.mixing.cutmix_probability)
        return (tf.where(use_cutmix, mixed[1][0], mixed[0][0]),
                tf.where(use_cutmix, mixed[1][1], mixed[0][1]))
